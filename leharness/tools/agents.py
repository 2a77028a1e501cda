"""Subagents: `spawn_agent` runs a child session as a background task.

The child is a session of its own in the same database (its session.created
names the parent session and task) with bounded tools and depth. This module
never imports the loop: the loop hands it a `spawn` function through the tool
context, which creates the child and returns a coroutine that runs it to its
final answer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from leharness.store import events as ev

from .base import Tool, ToolContext, ToolError
from .tasks import RunningTask, TaskRuntime

AgentType = Literal["general", "explore", "plan"]
#: Tools a read-only child gets (bash included: exploring often needs it).
READ_ONLY_TOOLS = ("read_file", "list_files", "grep", "bash", "load_skill")

# spawn(prompt, agent_type, task_id) -> (child_session_id, run) where run() gives
# (finish reason, final text).
Spawn = Callable[[str, str, str], tuple[str, Callable[[], Awaitable[tuple[str, str]]]]]


class SpawnAgentArgs(BaseModel):
    """Start a subagent: a separate session with its own context that works on `prompt`
    and returns its final answer. `explore` and `plan` agents can only read (files,
    search, bash); `general` gets your tools. It runs in the background: you get a
    task_id at once and its answer arrives as a notification (or use wait_task)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    prompt: str = Field(min_length=1, description="What the subagent should do; be specific.")
    type: AgentType = Field("general", description="general, explore or plan")
    inline_ms: int = Field(
        0, ge=0, le=600_000, description="Wait this long for the answer before backgrounding."
    )


async def spawn_agent(args: SpawnAgentArgs, ctx: ToolContext) -> str:
    runtime, spawn = ctx.tasks, ctx.spawn
    if runtime is None or spawn is None:
        raise ToolError("subagents cannot be started here (depth limit reached)")
    task_id = runtime.new_task_id()
    child_id, run = spawn(args.prompt, args.type, task_id)
    task = RunningTask(task_id, "agent")
    task.job = asyncio.ensure_future(_follow(runtime, task, run))
    started = ev.TaskStarted(
        task_id=task_id,
        kind="agent",
        call_id=ctx.call_id,
        prompt=args.prompt,
        child_session_id=child_id,
        harness_pid=os.getpid(),
        owner_session_id=ctx.session_id,
    )
    handle = runtime.start(task, started)
    if args.inline_ms and await runtime.wait(task_id, args.inline_ms / 1000):
        row = runtime.row(task_id)
        runtime.record(ev.TaskDelivered(task_ids=[task_id], text=""))
        if row is not None and row.status == "completed":
            return row.output or ""
        raise ToolError(f"the subagent ended without an answer: {row.summary if row else ''}")
    return handle


async def _follow(
    runtime: TaskRuntime, task: RunningTask, run: Callable[[], Awaitable[tuple[str, str]]]
) -> None:
    try:
        reason, text = await run()
    except asyncio.CancelledError:
        runtime.record(ev.TaskCancelled(task_id=task.task_id, reason=task.cancel_reason))
        raise
    except Exception as error:  # a crash in the child must not leave the task "running"
        message = f"subagent crashed: {type(error).__name__}: {error}"
        runtime.record(ev.TaskFailed(task_id=task.task_id, error=message))
        return
    if reason == "cancelled":  # the child swallowed the cancel and finished as cancelled
        runtime.record(ev.TaskCancelled(task_id=task.task_id, reason=task.cancel_reason))
    elif reason == "no_tool_calls":
        first = text.strip().splitlines()[0][:120] if text.strip() else "(empty answer)"
        runtime.record(ev.TaskCompleted(task_id=task.task_id, summary=first, output=text))
    else:
        runtime.record(ev.TaskFailed(task_id=task.task_id, error=f"subagent stopped: {reason}"))


SPAWN_AGENT = Tool(name="spawn_agent", args=SpawnAgentArgs, run=spawn_agent)
