"""Approval: whether a tool call that changes things may run, and the record of who said so.

Three modes. `auto` runs everything. `read-only` refuses every tool that
mutates (bash, write_file, edit_file, and MCP tools their server does not mark
readOnlyHint) at once with a message the model reads.
`ask` asks the user through an `Approver` the CLI provides (this layer never
touches a terminal): allow, deny, or always (this tool, for the rest of the
session); the question and the answer are events. With no approver (no
terminal, a background subagent) a call that needs approval is refused.
Read-only tools never ask.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from leharness.store import events as ev

from .base import Tool, ToolError
from .redact import redact

Mode = Literal["ask", "auto", "read-only"]
MODES: tuple[Mode, ...] = ("ask", "auto", "read-only")
Decision = Literal["allow", "deny", "always"]
SUMMARY_CHARS = 500


@dataclass(frozen=True)
class ApprovalRequest:
    call_id: str
    name: str
    summary: str
    arguments: dict[str, Any] = field(default_factory=dict)  # for the asker's preview only


Approver = Callable[[ApprovalRequest], Awaitable[Decision]]
Record = Callable[[ev.Payload], Any]


@dataclass
class Approval:
    """One session's approval policy; `always` holds the tools the user allowed for good."""

    mode: Mode = "auto"
    approver: Approver | None = None
    unattended: str = "no_terminal"  # who decides when there is no approver
    always: set[str] = field(default_factory=set)

    def for_subagent(self) -> Approval:
        """A child runs in the background and cannot ask; it shares the `always` answers."""
        return Approval(self.mode, None, "subagent", self.always)

    async def check(self, call_id: str, tool: Tool, args: Any, record: Record) -> None:
        """Return if the call may run; raise ToolError (read_only, denied) if not."""
        if not tool.mutates or self.mode == "auto":
            return
        if self.mode == "read-only":
            raise ToolError(
                f"{tool.name} is not available: lh runs in read-only mode (--approval "
                "read-only), which refuses tools that run commands or change things. Use "
                "read_file, list_files and grep, and tell the user what you would change.",
                "read_only",
            )
        if tool.name in self.always:
            record(ev.ApprovalDecided(call_id=call_id, decision="allow", by="always"))
            return
        values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
        request = ApprovalRequest(call_id, tool.name, redact(summary(tool.name, args)), values)
        record(ev.ApprovalRequested(call_id=call_id, name=tool.name, summary=request.summary))
        if self.approver is None:
            record(ev.ApprovalDecided(call_id=call_id, decision="deny", by=self.unattended))
            raise ToolError(_unattended_message(tool.name, self.unattended), "denied")
        try:
            decision = await self.approver(request)
        except asyncio.CancelledError:
            record(ev.ApprovalDecided(call_id=call_id, decision="deny", by="cancelled"))
            raise
        except Exception as error:  # e.g. the terminal went away: refuse, never run unasked
            record(ev.ApprovalDecided(call_id=call_id, decision="deny", by="error"))
            raise ToolError(
                f"could not ask the user about this {tool.name} call ({error}); it was not run",
                "denied",
            ) from None
        record(ev.ApprovalDecided(call_id=call_id, decision=decision, by="user"))
        if decision == "always":
            self.always.add(tool.name)
        elif decision != "allow":
            raise ToolError(
                f"the user denied this {tool.name} call; it was not run. Do not repeat it "
                "as is: ask the user, or find another way.",
                "denied",
            )


def _unattended_message(name: str, who: str) -> str:
    if who == "subagent":
        return (
            f"{name} needs the user's approval, which a background subagent cannot ask "
            "for; the call was not run. Report what you would do to the agent that "
            "started you."
        )
    return (
        f"{name} needs the user's approval (--approval ask), but there is no terminal "
        "to ask on; the call was not run. Tell the user what you would do; they can "
        "rerun with --approval auto."
    )


def summary(name: str, args: BaseModel | dict[str, Any]) -> str:
    """What the user is asked to approve, on a line or a few."""
    values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
    if name == "bash":
        text = values.get("command", "")
    elif name == "write_file":
        text = f"{values.get('path')} ({len(values.get('content', '').encode()):,} bytes)"
    elif name == "edit_file":
        text = f"{values.get('path')}: replace {len(values.get('old_string', '')):,} chars"
    else:
        text = json.dumps(values, ensure_ascii=False)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


_ANSWERS: dict[str, Decision] = {
    "y": "allow",
    "yes": "allow",
    "n": "deny",
    "no": "deny",
    "a": "always",
    "always": "always",
}


def parse_answer(answer: str) -> Decision | None:
    """y / n / a (and yes / no / always); None when the answer is not one of them."""
    return _ANSWERS.get(answer.strip().lower())
