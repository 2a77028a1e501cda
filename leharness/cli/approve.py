"""Asking the user to approve a tool call: on the terminal (one-shot) or in the REPL.

The loop decides *when* to ask (tools/approval.py); these only put the
question and read y / n / a. On the terminal, three unclear answers or end of
input count as "deny"; in the REPL an unclear answer is asked again, and
Ctrl-C / Esc cancels the run.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, TextIO

from leharness.tools.approval import ApprovalRequest, Approver, Decision, Mode, parse_answer

QUESTION = "allow? [y]es / [n]o / [a]lways for this session: "
TRIES = 3


def approval_mode(flag: str | None, interactive: bool) -> Mode:
    """The resolved setting (flag > LEHARNESS_APPROVAL > settings.toml), else ask when
    interactive and auto for a one-shot run."""
    if flag:
        return flag  # type: ignore[return-value] - click.Choice checked it
    return "ask" if interactive else "auto"


def terminal_approver(err: TextIO, fd: int) -> Approver:
    """Ask on stderr and read the answer from `fd` (a terminal) without blocking the loop."""

    async def approve(request: ApprovalRequest) -> Decision:
        err.write(f"? {request.name}: {request.summary}\n")
        for _ in range(TRIES):
            err.write(f"  {QUESTION}")
            err.flush()
            line = await read_line(fd)
            decision = parse_answer(line) if line is not None else "deny"
            if decision is not None:
                return decision
        return "deny"

    return approve


async def read_line(fd: int) -> str | None:
    """One line from `fd` once it is readable (None at end of input); cancellable."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()
    data = bytearray()

    def readable() -> None:
        chunk = os.read(fd, 1024)
        data.extend(chunk)
        if not done.done() and (not chunk or b"\n" in chunk):
            done.set_result(data.decode(errors="replace") if data else None)

    loop.add_reader(fd, readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


class LineApprover:
    """The REPL's approver. The prompt stays up while the agent works, so the question is
    printed above it and the next line the user submits (y / n / a) answers it instead
    of being queued as a steering message. Ctrl-C or Esc cancels the run, and the
    question with it."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.pending: asyncio.Future[Decision] | None = None
        self.asked_at = 0.0  # monotonic, for the status line

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.console.print(f"? {request.name}: {request.summary}", style="yellow", markup=False)
        self.console.print(f"  {QUESTION}", style="yellow", markup=False)
        self.pending = asyncio.get_running_loop().create_future()
        self.asked_at = time.monotonic()
        try:
            return await self.pending
        finally:
            self.pending = None

    def answer(self, line: str) -> bool:
        """Take `line` as the answer when a question is open; False: the line is not one."""
        if self.pending is None or self.pending.done() or line.startswith("/"):
            return False
        decision = parse_answer(line)
        if decision is None:
            self.console.print("  answer y, n or a", style="yellow", markup=False)
            return True
        self.pending.set_result(decision)
        return True
