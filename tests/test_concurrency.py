"""Four processes appending to one session at once: no error, gap-free 1..n."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from leharness import store

APPENDS_PER_PROCESS = 150


def _append_many(path: str, session_id: str, worker: int) -> None:
    conn = store.open_store(path)
    for i in range(APPENDS_PER_PROCESS):
        store.append(conn, session_id, {"type": "invocation.received", "text": f"{worker}:{i}"})
    conn.close()


def test_four_processes_append_to_one_session_without_errors_or_gaps(tmp_path: Path):
    path = tmp_path / "s.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_many, args=(str(path), session_id, n)) for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    seqs = [
        row[0]
        for row in conn.execute(
            "SELECT session_seq FROM events WHERE session_id = ? ORDER BY session_seq",
            (session_id,),
        )
    ]
    total = 1 + 4 * APPENDS_PER_PROCESS
    assert seqs == list(range(1, total + 1))
    texts = {row[0] for row in conn.execute("SELECT content FROM messages")}
    assert len(texts) == 4 * APPENDS_PER_PROCESS
    session = conn.execute("SELECT event_count FROM sessions").fetchone()
    assert session[0] == total
