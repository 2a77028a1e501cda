"""Invariant 7: the loop's per-step reads go through indexes, never a scan of
the session's history (checked on the query plans, not with timings)."""

from __future__ import annotations

import re

from leharness import store

from .util import tool_round


def plan(conn, sql: str, *params) -> str:
    return " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_per_step_reads_use_their_partial_indexes(db):
    session_id = store.create_session(db)
    tool_round(db, session_id)
    from leharness.projections import read

    sources = {
        # as session_view calls it: the session row it read gives compacted_seq
        "messages_visible": lambda conn, sid: read.visible_messages(conn, sid, None),
        "tool_calls_open": read.unanswered_tool_calls,
        "tasks_running": read.open_tasks,
        "tasks_pending": read.pending_notifications,
    }
    traced: list[str] = []
    db.set_trace_callback(traced.append)
    for function in sources.values():
        function(db, session_id)
    db.set_trace_callback(None)
    for index, statement in zip(sources, traced, strict=True):
        sql = statement.replace(f"'{session_id}'", "?")
        assert f"INDEX {index}" in plan(db, sql, session_id), (index, plan(db, sql, session_id))


def test_next_sequence_number_is_an_index_lookup(db):
    detail = plan(db, "SELECT max(session_seq) FROM events WHERE session_id = ?", "s")
    assert "USING COVERING INDEX" in detail


def test_the_inspectors_view_reads_go_through_indexes(db):
    """Datasette counts every view it pages and groups it for facets: on a big
    file these must not read whole tables (bench/inspector.py times them)."""
    assert "COVERING INDEX messages_visible" in plan(db, "SELECT count(*) FROM transcript")
    facet = (
        "SELECT name AS value, count(*) FROM (SELECT * FROM tool_failures) "
        "WHERE name IS NOT NULL GROUP BY name"
    )
    assert "INDEX tool_calls_failed" in plan(db, facet)
    one_session = plan(db, "SELECT * FROM session_timeline WHERE session_id = ?", "s")
    for table in ("timeline", "tool_calls", "tasks"):
        assert f"SEARCH {table} USING PRIMARY KEY (session_id=?)" in one_session, one_session
    assert "SEARCH model_usage" in plan(db, "SELECT * FROM token_usage WHERE session_id = ?", "s")


def test_timeline_writes_find_their_row_by_key(db):
    """Every timeline update finds its rows by primary key, the latest step by a
    max() over the key: never a walk over the session's rows."""
    triggers = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'proj_timeline_%'"
    ).fetchall()
    updates = [
        "UPDATE" + part.split(";")[0] for (sql,) in triggers for part in sql.split("UPDATE")[1:]
    ]
    assert len(updates) == 3
    for update in updates:
        sql = (
            update.replace("NEW.session_id", "'s'")
            .replace("NEW.ts", "'t'")
            .replace("NEW.type", "'x'")
        )
        sql = re.sub(r"json_extract\(NEW\.data, '[^']+'\)", "'c'", sql)
        detail = plan(db, sql)
        assert "USING PRIMARY KEY (session_id=? AND ref=? AND kind=?)" in detail, (sql, detail)
