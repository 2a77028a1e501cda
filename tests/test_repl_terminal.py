"""The real `lh` interactive session in a real terminal (tmux), against the scripted
server: the prompt stays while the agent answers, a line typed meanwhile is queued
and steers the next step, Ctrl-D leaves with the resume hint."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leharness.testing import Call, ScriptedServer, Slow, Text, ToolCalls

from .e2e_helpers import LH, lh_env, query

# serial: keys are typed while the scripted answer is delayed; other tests on the same
# cores could stretch a step past that window
pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.serial,
]


class Terminal:
    """One tmux server of our own (its own socket), one window running a command."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-S", "-200", "-t", "lh")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "lh", *keys)

    def wait_for(self, text: str, timeout_s: float = 20) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the terminal:\n{self.screen()}")


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"lh-test-{os.getpid()}-{time.monotonic_ns()}")
    yield term
    term.tmux("kill-server")


def test_typing_while_lh_answers_in_a_terminal(terminal: Terminal, isolated_home: Path):
    steps = [
        Slow(ToolCalls(Call("bash", {"command": "echo first-step"})), delay_s=0.3),
        Text("**all done**"),
    ]
    with ScriptedServer(steps) as server:
        # what tmux emulates; auto: this test is about steering, not approvals
        env = lh_env(isolated_home, server.base_url, TERM="screen", LEHARNESS_APPROVAL="auto")
        command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        terminal.tmux(
            "new-session", "-d", "-s", "lh", "-x", "100", "-y", "40",
            f"env -i {command} {shlex.quote(LH)}; sleep 30",
        )  # fmt: skip
        terminal.wait_for("/help")
        terminal.type("do the thing", "Enter")
        terminal.type("and mind the tests", "Enter")  # the answer is still streaming
        terminal.wait_for("⧗ queued: and mind the tests")
        shown = terminal.wait_for("all done")
        assert "**all done**" not in shown  # markdown rendered
        assert "⏺ bash: echo first-step" in shown
        terminal.type("C-d")
        terminal.wait_for("· resume: ")  # then lh by its full path: it is not on PATH here
    rows = query(
        isolated_home,
        "SELECT json_extract(data, '$.text'), json_extract(data, '$.kind') FROM events "
        "WHERE type = 'invocation.received' ORDER BY seq",
    )
    assert rows == [("do the thing", "message"), ("and mind the tests", "steering")]
    assert server.requests[1].messages[-1] == {"role": "user", "content": "and mind the tests"}


def test_the_interactive_default_asks_before_bash_in_a_terminal(
    terminal: Terminal, isolated_home: Path
):
    work = isolated_home.parent
    steps = [
        ToolCalls(Call("bash", {"command": "touch asked-first"})),
        Text("made it"),
        ToolCalls(Call("bash", {"command": "touch refused"})),
        Text("fine, I did not"),
    ]
    with ScriptedServer(steps) as server:
        env = lh_env(isolated_home, server.base_url, TERM="screen", LEHARNESS_APPROVAL="")
        command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        terminal.tmux(
            "new-session", "-d", "-s", "lh", "-x", "100", "-y", "40", "-c", str(work),
            f"env -i {command} {shlex.quote(LH)}; sleep 30",
        )  # fmt: skip
        terminal.wait_for("/help")
        terminal.type("make a file", "Enter")
        terminal.wait_for("? bash: touch asked-first")
        terminal.wait_for("approve? y / n / a")  # the status line says what lh waits for
        terminal.type("y")  # one key, no Enter
        terminal.wait_for("made it")
        terminal.type("another", "Enter")
        terminal.wait_for("? bash: touch refused")
        terminal.type("n")
        terminal.wait_for("fine, I did not")
        terminal.type("C-d")
        terminal.wait_for("· resume: ")  # then lh by its full path: it is not on PATH here
    assert (work / "asked-first").exists() and not (work / "refused").exists()
    rows = query(
        isolated_home,
        "SELECT json_extract(data, '$.decision') FROM events "
        "WHERE type = 'approval.decided' ORDER BY seq",
    )
    assert rows == [("allow",), ("deny",)]
