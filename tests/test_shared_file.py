"""The history stays whole while other processes and tools share `sessions.db`.

A process that holds a SQLite connection never opens the file with plain open()
again (closing that descriptor would drop its POSIX locks, and another process
would then delete the WAL under it).
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from leharness import store
from leharness.testing import ScriptedServer, Slow, Text

from .e2e_helpers import LH, event_types, lh_env, query, run_lh
from .test_repl import Typist, make_repl, session_with


def whole(path: Path) -> dict[str, list[str]]:
    """Every session's user prompts, after checking the file's integrity and each log's seqs."""
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        prompts: dict[str, list[str]] = {}
        for session_id, seqs in conn.execute(
            "SELECT session_id, group_concat(session_seq) FROM "
            "(SELECT * FROM events ORDER BY session_seq) GROUP BY session_id"
        ):
            assert [int(s) for s in seqs.split(",")] == list(range(1, seqs.count(",") + 2))
            prompts[session_id] = [
                text
                for (text,) in conn.execute(
                    "SELECT json_extract(data, '$.text') FROM events WHERE session_id = ? "
                    "AND type = 'invocation.received' ORDER BY session_seq",
                    (session_id,),
                )
            ]
    return prompts


def test_a_second_connection_keeps_the_first_ones_locks(tmp_path):
    path = tmp_path / "sessions.db"
    first = store.open_store(path)
    kept = store.create_session(first)
    store.open_store(path).close()  # on main this read the header with open(): locks gone
    other = (
        "from leharness import store\n"
        f"c = store.open_store({str(path)!r}); store.create_session(c); c.close()\n"
    )
    subprocess.run([sys.executable, "-c", other], check=True)  # closes the file last
    for n in range(5):
        store.append(first, kept, {"type": "invocation.received", "text": f"p{n}"})
    subprocess.run([sys.executable, "-c", other], check=True)
    first.close()
    prompts = whole(path)
    assert len(prompts) == 3 and prompts[kept] == [f"p{n}" for n in range(5)]


def test_repl_new_and_fork_beside_other_lh_processes(isolated_home, monkeypatch):
    answers = [Text(f"answer {n}") for n in range(8)]
    with ScriptedServer(answers) as server:
        repl = make_repl(server, monkeypatch)
        env = lh_env(isolated_home, server.base_url)

        def other(prompt: str) -> None:
            ran = run_lh(prompt, env=env)
            assert ran.returncode == 0, ran.stderr
            read = run_lh("sql", "select count(*) from events", env=env)
            assert read.returncode == 0, read.stderr

        async def script(typist: Typist) -> None:
            await typist.line("repl one")
            await asyncio.to_thread(other, "other one")
            await typist.line("/new")
            await asyncio.to_thread(other, "other two")
            await typist.line("repl two")
            await typist.line("/fork")
            await asyncio.to_thread(other, "other three")
            await typist.line("repl three")
            await asyncio.to_thread(other, "other four")
            await typist.line("/exit")

        session_with(repl, script)
        repl.active.loop.conn.close()
    prompts = sorted(whole(isolated_home / "sessions.db").values())
    assert prompts == [
        ["other four"],
        ["other one"],
        ["other three"],
        ["other two"],
        ["repl one"],
        ["repl two"],
        ["repl two", "repl three"],
    ]


def test_a_second_writer_on_one_session_stops_the_first_and_nothing_is_lost(isolated_home):
    slow = Slow(Text("a slow answer " * 40), 0.1)  # about six seconds of stream
    with ScriptedServer([Text("started"), slow, Text("answer to b")]) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("start", env=env).returncode == 0
        ((session_id,),) = query(isolated_home, "SELECT id FROM sessions")
        writer_a = subprocess.Popen(
            [LH, "-c", "writer a"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while event_types(isolated_home, session_id)[-1:] != ["step.started"]:
            assert time.monotonic() < deadline and writer_a.poll() is None
            time.sleep(0.02)
        # What a model's write_file over the lock file did: the lock no longer guards.
        (isolated_home / "locks" / f"{session_id}.lock").unlink()
        writer_b = run_lh("--session", session_id, "writer b", env=env)
        assert writer_b.returncode == 0, writer_b.stderr
        _out, err = writer_a.communicate(timeout=60)
    assert writer_a.returncode == 2, err
    assert f"session {session_id} changed under me" in err and "Traceback" not in err
    types = event_types(isolated_home, session_id)
    rows = query(
        isolated_home,
        "SELECT json_extract(data, '$.text') FROM events WHERE session_id = ? AND type = ? "
        "ORDER BY session_seq",
        session_id,
        "invocation.received",
    )
    assert [text for (text,) in rows] == ["start", "writer a", "writer b"]  # each once
    answers = query(
        isolated_home,
        "SELECT json_extract(data, '$.text') FROM events WHERE session_id = ? AND type = ? ",
        session_id,
        "model.completed",
    )
    assert [text for (text,) in answers] == ["started", "answer to b"]  # a's never landed
    assert types[-1] == "agent.finished" and types.count("agent.finished") == 2
    assert whole(isolated_home / "sessions.db")  # contiguous and intact


def test_an_append_after_another_writers_event_writes_nothing(db):
    session_id = store.create_session(db)
    assert store.claim(db, session_id) == 1
    store.append(db, session_id, {"type": "invocation.received", "text": "mine"})
    with db:  # another writer, by the events' own rules (max + 1)
        db.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES ('other', ?, 3, '2026-01-01T00:00:00.000Z', 'invocation.received', ?)",
            (session_id, '{"text": "theirs"}'),
        )
    try:
        store.append(db, session_id, {"type": "invocation.received", "text": "lost?"})
    except store.SessionChanged as error:
        assert "changed under me" in str(error) and "events 3..3 after event 2" in str(error)
    else:
        raise AssertionError("the append went through")
    assert store.last_seq(db, session_id) == 3
    store.claim(db, session_id)  # a writer that re-reads the session may go on
    assert store.append(db, session_id, {"type": "invocation.auto"}).session_seq == 4
