"""Invariant 3: the loop's connection writes only into `events`."""

from __future__ import annotations

import sqlite3

import pytest

from leharness import store


@pytest.fixture
def loop_conn(isolated_home):
    conn = store.open_events_only()
    yield conn
    conn.close()


def test_appends_through_the_loop_connection_update_projections(loop_conn):
    session_id = store.create_session(loop_conn)
    store.append(loop_conn, session_id, {"type": "invocation.received", "text": "hi"})
    store.append(
        loop_conn,
        session_id,
        {"type": "model.completed", "tool_calls": [{"id": "c", "name": "bash"}]},
    )
    assert loop_conn.execute("SELECT content FROM messages").fetchall()[0][0] == "hi"
    assert loop_conn.execute("SELECT name FROM tool_calls").fetchone()[0] == "bash"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO messages (session_id, session_seq, role, kind, ts) "
        "VALUES ('s', 1, 'user', 'prompt', 't')",
        "UPDATE sessions SET title = 'x'",
        "DELETE FROM tasks",
        "DROP TABLE messages",
        "CREATE TABLE sneaky (x)",
        "DROP TRIGGER events_no_update",
    ],
)
def test_direct_writes_to_anything_but_events_are_refused(loop_conn, statement):
    session_id = store.create_session(loop_conn)
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        loop_conn.execute(statement)
    assert loop_conn.execute("SELECT title FROM sessions WHERE id = ?", (session_id,)).fetchone()
