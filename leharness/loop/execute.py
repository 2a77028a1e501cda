"""Running one reply's tool calls: approval, batching, and recording every result.

    run_tool_calls: parse and check each call (unknown tool, bad arguments, a pre_tool
      hook, the approval policy) in call order -> tool.started for each that may run
      -> run them together -> tool.completed | tool.failed in call order

Every call gets exactly one result event, also when the user cancels (the
"interrupted" failures). A large output goes to an artifact and the model sees
a stub; secrets are redacted before anything is recorded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leharness import projections, store
from leharness.store import events as ev
from leharness.tools import artifacts
from leharness.tools.approval import Approval
from leharness.tools.base import Tool, ToolContext, ToolError
from leharness.tools.redact import redact

from . import hooks
from .session import LoopSession, uncancel

if TYPE_CHECKING:
    from leharness.tools.agents import Spawn


async def run_tool_calls(
    session: LoopSession, calls: list[ev.ToolCall], spawn: Spawn | None = None
) -> bool:
    """Ask about the calls that need approval, in call order, then run every call that may
    run together (two approved `sleep 2` take 2 s, not 4); results are recorded in call
    order. `spawn` starts a subagent (subagents.spawner). False if cancelled."""
    plan: list[Planned | Refused] = []
    try:
        for call in calls:
            plan.append(await _plan(session, call))
    except asyncio.CancelledError:  # while asking: nothing has run yet
        uncancel()
        for call in calls:
            _record_failure(session, call, "not run: the user cancelled", "interrupted")
        return False
    ran = await _run_batch(session, plan, spawn)
    await hooks.run_queued(session)  # post_tool
    return ran


Planned = tuple[ev.ToolCall, Tool, Any]


def remember_approvals(session: LoopSession) -> Approval:
    """The session's approval policy with the "always" answers recorded for it, which
    hold for the rest of the session: also in a new process (`lh -c`, /resume)."""
    if session.approval.mode == "ask":
        session.approval.always |= projections.always_allowed(session.conn, session.session_id)
    return session.approval


@dataclass(frozen=True)
class Refused:
    """A call that will not run (unknown tool, bad arguments, refused), and why."""

    call: ev.ToolCall
    error: str
    kind: str


async def _plan(session: LoopSession, call: ev.ToolCall) -> Planned | Refused:
    """The call ready to run, or why not; a call that mutates asks the session's approval
    policy first (CancelledError propagates)."""
    try:
        tool, args = session.tools.parse(call.name, call.arguments)
    except ToolError as error:  # unknown tool or bad arguments: the model hears why
        return Refused(call, str(error), error.kind)
    blocked = await hooks.pre_tool(session, call) if session.hooks else None
    if blocked is not None:  # a pre_tool hook exited 2: its stderr is the error
        return Refused(call, blocked, "hook_blocked")
    if tool.mutates:
        remember_approvals(session)
        try:
            await session.approval.check(call.id, tool, args, session.record)
        except ToolError as refusal:
            return Refused(call, str(refusal), refusal.kind)
    return call, tool, args


async def _run_batch(
    session: LoopSession, plan: list[Planned | Refused], spawn: Spawn | None
) -> bool:
    """Start every call that may run, run them together, record results in call order."""
    batch = [item for item in plan if not isinstance(item, Refused)]
    for call, _tool, _args in batch:
        session.record(ev.ToolStarted(call_id=call.id, name=call.name))
    jobs = {
        call.id: asyncio.ensure_future(_run_one(session, tool, args, call, spawn))
        for call, tool, args in batch
    }
    try:
        await asyncio.gather(*jobs.values())
    except asyncio.CancelledError:
        uncancel()
        for job in jobs.values():
            job.cancel()
        await asyncio.gather(*jobs.values(), return_exceptions=True)  # let tools clean up
        for item in plan:
            if isinstance(item, Refused):
                _record_failure(session, item.call, item.error, item.kind)
            else:
                _record_failure(session, item[0], "interrupted by the user", "interrupted")
        return False
    for item in plan:
        if isinstance(item, Refused):
            _record_failure(session, item.call, item.error, item.kind)
            continue
        call, tool, _args = item
        ok, output, kind, duration_ms = jobs[call.id].result()
        if ok:
            _record_result(session, call, output, duration_ms, tool.inline_limit)
        else:
            _record_failure(session, call, output, kind, duration_ms)
    return True


def _record_result(
    session: LoopSession, call: ev.ToolCall, output: str, duration_ms: int, limit: int | None = None
) -> None:
    """tool.completed; an output over 8 KiB (or the tool's own limit) goes to an artifact file
    and the model gets a stub."""
    output = redact(output)  # before it reaches the event, the artifact or the model
    data = output.encode("utf-8", "replace")
    artifact_id = None
    if len(data) > (limit or artifacts.INLINE_LIMIT):
        try:
            saved = artifacts.save(session.home or store.home_dir(), session.session_id, data)
        except OSError as error:
            message = f"the output ({len(data):,} bytes) could not be saved as an artifact: {error}"
            _record_failure(session, call, message, "artifact_error", duration_ms)
            return
        session.record(saved.created("tool_output", call_id=call.id))
        output, artifact_id = artifacts.stub(saved, output), saved.artifact_id
    session.record(
        ev.ToolCompleted(
            call_id=call.id,
            name=call.name,
            result=output,
            artifact_id=artifact_id,
            duration_ms=duration_ms,
        )
    )


async def _run_one(
    session: LoopSession, tool: Tool, args: Any, call: ev.ToolCall, spawn: Spawn | None
) -> tuple[bool, str, str, int]:
    """(ok, output or error, failure kind, duration ms). Only cancellation propagates."""
    ctx = ToolContext(
        cwd=session.cwd,
        session_id=session.session_id,
        home=session.home,
        call_id=call.id,
        tasks=session.tasks,
        spawn=spawn,
        record=session.record,
        allowed_paths=session.allowed_paths,
        sandbox=session.sandbox,
    )
    started = time.monotonic()
    try:
        output = await tool.run(args, ctx)
        ok, kind = True, ""
    except ToolError as error:
        output, ok, kind = str(error), False, error.kind
    except Exception as error:  # a bug in a tool must not kill the session: the model hears it
        output, ok, kind = f"{type(error).__name__}: {error}", False, "exception"
    return ok, output, kind, int((time.monotonic() - started) * 1000)


def _record_failure(
    session: LoopSession, call: ev.ToolCall, error: str, kind: str, duration_ms: int | None = None
) -> None:
    session.record(
        ev.ToolFailed(
            call_id=call.id, name=call.name, error=redact(error), kind=kind, duration_ms=duration_ms
        )
    )
