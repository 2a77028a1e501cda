"""Asking the user to approve a tool call: on the terminal (one-shot) or in the REPL.

The loop decides *when* to ask (tools/approval.py); these functions only put
the question and read y / n / a. Anything else than a clear answer, Ctrl-C
or end of input counts as "deny".
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, TextIO

from leharness.tools.approval import ApprovalRequest, Approver, Decision, Mode, parse_answer

QUESTION = "allow? [y]es / [n]o / [a]lways for this session: "
TRIES = 3


def approval_mode(flag: str | None, interactive: bool) -> Mode:
    """--approval (or LEHARNESS_APPROVAL, which click reads) > ask when interactive, else auto."""
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


def prompt_approver(prompt_session: Any, console: Any) -> Approver:
    """The REPL's approver: a prompt_toolkit question on the REPL's own input and output
    (a separate prompt, so answers stay out of the line history)."""
    from prompt_toolkit import PromptSession

    asker: PromptSession[str] = PromptSession(
        input=prompt_session.input, output=prompt_session.output
    )

    async def approve(request: ApprovalRequest) -> Decision:
        console.print(f"? {request.name}: {request.summary}", style="yellow")
        for _ in range(TRIES):
            try:
                answer = await asker.prompt_async(f"  {QUESTION}")
            except (KeyboardInterrupt, EOFError):
                return "deny"
            decision = parse_answer(answer)
            if decision is not None:
                return decision
        return "deny"

    return approve
