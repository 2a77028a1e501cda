"""The one-shot command line as people type it: typos of commands, piped input, homes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from leharness.cli import cli
from leharness.cli.typos import distance, suggestion
from leharness.testing import ScriptedServer, Text

from .e2e_helpers import lh_env, query, run_lh


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (["sesions"], "lh sessions"),
        (["resume"], "lh --resume"),
        (["exprot", "abc"], "lh export"),
        (["mpc", "list"], "lh mcp"),
        (["shwo"], "lh show"),
    ],
)
def test_a_typo_of_a_command_stops_with_a_hint(isolated_home, args, meant):
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 2
    assert f"did you mean `{meant}`? (to send it as a prompt: lh -- {' '.join(args)})" in (
        done.output
    )
    assert not isolated_home.exists()  # no session was created


def test_prompts_that_only_look_alike_go_through():
    commands = ["show", "sessions", "sql", "demo", "export", "mcp"]
    for word in ("how", "do", "fix", "explain", "summarize this", "./sesions", "Sessions"):
        assert suggestion(word, commands) is None, word
    assert distance("exprot", "export") == 1 and distance("sesions", "sessions") == 1


def test_dash_dash_sends_the_word_as_a_prompt(server, isolated_home):
    server.push(Text("sent"))
    done = run_lh("--", "sesions", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent"
    assert server.requests[0].body["messages"][-1]["content"] == "sesions"


def test_piped_text_is_appended_to_the_prompt(server, isolated_home):
    import subprocess

    from .e2e_helpers import LH

    server.push(Text("summary"), Text("alone"))
    env = lh_env(isolated_home, server.base_url)
    done = subprocess.run(
        [LH, "summarize this"], input="line one\nline two\n", env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sent = server.requests[0].body["messages"][-1]["content"]
    assert sent == "summarize this\n\nline one\nline two"
    alone = subprocess.run(
        [LH], input="just this\n", env=env, capture_output=True, text=True, timeout=60
    )
    assert alone.returncode == 0, alone.stderr
    assert server.requests[1].body["messages"][-1]["content"] == "just this"


def test_the_home_is_found_like_git_and_dash_c_resumes_from_a_subfolder(server, tmp_path):
    import subprocess

    project = tmp_path / "project"
    deeper = project / "src" / "deeper"
    deeper.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    env = lh_env(tmp_path / "unused", server.base_url)
    del env["LEHARNESS_HOME"]
    server.push(Text("first"), Text("second"))
    assert run_lh("start here", env=env, cwd=project).returncode == 0
    home = project / ".leharness"
    assert (home / "sessions.db").exists()
    assert (home / ".gitignore").read_text().splitlines()[-1] == "*"
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=project,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert ".leharness" not in status.stdout  # the history stays out of git
    again = run_lh("-c", "and again", env=env, cwd=deeper)
    assert again.returncode == 0, again.stderr
    assert not (deeper / ".leharness").exists() and not (project / "src" / ".leharness").exists()
    assert server.requests[1].body["messages"][-1]["content"] == "and again"
    assert [m["content"] for m in server.requests[1].body["messages"] if m["role"] == "user"] == [
        "start here",
        "and again",
    ]


def test_leharness_home_wins_and_the_search_stops_below_the_user_home(tmp_path, monkeypatch):
    from leharness import store

    user = tmp_path / "user"
    (user / ".leharness").mkdir(parents=True)
    (user / "project" / "sub").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.delenv("LEHARNESS_HOME")
    monkeypatch.chdir(user / "project" / "sub")
    assert store.home_dir() == user / "project" / "sub" / ".leharness"  # ~/.leharness not taken
    monkeypatch.chdir(user)
    assert store.home_dir() == user / ".leharness"  # but used in ~ itself
    (user / "project" / ".leharness").mkdir()
    monkeypatch.chdir(user / "project" / "sub")
    assert store.home_dir() == user / "project" / ".leharness"
    monkeypatch.setenv("LEHARNESS_HOME", str(tmp_path / "elsewhere"))
    assert store.home_dir() == tmp_path / "elsewhere"


def test_a_one_shot_run_ends_with_a_usage_line_on_stderr(server, isolated_home):
    from leharness.testing import Call, ToolCalls

    server.push(ToolCalls(Call("bash", {"command": "echo hi"})), Text("done"))
    done = run_lh("go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"  # the answer alone on stdout
    line = next(x for x in done.stderr.splitlines() if x.startswith("2 steps"))
    _steps, calls, tokens, price = line.split(" · ")
    assert calls == "1 tool call"
    assert tokens.endswith(" out") and " tokens in / " in tokens
    assert price.startswith("$")  # gpt-4o-mini's price is known
    (prompt_tokens,) = query(isolated_home, "SELECT prompt_tokens FROM sessions")[0]
    assert tokens.startswith(f"{prompt_tokens:,} tokens in")


def test_hints_name_lh_so_they_can_be_pasted(isolated_home, tmp_path):
    import os
    from pathlib import Path

    from .e2e_helpers import LH

    bin_dir = str(Path(LH).parent)
    bare = {"PATH": "/usr/bin:/bin", "LEHARNESS_HOME": str(isolated_home)}
    done = subprocess_run([LH, "demo"], bare, tmp_path)
    assert f"  {LH} show " in done.stderr  # lh is not on PATH: the hint names its path
    assert f"  {Path(LH).with_name('datasette')} " in done.stderr
    on_path = dict(bare, PATH=bin_dir + os.pathsep + bare["PATH"])
    done = subprocess_run([LH, "demo"], on_path, tmp_path)
    assert "\n  lh show " in done.stderr


def subprocess_run(args, env, cwd):
    import subprocess

    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done
