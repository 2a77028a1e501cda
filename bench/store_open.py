"""Opening a big database: time to open `sessions.db` holding 1,000,000 events
over 1,000 sessions (fresh connection each run, schema check included) and
read one session's visible messages, and its whole session_view."""

from __future__ import annotations

import time
from pathlib import Path

from leharness import projections, store
from leharness.store.log import encode_data

from . import Figure, timed
from .store_append import turn

CACHE = Path(__file__).with_name(".cache")


def build(path: Path, events: int, sessions: int) -> float:
    """Fill a database through the real triggers, in big transactions; seconds taken."""
    started = time.perf_counter()
    conn = store.open_store(path)
    per_session = events // sessions
    template = [(p["type"], encode_data(store.validate_payload(p))) for p in turn(0)]
    created = encode_data(store.validate_payload({"type": "session.created", "cwd": "/bench"}))
    for _ in range(sessions):
        session_id = store.new_ulid()
        rows = [(store.new_ulid(), session_id, 1, store.now_iso(), "session.created", created)]
        seq = 1
        while seq < per_session:
            turn_call = f"call_{seq}"  # one id per turn, so each call pairs with its result
            for event_type, data in template:
                seq += 1
                data = data.replace("call_0", turn_call)
                rows.append((store.new_ulid(), session_id, seq, store.now_iso(), event_type, data))
        with store.write_transaction(conn):
            conn.executemany(
                "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    events = 100_000 if quick else 1_000_000
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"events-{events}.db"
    build_note = "cached from an earlier run"
    if not path.exists():
        seconds = build(path, events, 1_000)
        build_note = f"built in {seconds:.0f} s through the triggers"
    probe = store.open_store(path)
    total = probe.execute("SELECT count(*) FROM events").fetchone()[0]
    (session_id,) = probe.execute(
        "SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET 500"
    ).fetchone()
    probe.close()

    def open_and_read() -> None:
        conn = store.open_store(path)
        projections.visible_messages(conn, session_id)
        conn.close()

    def open_and_view() -> None:
        conn = store.open_store(path)
        projections.session_view(conn, session_id)
        conn.close()

    open_and_read()  # warm the OS page cache, as a second `lh` run would find it
    repeat = 7
    read = timed(open_and_read, repeat)
    view = timed(open_and_view, repeat)
    label = f"{total:,} events, 1,000 sessions"
    return [
        Figure(
            f"open + visible messages ({label})",
            "ms",
            read,
            "< 50 ms",
            sorted(read)[repeat // 2] < 50,
            build_note,
        ),
        Figure(
            f"open + session_view ({label})", "ms", view, "< 50 ms", sorted(view)[repeat // 2] < 50
        ),
    ]
