"""The model's handles on background tasks: wait_task, read_task, cancel_task, list_tasks."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from leharness import projections, store
from leharness.store import events as ev

from .base import Tool, ToolContext, ToolError
from .tasks import TaskRuntime

READ_CHUNK = 16 * 1024
CHILD_EVENTS = 12


class WaitTaskArgs(BaseModel):
    """Wait for a background task to finish (or the timeout); returns its status and output tail."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    task_id: str
    timeout_s: int = Field(60, ge=0, le=300, description="Seconds to wait, at most 300.")


class ReadTaskArgs(BaseModel):
    """Read a background task's output so far, from a byte offset."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    task_id: str
    since_byte: int = Field(0, ge=0)


class CancelTaskArgs(BaseModel):
    """Stop a running background task (its whole process group)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    task_id: str


class ListTasksArgs(BaseModel):
    """List this session's background tasks and their status."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


def _runtime(ctx: ToolContext) -> TaskRuntime:
    runtime = ctx.tasks
    if runtime is None:
        raise ToolError("background tasks are not available in this session")
    return runtime


def _describe(runtime: TaskRuntime, task_id: str) -> str:
    row = runtime.row(task_id)
    if row is None:
        raise ToolError(f"no task {task_id!r} in this session; list_tasks shows them")
    lines = [f"task {row.task_id} ({row.kind}): {row.status}"]
    if row.exit_code is not None:
        lines.append(f"exit code: {row.exit_code}")
    if row.summary:
        lines.append(f"summary: {row.summary}")
    if row.status == "running" and task_id in runtime.running:
        sink = runtime.running[task_id].sink
        if sink is not None:
            lines.append("output so far (tail):\n" + sink.text()[-2000:])
    elif row.output:
        lines.append(row.output)
    return "\n".join(lines)


async def wait_task(args: WaitTaskArgs, ctx: ToolContext) -> str:
    runtime = _runtime(ctx)
    if runtime.row(args.task_id) is None:
        raise ToolError(f"no task {args.task_id!r} in this session; list_tasks shows them")
    finished = await runtime.wait(args.task_id, args.timeout_s)
    text = _describe(runtime, args.task_id)
    row = runtime.row(args.task_id)
    if finished and row is not None and row.status != "running" and not row.delivered:
        # The model has now seen the result: no notification for it later.
        runtime.record(ev.TaskDelivered(task_ids=[args.task_id], text=""))
    return text if finished else f"{text}\n(still running after {args.timeout_s} s)"


async def read_task(args: ReadTaskArgs, ctx: ToolContext) -> str:
    runtime = _runtime(ctx)
    row = runtime.row(args.task_id)
    if row is None:
        raise ToolError(f"no task {args.task_id!r} in this session; list_tasks shows them")
    if row.child_session_id and runtime.conn is not None:
        return _child_events(runtime, row.task_id, row.status, row.child_session_id)
    path = runtime.log_path(args.task_id)
    if not path.exists():
        return _describe(runtime, args.task_id)
    with open(path, "rb") as handle:
        handle.seek(args.since_byte)
        data = handle.read(READ_CHUNK)
    end = args.since_byte + len(data)
    return (
        f"task {row.task_id}: {row.status}; bytes {args.since_byte}-{end} "
        f"(next since_byte: {end})\n" + data.decode("utf-8", errors="replace")
    )


def _child_events(runtime: TaskRuntime, task_id: str, status: str, child_id: str) -> str:
    """A subagent's latest events, one line each."""
    assert runtime.conn is not None
    last = store.last_seq(runtime.conn, child_id)
    lines = [f"task {task_id} (subagent session {child_id}): {status}; latest events:"]
    for event in store.read_events(runtime.conn, child_id, after=max(0, last - CHILD_EVENTS)):
        fields = event.data.model_dump(exclude={"type"}, exclude_none=True, exclude_defaults=True)
        detail = json.dumps(fields, ensure_ascii=False)
        lines.append(f"{event.session_seq:>4} {event.type} {detail[:200]}")
    return "\n".join(lines)


async def cancel_task(args: CancelTaskArgs, ctx: ToolContext) -> str:
    runtime = _runtime(ctx)
    if not await runtime.cancel(args.task_id, "parent"):
        row = runtime.row(args.task_id)
        if row is None:
            raise ToolError(f"no task {args.task_id!r} in this session; list_tasks shows them")
        raise ToolError(f"task {args.task_id} is not running (it is {row.status})")
    runtime.record(ev.TaskDelivered(task_ids=[args.task_id], text=""))
    return f"task {args.task_id} cancelled"


async def list_tasks(args: ListTasksArgs, ctx: ToolContext) -> str:
    runtime = _runtime(ctx)
    rows = [] if runtime.conn is None else projections.tasks(runtime.conn, runtime.session_id)
    if not rows:
        return "no background tasks in this session"
    return "\n".join(
        f"{r.task_id}  {r.kind:5} {r.status:9} {(r.command or r.prompt or '')[:60]}" for r in rows
    )


WAIT_TASK = Tool(name="wait_task", args=WaitTaskArgs, run=wait_task, read_only=True)
READ_TASK = Tool(name="read_task", args=ReadTaskArgs, run=read_task, read_only=True)
CANCEL_TASK = Tool(name="cancel_task", args=CancelTaskArgs, run=cancel_task)
LIST_TASKS = Tool(name="list_tasks", args=ListTasksArgs, run=list_tasks, read_only=True)
