"""Two real `lh` processes on one home, with Datasette and a sqlite3 reader at the same time.

Different sessions run side by side; a second `lh` on a session another one is
running refuses with exit 2 and the holder's pid (it never interleaves two
loops); no "database is locked" surfaces anywhere and nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from leharness import store
from leharness.store import health
from leharness.testing import ScriptedServer, Slow, Text

from .e2e_helpers import LH, lh_env, run_lh

SLOW_ANSWER = Slow(Text("still answering " * 20), 0.05)  # about two seconds of stream


class Readers:
    """Datasette's in-process client and a plain sqlite3 reader, polling until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []
        self.reads = 0
        self.datasette_reads = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=t) for t in (self._sqlite, self._datasette)]

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _sqlite(self) -> None:
        while not self._stop.is_set():
            try:
                with closing(sqlite3.connect(self.path, timeout=10)) as conn:
                    conn.execute("SELECT count(*), max(seq) FROM events").fetchone()
                    conn.execute(
                        "SELECT * FROM messages ORDER BY session_seq DESC LIMIT 5"
                    ).fetchall()
                self.reads += 1
            except sqlite3.Error as error:
                self.errors.append(f"sqlite3: {error}")
            time.sleep(0.01)

    def _datasette(self) -> None:
        async def poll() -> None:
            datasette = import_datasette()([str(self.path)])
            while not self._stop.is_set():
                response = await datasette.client.get(
                    "/sessions/events.json?_shape=array&_size=5&_sort_desc=seq"
                )
                if response.status_code != 200:
                    self.errors.append(f"datasette {response.status_code}: {response.text[:200]}")
                self.datasette_reads += 1
                await asyncio.sleep(0.02)

        try:
            asyncio.run(poll())
        except Exception as error:  # a dead reader must fail the test, not vanish
            self.errors.append(f"datasette reader: {type(error).__name__}: {error}")


def import_datasette():
    """Datasette loads every installed plugin when imported. If an installed plugin's module
    is absent from this checkout (a shared venv can name one another branch adds), skip
    plugin loading the way Datasette's own tests do; otherwise load them normally."""
    import importlib.metadata
    import importlib.util
    import sys

    missing = [
        entry
        for entry in importlib.metadata.entry_points(group="datasette")
        if importlib.util.find_spec(entry.module) is None
    ]
    skip = bool(missing) and not hasattr(sys, "_called_from_test")
    if skip:
        sys._called_from_test = True
    try:
        from datasette.app import Datasette
    finally:
        if skip:
            del sys._called_from_test
    return Datasette


GATE = threading.Event()  # a request for "hold on" is answered only once this is set


@pytest.fixture
def server():
    def respond(body: dict):
        if body["messages"][-1]["content"] == "hold on":
            GATE.wait(60)
        return SLOW_ANSWER

    GATE.clear()
    with ScriptedServer(responder=respond) as scripted:
        yield scripted
    GATE.set()


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [LH, "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def new_session(env: dict) -> str:
    done = run_lh("--json", "first prompt", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[0])["session_id"]


def assert_whole(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        for session_id, count, top in conn.execute(
            "SELECT session_id, count(*), max(session_seq) FROM events GROUP BY session_id"
        ):
            assert count == top, f"session {session_id} has a gap"
        status = conn.execute("SELECT group_concat(status) FROM sessions").fetchone()[0]
        assert "running" not in status
    with closing(store.connect(path)) as conn:
        assert health.rebuild_drift(conn) == []


def test_two_sessions_run_side_by_side_while_readers_poll(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    first, second = new_session(env), new_session(env)
    path = isolated_home / "sessions.db"
    with Readers(path) as readers:
        one = start(env, "--session", first, "go on, one")
        two = start(env, "--session", second, "go on, two")
        outs = [process.communicate(timeout=60) for process in (one, two)]
    assert [one.returncode, two.returncode] == [0, 0], outs
    assert readers.errors == [] and readers.reads > 10 and readers.datasette_reads > 0
    for out, err in outs:
        assert "locked" not in out + err
    for session_id, out in zip((first, second), (outs[0][0], outs[1][0]), strict=True):
        printed = [json.loads(line)["id"] for line in out.splitlines()]
        with sqlite3.connect(path) as conn:
            stored = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM events WHERE session_id = ? AND session_seq > 5 "
                    "ORDER BY session_seq",
                    (session_id,),
                )
            ]
        assert printed == stored  # all of its events, in order, nothing from the other
    assert_whole(path)


def test_a_second_lh_on_a_running_session_refuses_and_the_first_is_unharmed(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    session_id = new_session(env)
    path = isolated_home / "sessions.db"
    with Readers(path) as readers:
        first = start(env, "--session", session_id, "hold on")
        while len(server.requests) < 2:  # the first run is waiting for its model call
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        second = run_lh("--session", session_id[:12], "barging in", env=env)
        GATE.set()
        _, err = first.communicate(timeout=60)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"Error: session {session_id} is in use by another lh process (pid {first.pid}): "
        f"wait for it to finish, or branch it with `lh fork {session_id}`"
    )
    assert first.returncode == 0, err
    assert readers.errors == [] and readers.datasette_reads > 0
    with sqlite3.connect(path) as conn:
        texts = [
            row[0]
            for row in conn.execute(
                "SELECT json_extract(data, '$.text') FROM events "
                "WHERE type = 'invocation.received' ORDER BY seq"
            )
        ]
    assert texts == ["first prompt", "hold on"]  # the refused run wrote nothing
    again = run_lh("--session", session_id, "now it is free", env=env)
    assert again.returncode == 0, again.stderr
    assert_whole(path)


def test_a_subagent_session_cannot_be_resumed_while_its_parent_runs(isolated_home):
    from leharness.app import locks

    conn = store.open_store(isolated_home / "sessions.db")
    parent = store.create_session(conn)
    child = store.create_session(
        conn, {"type": "session.created", "parent_session_id": parent, "parent_task_id": "t1"}
    )
    conn.close()
    held = locks.acquire(isolated_home, parent)
    with ScriptedServer([]) as scripted:
        done = run_lh("--session", child, "hi", env=lh_env(isolated_home, scripted.base_url))
    assert done.returncode == 2
    assert f"session {child} is a subagent of {parent}, which another lh process" in done.stderr
    held.release()
    assert locks.holder_pid(isolated_home, parent) is None


def test_the_interactive_session_takes_the_same_lock(isolated_home, monkeypatch):
    from leharness.app import locks
    from leharness.cli.errors import UserError
    from leharness.cli.repl import run_repl
    from leharness.cli.session import open_session

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    options = dict(provider=None, model=None, base_url=None, max_steps=5)
    active = open_session(None, False, **options)
    session_id = active.session_id
    assert locks.holder_pid(isolated_home, session_id) == str(os.getpid())
    active.lock.release()
    hold = (
        "import sys, time; from pathlib import Path; from leharness.app import locks; "
        "locks.acquire(Path(sys.argv[1]), sys.argv[2]); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(isolated_home), session_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"session {session_id} is in use by another lh"):
            run_repl(session_ref=session_id, continue_=False, **options)
    finally:
        holder.kill()
        holder.wait()


def test_this_process_opening_a_session_again_gets_its_own_lock_back(isolated_home):
    """/resume back to a session the REPL opened before must not refuse it as in use."""
    from leharness.app import locks

    first = locks.acquire(isolated_home, "s1")
    assert locks.acquire(isolated_home, "s1") is first
    assert locks.holder_pid(isolated_home, "s1") == str(os.getpid())
    first.release()
    assert locks.holder_pid(isolated_home, "s1") is None
    again = locks.acquire(isolated_home, "s1")
    assert again is not first
    again.release()
