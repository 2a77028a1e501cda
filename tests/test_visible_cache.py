"""The loop's view of the conversation is kept in memory between steps: a step
reads only the transcript rows past the last session_seq it saw, and a
compaction (which changes older rows) makes it read everything again. Either
way it equals what a fresh connection reads."""

from __future__ import annotations

import sqlite3

from leharness import projections, store

from .util import tool_round


def fresh(path, session_id: str) -> list:
    conn = store.open_store(path)
    try:
        return projections.visible_messages(conn, session_id)
    finally:
        conn.close()


def traced(conn: sqlite3.Connection) -> list[str]:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    return statements


def test_a_step_reads_only_rows_past_the_last_seen_and_a_compaction_rereads(tmp_path):
    path = tmp_path / "sessions.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    for n in range(3):
        tool_round(conn, session_id, f"question {n}")
    first = projections.session_view(conn, session_id).messages
    assert first == fresh(path, session_id) and len(first) == 12
    last_seen = first[-1].session_seq

    tool_round(conn, session_id, "question 3")
    statements = traced(conn)
    second = projections.session_view(conn, session_id).messages
    assert second == fresh(path, session_id) and len(second) == 16
    (read,) = [s for s in statements if "FROM transcript" in s]
    assert f"session_seq > {last_seen}" in read

    # A compaction hides the first two rounds: the kept list is thrown away.
    store.append(
        conn,
        session_id,
        {"type": "compaction.completed", "tier": "T6", "details": {"hide_through_seq": 17}},
    )
    statements.clear()
    third = projections.session_view(conn, session_id).messages
    assert third == fresh(path, session_id)
    assert len(third) < len(second) and third[0].content == "question 2"
    (read,) = [s for s in statements if "FROM transcript" in s]
    assert "session_seq > 0" in read
    # Without the session row at hand, visible_messages reads compacted_seq itself.
    assert projections.visible_messages(conn, session_id) == third
    conn.close()


def test_a_new_connection_to_another_file_never_sees_kept_rows(tmp_path):
    conns = []
    for name in ("a.db", "b.db"):
        conn = store.open_store(tmp_path / name)
        session_id = store.create_session(conn)
        tool_round(conn, session_id, f"in {name}")
        assert projections.visible_messages(conn, session_id)[0].content == f"in {name}"
        conns.append(conn)
    for conn in conns:
        conn.close()
