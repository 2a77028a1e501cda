"""Full-text search: the conversation_fts index kept by triggers, `lh search`, the
sqlite-utils/Datasette layout, rebuild and doctor."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from click.testing import CliRunner

from leharness import store
from leharness.cli import cli
from leharness.cli.search import parse_since
from leharness.projections.search import (
    SearchFilters,
    matching_session_ids,
    search,
    search_sessions,
)

from .util import snapshot


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _session(conn, prompt: str, command: str, result: str, answer: str) -> str:
    session_id = store.create_session(conn)
    store.append(conn, session_id, {"type": "invocation.received", "text": prompt})
    store.append(
        conn,
        session_id,
        {
            "type": "model.completed",
            "text": "",
            "tool_calls": [
                {"id": "c1", "name": "bash", "arguments": json.dumps({"command": command})}
            ],
        },
    )
    store.append(conn, session_id, {"type": "tool.started", "call_id": "c1", "name": "bash"})
    store.append(
        conn,
        session_id,
        {"type": "tool.completed", "call_id": "c1", "name": "bash", "result": result},
    )
    store.append(conn, session_id, {"type": "model.completed", "text": answer})
    store.append(conn, session_id, {"type": "agent.finished", "reason": "no_tool_calls"})
    return session_id


def _two_sessions(db) -> tuple[str, str]:
    first = _session(
        db,
        "why does the parser crash on unicode input",
        "pytest tests/test_parser.py",
        "UnicodeDecodeError in parser.py line 12",
        "The parser reads bytes as ascii; decoding them as utf-8 fixes the crash.",
    )
    second = _session(
        db,
        "add a retry to the http client",
        "grep -rn retry src/",
        "src/http.py:40: # TODO retry",
        "Added exponential backoff retries to the http client.",
    )
    return first, second


def test_every_kind_of_conversation_is_indexed_and_ranked(db):
    first, second = _two_sessions(db)
    store.append(db, first, {"type": "task.delivered", "task_ids": ["t1"], "text": "build ok"})
    hits = search(db, "parser")
    assert {h.session_id for h in hits} == {first}
    assert {h.kind for h in hits} == {"prompt", "answer", "tool_result"}
    assert search(db, '"http client"')[0].session_id == second
    assert [h.kind for h in search(db, "test_parser")] == ["answer"]  # a call's arguments
    assert [h.kind for h in search(db, "build")] == ["notification"]
    assert [h.kind for h in search(db, "retr*", SearchFilters(role="tool"))] == ["tool_result"]
    assert search(db, "NEAR(exponential client, 5)")[0].session_id == second
    top = search(db, "parser crash")[0]
    assert top.title == "why does the parser crash on unicode input"
    assert "\x02parser\x03" in top.snippet


def test_filters_narrow_the_hits(db):
    _, second = _two_sessions(db)
    assert {h.session_id for h in search(db, "the", SearchFilters(session_id=second))} == {second}
    assert {h.role for h in search(db, "parser OR http", SearchFilters(role="user"))} == {"user"}
    tool_hits = search(db, "parser OR retry", SearchFilters(tool="bash"))
    assert {h.kind for h in tool_hits} == {"answer", "tool_result"}
    assert search(db, "parser", SearchFilters(tool="read_file")) == []
    assert search(db, "parser", SearchFilters(since="2999-01-01T00:00:00.000Z")) == []
    assert len(search(db, "parser OR http", limit=2)) == 2


def test_search_sessions_gives_each_matching_session_once(db):
    first, second = _two_sessions(db)
    sessions = search_sessions(db, "parser")
    assert [s.id for s in sessions] == [first]
    assert sessions[0].hits == 4  # prompt, the call naming test_parser.py, result, answer
    assert {s.id for s in search_sessions(db, "the")} == {first, second}


def test_the_pickers_filter_gives_each_matching_session_once(db):
    first, second = _two_sessions(db)
    assert matching_session_ids(db, "parser") == [first]
    both = matching_session_ids(db, "the")
    assert sorted(both) == sorted([first, second]) and len(both) == 2
    assert matching_session_ids(db, "the", limit=1) in ([first], [second])


def test_lh_search_prints_ranked_hits_and_json(db):
    first, _ = _two_sessions(db)
    result = run("search", "unicode")
    assert result.exit_code == 0
    assert first in result.output and "why does the parser crash" in result.output
    assert "  user  " in result.output
    rows = json.loads(run("search", "unicode", "--json").output)
    assert rows[0]["session_id"] == first
    assert rows[0]["highlighted"].count("[") >= 1 and "\x02" not in rows[0]["snippet"]
    rows = json.loads(run("search", "parser", "--json", "--tool", "bash", "--since", "1h").output)
    assert {r["kind"] for r in rows} == {"answer", "tool_result"}
    assert run("search", "nothingmatchesthis").exit_code == 1


def test_bad_queries_and_options_are_one_line_errors(db):
    _two_sessions(db)
    result = CliRunner().invoke(cli, ["search", '"unclosed'])
    assert result.exit_code == 2
    assert "not a valid search query" in result.output and "Traceback" not in result.output
    bad_since = CliRunner().invoke(cli, ["search", "x", "--since", "yesterday"])
    assert bad_since.exit_code == 2 and "--since" in bad_since.output
    assert CliRunner().invoke(cli, ["search", "x", "--session", "nope"]).exit_code == 2


def test_parse_since_understands_relative_and_absolute_times():
    from datetime import UTC, datetime

    now = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == "2026-05-10T10:00:00.000Z"
    assert parse_since("1w", now) == "2026-05-03T12:00:00.000Z"
    assert parse_since("2026-01-31", now) == "2026-01-31T00:00:00.000Z"


def test_sqlite_utils_and_datasette_find_the_index(db, isolated_home):
    first, _ = _two_sessions(db)
    path = isolated_home / "sessions.db"
    out = subprocess.run(
        [sys.executable, "-m", "sqlite_utils", "search", str(path), "conversation", "unicode"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = json.loads(out)
    assert rows and {r["session_id"] for r in rows} == {first}
    from datasette.utils import detect_fts

    assert detect_fts(sqlite3.connect(path), "conversation") == "conversation_fts"


def test_rebuild_reproduces_the_index_and_doctor_repairs_a_damaged_one(db):
    first, _ = _two_sessions(db)
    live = snapshot(db)
    store.rebuild(db)
    assert snapshot(db) == live
    assert [h.session_id for h in search(db, "parser")] == [first] * 4
    db.execute("INSERT INTO conversation_fts (conversation_fts) VALUES ('delete-all')")
    assert search(db, "parser") == []
    found = run("doctor")
    assert found.exit_code == 1
    assert "projection conversation_fts differs from a rebuild" in found.output
    repaired = run("doctor", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert len(search(db, "parser")) == 4


def test_the_loops_connection_keeps_the_index(isolated_home):
    conn = store.open_events_only(isolated_home / "sessions.db")
    session_id = store.create_session(conn)
    store.append(conn, session_id, {"type": "invocation.received", "text": "indexed anyway"})
    assert [h.kind for h in search(conn, "indexed")] == ["prompt"]
    try:
        conn.execute(
            "INSERT INTO conversation (session_id, session_seq, role, kind, text, ts) "
            "VALUES ('x', 1, 'user', 'prompt', 'x', 'x')"
        )
    except sqlite3.DatabaseError as error:
        assert "not authorized" in str(error)
    else:
        raise AssertionError("the loop's connection wrote a projection directly")
    conn.close()


def test_past_the_rank_window_the_newest_matches_are_ranked(db, monkeypatch):
    from leharness.projections import search as search_module

    session_id = store.create_session(db)
    for text in ("needle needle needle first", "needle second", "needle third"):
        store.append(db, session_id, {"type": "invocation.received", "text": text})
    assert len(search(db, "needle")) == 3
    monkeypatch.setattr(search_module, "RANK_WINDOW", 2)
    hits = search(db, "needle")
    assert sorted(h.session_seq for h in hits) == [3, 4]  # the best match, seq 2, is older
