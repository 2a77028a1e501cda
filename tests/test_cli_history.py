"""`lh sessions`, `lh sql` and `lh fork` through click and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from leharness import store
from leharness.cli import cli

from .util import tool_round


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sessions_on_an_empty_database_prints_an_empty_list(db):
    result = run("sessions", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == []
    table = run("sessions")
    assert table.exit_code == 0
    assert "id" in table.output and "Traceback" not in table.output


def test_sessions_lists_newest_first(db):
    first = store.create_session(db)
    tool_round(db, first, "older prompt")
    second = store.create_session(db)
    store.append(db, second, {"type": "invocation.received", "text": "newer prompt"})
    rows = json.loads(run("sessions", "--json").output)
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1] == {
        "id": first,
        "title": "older prompt",
        "created_at": rows[1]["created_at"],
        "event_count": 9,
        "status": "idle",
        "parent_session_id": None,
        "steps": 2,
        "prompt_tokens": 12,
        "completion_tokens": 4,
    }
    csv_out = run("sessions", "--csv").output
    assert csv_out.splitlines()[0] == (
        "id,title,created_at,event_count,status,parent_session_id,steps,prompt_tokens,"
        "completion_tokens"
    )
    assert "\r" not in csv_out  # LF line endings, not csv's default CRLF
    table = run("sessions").output
    assert "tokens in/out" in table and "12 / 4" in table


def test_sql_runs_queries_and_formats_them(db):
    tool_round(db, store.create_session(db))
    result = run(
        "sql", "select type, count(*) as n from events group by type order by type", "--json"
    )
    assert result.exit_code == 0
    counts = {row["type"]: row["n"] for row in json.loads(result.output)}
    assert counts["model.completed"] == 2
    assert "model.completed" in run("sql", "select type from events").output


def test_sql_refuses_writes_and_changes_nothing(db):
    tool_round(db, store.create_session(db))
    for statement in (
        "delete from events",
        "insert into sessions (id) values ('x')",
        "drop table messages",
        "update sessions set title = 'x'",
    ):
        result = run("sql", statement)
        assert result.exit_code == 2
        assert "read-only" in result.output
    assert db.execute("select count(*) from events").fetchone()[0] == 9
    assert db.execute("select title from sessions").fetchone()[0] == "hi"


def test_sql_error_is_one_line(db):
    result = run("sql", "select * from nowhere")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: SQL error: no such table: nowhere"


def test_fork_prints_the_new_session_id(db):
    source = store.create_session(db)
    tool_round(db, source)
    result = run("fork", source[:12], "--at", "5")
    assert result.exit_code == 0
    forked = result.output.strip()
    row = db.execute(
        "select forked_from, forked_at from sessions where id = ?", (forked,)
    ).fetchone()
    assert tuple(row) == (source, 5)
    bad = run("fork", "no-such-session")
    assert bad.exit_code == 2 and "no session" in bad.output


def test_the_installed_lh_entry_point_runs_as_a_process(isolated_home, db):
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home)}
    lh = os.path.join(os.path.dirname(sys.executable), "lh")
    done = subprocess.run(
        [lh, "sessions", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    refused = subprocess.run(
        [lh, "sql", "delete from events"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr


def test_sql_csv_has_lf_line_endings(db):
    out = run("sql", "--csv", "select 1 as a, 'x' as b").output
    assert out == "a,b\n1,x\n"
