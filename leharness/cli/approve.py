"""Asking the user to approve a tool call: on the terminal (one-shot) or in the REPL.

The loop decides *when* to ask (tools/approval.py); these only put the
question, show what would run (the command, or the diff of the edit) before it
runs, and read one key: y / n / a. On the terminal, three unclear keys or end
of input count as "deny"; in the REPL an unclear answer is asked again, and
Ctrl-C / Esc cancels the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any, TextIO

from leharness.tools.approval import (
    MODES,
    ApprovalRequest,
    Approver,
    Decision,
    Mode,
    parse_answer,
)

QUESTION = "allow? [y]es / [n]o / [a]lways for this session: "
TRIES = 3
MAX_PREVIEW_LINES = 40


def approval_mode(flag: str | None) -> Mode:
    """The resolved setting (flag > LEHARNESS_APPROVAL > settings.toml), else ask: on a
    terminal the user answers; without one, calls that change things are refused."""
    if flag in MODES:  # click.Choice and the settings checked it
        return flag
    if flag:
        raise ValueError(f"unknown approval mode {flag!r}")
    return "ask"


def preview(request: ApprovalRequest, cwd: Path) -> list[str]:
    """What the user should see before answering: a multi-line command in full, the diff
    of a file change (cut at MAX_PREVIEW_LINES)."""
    args = request.arguments
    if request.name == "bash" and "\n" in str(args.get("command", "")):
        lines = [f"  {line}" for line in str(args["command"]).splitlines()]
    else:
        from .diffs import planned_diff  # difflib, only once a change asks (~1 ms)

        lines = planned_diff(request.name, args, cwd)
    if len(lines) > MAX_PREVIEW_LINES:
        more = len(lines) - MAX_PREVIEW_LINES
        lines = [*lines[:MAX_PREVIEW_LINES], f"… {more} more line{'s' if more != 1 else ''}"]
    return lines


def terminal_approver(err: TextIO, fd: int, cwd: Path | None = None) -> Approver:
    """Ask on stderr and read one key from `fd` (a terminal) without blocking the loop."""

    async def approve(request: ApprovalRequest) -> Decision:
        err.write(f"? {request.name}: {request.summary}\n")
        for line in preview(request, cwd or Path.cwd()):
            err.write(f"    {line}\n")
        with _cbreak(fd):  # for all tries: leaving it between keys would lose typed-ahead ones
            for _ in range(TRIES):
                err.write(f"  {QUESTION}")
                err.flush()
                key = await read_key(fd)
                err.write(f"{key or ''}\n")
                decision = parse_answer(key) if key is not None else "deny"
                if decision is not None:
                    return decision
        return "deny"

    return approve


async def read_key(fd: int) -> str | None:
    """One key from `fd` (None at end of input); blank keys (Enter, space) are skipped.
    Put a terminal in cbreak mode first (_cbreak) so that no Enter is needed. Cancellable."""
    while True:
        chunk = await _read_ready(fd)
        if not chunk:
            return None
        text = chunk.decode(errors="replace").strip()
        if text:
            return text


@contextlib.contextmanager
def _cbreak(fd: int) -> Any:
    try:
        import termios
        import tty

        saved = termios.tcgetattr(fd)
    except (ImportError, OSError):  # not a terminal (a pipe in tests): read as it comes
        yield
        return
    tty.setcbreak(fd, termios.TCSANOW)  # not the default TCSAFLUSH: it drops typed-ahead keys
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _read_ready(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(os.read(fd, 1))  # one key; what was typed ahead waits its turn

    loop.add_reader(fd, readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


class LineApprover:
    """The REPL's approver. The prompt stays up while the agent works, so the question (and
    the diff of a file change) is printed above it, and one key — y, n or a, pressed at
    an empty prompt — answers it (a submitted line does too) instead of being queued as a
    steering message. Ctrl-C or Esc cancels the run, and the question with it."""

    def __init__(self, console: Any, cwd: Path | None = None) -> None:
        self.console = console
        self.cwd = cwd
        self.pending: asyncio.Future[Decision] | None = None
        self.asked_at = 0.0  # monotonic, for the status line

    async def __call__(self, request: ApprovalRequest) -> Decision:
        from .rich_channel import print_diff

        self.console.print(f"? {request.name}: {request.summary}", style="yellow", markup=False)
        lines = preview(request, self.cwd or Path.cwd())
        if request.name == "bash":
            for line in lines:
                self.console.print(f"    {line}", markup=False)
        else:
            print_diff(self.console, lines)
        self.console.print(f"  {QUESTION}(one key)", style="yellow", markup=False)
        self.pending = asyncio.get_running_loop().create_future()
        self.asked_at = time.monotonic()
        try:
            return await self.pending
        finally:
            self.pending = None

    @property
    def asking(self) -> bool:
        return self.pending is not None and not self.pending.done()

    def answer(self, line: str) -> bool:
        """Take `line` as the answer when a question is open; False: the line is not one."""
        if not self.asking or line.startswith("/"):
            return False
        decision = parse_answer(line)
        if decision is None:
            self.console.print("  answer y, n or a", style="yellow", markup=False)
            return True
        assert self.pending is not None
        self.console.print(f"  {line.strip()}", style="yellow", markup=False)
        self.pending.set_result(decision)
        return True
