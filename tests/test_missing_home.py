"""A mistyped LEHARNESS_HOME: commands that only read (or need a session that exists)
say so in one line and create nothing; only a run of the agent creates the home."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from leharness.cli import cli

from .e2e_helpers import lh_env, run_lh

NO_DATABASE = "no database at {db}: no sessions here yet"

# (arguments, the line it prints) for every command that must not create the home
NEEDS_HISTORY = [
    ["sessions"],
    ["sessions", "--json"],
    ["sql", "select 1"],
    ["show", "abc"],
    ["show", "abc", "--at", "2"],
    ["export", "abc"],
    ["replay", "abc"],
    ["inspect", "--no-open", "--port", "0"],
    ["fork", "abc"],
    ["compact", "abc"],
    ["--session", "abc", "hello"],
    ["search", "hello"],
    ["diff", "abc"],
]
# Commands that read settings only: they succeed, and still create nothing.
READS_SETTINGS = [["config"], ["mcp", "list"], ["skills"]]


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("args", NEEDS_HISTORY, ids=" ".join)
def test_a_missing_home_is_one_line_and_stays_missing(tmp_path, args):
    home = tmp_path / "no-such-home"
    before = files_under(tmp_path)
    # The real program, with a time limit: before the fix `lh inspect` created the file
    # and served it.
    done = run_lh(*args, env=lh_env(home, "http://127.0.0.1:9/v1"), cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    line = NO_DATABASE.format(db=home / "sessions.db")
    assert done.stderr.startswith(f"Error: {line}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
    assert not home.exists()
    assert files_under(tmp_path) == before  # not even a .leharness in the working directory


def test_continue_on_a_missing_home_creates_nothing(isolated_home, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    result = CliRunner().invoke(cli, ["-c", "hello"])
    assert result.exit_code == 2
    assert "no session to continue yet" in result.output
    assert not isolated_home.exists()


@pytest.mark.parametrize("args", READS_SETTINGS, ids=" ".join)
def test_commands_that_read_settings_work_without_a_home(isolated_home, args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert not isolated_home.exists()


def test_a_home_that_is_a_file_is_named(isolated_home):
    isolated_home.write_text("not a folder")
    result = CliRunner().invoke(cli, ["sessions"])
    assert result.exit_code == 2
    assert f"{isolated_home} is a file, not a folder" in result.output
