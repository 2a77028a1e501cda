"""Other tools on the same file: sqlite-utils tables, FTS indexes and user triggers.

Projections are exactly what leharness's `.sql` files create: `lh doctor --repair`
and a projection reinstall never touch anything else, and the loop's authorizer
lets SQLite write the shadow tables of a virtual table (an FTS index over events).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from leharness import store
from leharness.testing import ScriptedServer, Text

from .e2e_helpers import lh_env, run_lh

SQLITE_UTILS = str(Path(sys.executable).with_name("sqlite-utils"))


def sqlite_utils(*args: str, stdin: str | None = None) -> None:
    subprocess.run([SQLITE_UTILS, *args], input=stdin, text=True, check=True, timeout=60)


def rows(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def tamper(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DELETE FROM messages WHERE role = 'user'")


def test_repair_and_reinstall_leave_a_users_own_table_and_view_alone(isolated_home):
    path = isolated_home / "sessions.db"
    with ScriptedServer([Text("hello")]) as server:
        assert run_lh("hi", env=lh_env(isolated_home, server.base_url)).returncode == 0
    notes = [{"id": 1, "note": "keep me"}, {"id": 2, "note": "me too"}]
    sqlite_utils("insert", str(path), "my_notes", "-", "--pk", "id", stdin=json.dumps(notes))
    sqlite_utils("create-view", str(path), "my_view", "select note from my_notes")
    tamper(path)
    env = lh_env(isolated_home, "http://127.0.0.1:9")
    repaired = run_lh("doctor", "--repair", env=env)
    assert "repaired: rebuilt every projection" in repaired.stdout, repaired.stdout
    assert repaired.returncode == 0, repaired.stdout
    assert rows(path, "SELECT id, note FROM my_notes") == [(1, "keep me"), (2, "me too")]
    assert rows(path, "SELECT * FROM my_view") == [("keep me",), ("me too",)]
    assert rows(path, "SELECT count(*) FROM messages WHERE role = 'user'") == [(1,)]
    # A changed projection hash reinstalls every projection: still nothing of the user's.
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE lh_meta SET value = 'edited' WHERE key = 'projections_sha256'")
    store.open_store(path).close()
    assert rows(path, "SELECT count(*) FROM my_notes") == [(2,)]
    assert rows(path, "SELECT count(*) FROM my_view") == [(2,)]


def test_fts_over_events_and_a_user_trigger_keep_lh_working(isolated_home):
    path = isolated_home / "sessions.db"
    with ScriptedServer([Text("first answer"), Text("second answer")]) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("hello", env=env).returncode == 0
        sqlite_utils("enable-fts", str(path), "events", "data", "--create-triggers")
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("CREATE TABLE seen (type TEXT)")
            conn.execute(
                "CREATE TRIGGER user_saw AFTER INSERT ON events "
                "BEGIN INSERT INTO seen VALUES (NEW.type); END"
            )
        ran = run_lh("-c", "needle in the haystack", env=env)
        assert ran.returncode == 0, ran.stderr
    assert "authoriz" not in ran.stderr
    found = rows(path, "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'haystack'")
    assert found == [(1,)]
    assert ("invocation.received",) in rows(path, "SELECT type FROM seen")
    doctor = run_lh("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout
    tamper(path)
    repaired = run_lh("doctor", "--repair", env=env)
    assert repaired.returncode == 0, repaired.stdout
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO events_fts(events_fts) VALUES ('integrity-check')")
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"events_fts", "events_fts_data", "events_ai", "seen", "user_saw"} <= names
    assert rows(path, "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'haystack'") == [(1,)]


def test_the_loops_connection_forks_and_appends_once_fts_is_added_under_it(isolated_home):
    path = isolated_home / "sessions.db"
    conn = store.open_events_only(path)  # opened before the index exists, as a running REPL
    session_id = store.create_session(conn)
    store.append(conn, session_id, {"type": "invocation.received", "text": "before"})
    sqlite_utils("enable-fts", str(path), "events", "data", "--create-triggers")
    branch = store.fork(conn, session_id)
    store.append(conn, branch, {"type": "invocation.received", "text": "needle"})
    with closing(conn), __import__("pytest").raises(sqlite3.DatabaseError):  # still events-only
        conn.execute("INSERT INTO events_fts (rowid, data) VALUES (99, 'x')")
    found = rows(path, "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'needle OR before'")
    assert found == [(3,)]  # the source's prompt, its copy in the branch, the new one
