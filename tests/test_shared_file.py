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
from contextlib import closing
from pathlib import Path

from leharness import store
from leharness.testing import ScriptedServer, Text

from .e2e_helpers import lh_env, run_lh
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
