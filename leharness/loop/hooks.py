"""Where the loop runs the user's hooks, and the `hook.ran` events that record them.

Events that have hooks (an invocation starting, agent.finished, a compaction,
a tool's result) are queued by `LoopSession.record` and their hooks run at the
next safe point (`run_queued`); pre_tool hooks run before a call and may
block it. With no hooks configured, nothing here does any work.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from leharness import store
from leharness.store import events as ev
from leharness.store import jsontext
from leharness.tools.hooks import Hook, HookRun, run_hook
from leharness.tools.redact import redact

if TYPE_CHECKING:
    from .session import LoopSession

# Which hook point an event (by type) sets off.
POINT_OF = {
    "invocation.received": "invocation_start",
    "invocation.auto": "invocation_start",
    "agent.finished": "invocation_end",
    "compaction.completed": "compaction",
    "tool.completed": "post_tool",
    "tool.failed": "post_tool",
}


def queue(session: LoopSession, event: store.Event) -> None:
    """Remember `event` if a hook is waiting for it (called for every recorded event)."""
    point = POINT_OF.get(event.type)
    if point is None or not session.hooks:
        return
    data = event.data
    if point == "invocation_start" and getattr(data, "kind", "") == "steering":
        return
    if point == "post_tool" and getattr(data, "kind", "") == "hook_blocked":
        return  # the call never ran
    tool = getattr(data, "name", None) if point == "post_tool" else None
    if session.hooks.at(point, tool):
        session.hook_queue.append((point, tool, event))


async def run_queued(session: LoopSession) -> None:
    """Run the hooks of every queued event, in order, recording each run."""
    while session.hook_queue:
        point, tool, event = session.hook_queue.pop(0)
        payload = _payload(session, point, event.as_record())
        if tool is not None:
            payload["tool_name"] = tool
        for hook in session.hooks.at(point, tool):
            _record(session, await run_hook(hook, payload, session.cwd), event, tool)


async def pre_tool(session: LoopSession, call: ev.ToolCall) -> str | None:
    """Run the pre_tool hooks of a call; the error the model sees if one blocked it."""
    hooks = session.hooks.at("pre_tool", call.name) if session.hooks else []
    for hook in hooks:
        payload = _payload(session, "pre_tool", None)
        payload.update(tool_name=call.name, call_id=call.id, tool_input=_arguments(call))
        run = await run_hook(hook, payload, session.cwd)
        _record(session, run, None, call.name, call.id)
        if run.blocks:
            reason = run.stderr.strip() or f"blocked by the pre_tool hook {hook.command!r}"
            return redact(reason)
    return None


def _payload(session: LoopSession, point: str, event: dict[str, Any] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "hook": point,
        "session_id": session.session_id,
        "cwd": str(session.cwd),
    }
    if event is not None:
        payload["event"] = event
    return payload


def _arguments(call: ev.ToolCall) -> Any:
    try:
        return jsontext.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return call.arguments


def _record(
    session: LoopSession,
    run: HookRun,
    event: store.Event | None,
    tool: str | None,
    call_id: str | None = None,
) -> None:
    hook: Hook = run.hook
    if call_id is None and event is not None:
        call_id = getattr(event.data, "call_id", None)
    session.record(
        ev.HookRan(
            hook=hook.point,
            command=redact(hook.command),
            exit_code=run.exit_code,
            duration_ms=run.duration_ms,
            stderr_tail=redact(run.stderr),
            timed_out=run.timed_out,
            blocked=run.blocks,
            call_id=call_id,
            tool=tool,
        )
    )
