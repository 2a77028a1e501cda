"""Bad input from the user: unknown session ids, SQL injection through ids and options,
a LEHARNESS_HOME that is a file. Each gets one clear line, exit 2, and changes nothing."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from leharness import store
from leharness.cli import cli
from leharness.testing import ScriptedServer

from .e2e_helpers import lh_env, run_lh
from .util import tool_round

INJECTIONS = ["x' OR 1=1 --", "'; DROP TABLE events; --", "%", "_", '" OR ""="', ""]

# Every command that takes a session, as argv with {} for the id.
SESSION_COMMANDS = [
    ["run", "--session", "{}", "hello"],
    ["show", "{}"],
    ["fork", "{}"],
    ["export", "{}"],
    ["export", "--with-children", "{}"],
]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def populated(db, monkeypatch):
    """A database holding one finished session; a key so `run` gets as far as the store."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-used")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    session_id = store.create_session(db)
    tool_round(db, session_id)
    return session_id


def counts(db: sqlite3.Connection) -> tuple[int, int]:
    return db.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM sessions)"
    ).fetchone()


@pytest.mark.parametrize("command", SESSION_COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("session", ["01NOSUCHSESSION", *INJECTIONS])
def test_an_unknown_or_hostile_session_id_is_a_clear_no_session_error(
    populated, db, command, session
):
    before = counts(db)
    result = invoke(*(arg.replace("{}", session) for arg in command))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: no session {session!r} (`lh sessions` lists them)"
    assert counts(db) == before
    assert tuple(
        db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events'").fetchone()
    ) == (1,)


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "-n", "1; DROP TABLE events"],
        ["fork", "{}", "--at", "1 OR 1=1"],
        ["run", "--max-steps", "1; DROP TABLE events", "hi"],
        ["run", "--task-wait", "x' OR 1=1 --", "hi"],
    ],
)
def test_hostile_option_values_are_rejected_before_any_query(populated, db, args):
    before = counts(db)
    result = invoke(*(arg.replace("{}", populated) for arg in args))
    assert result.exit_code == 2
    assert "Invalid value" in result.output and "Traceback" not in result.output
    assert counts(db) == before


def test_fork_at_out_of_range_is_a_clear_error(populated, db):
    result = invoke("fork", populated, "--at", "-1")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: --at must be between 1 and 9 for session {populated}"


def test_a_prefix_with_like_wildcards_matches_literally(populated, db):
    result = invoke("show", populated[:6] + "%")
    assert result.exit_code == 2 and "no session" in result.output
    assert invoke("show", populated[:6]).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("hello",),
        ("--session", "abc", "hello"),
        ("-c", "hello"),
        ("sessions",),
        ("show", "abc"),
        ("sql", "select 1"),
        ("fork", "abc"),
        ("export", "abc"),
        ("doctor",),
        ("demo",),
    ],
)
def test_a_leharness_home_that_is_a_file_is_one_clear_line(tmp_path, args):
    home = tmp_path / "not-a-folder"
    home.write_text("precious\n")
    with ScriptedServer([]) as server:
        done = run_lh(*args, env=lh_env(home, server.base_url), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"Error: {home} is a file, not a folder: set LEHARNESS_HOME to a folder"
    )
    assert home.read_text() == "precious\n"


def test_import_into_a_home_that_is_a_file(tmp_path):
    home = tmp_path / "file"
    home.write_text("x")
    lines = tmp_path / "in.jsonl"
    lines.write_text("")
    done = run_lh("import", str(lines), env=lh_env(home, "http://127.0.0.1:9/v1"))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("is a file, not a folder: set LEHARNESS_HOME to a folder")
