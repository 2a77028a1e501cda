"""The one-shot command line as people type it: typos of commands, piped input, homes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from leharness.cli import cli
from leharness.cli.typos import distance, suggestion
from leharness.testing import ScriptedServer, Text

from .e2e_helpers import lh_env, run_lh


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
