"""The session loop: read projections, call the model, run tools, append events.

    run_invocation: invocation.received | invocation.auto
      repeat: deliver_steering -> deliver_notifications -> compact_context
              -> step.started -> call_model -> model.completed -> run_tool_calls
      until: no tool calls | max steps | model failed | cancelled -> agent.finished

The loop reads only projection rows and writes only events (through a
connection whose authorizer refuses anything else). It never prints: every
event and streamed delta goes to a Channel, and the CLI renders it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leharness import projections, store
from leharness.store import events as ev
from leharness.tools import artifacts
from leharness.tools.agents import READ_ONLY_TOOLS, Spawn
from leharness.tools.approval import Approval
from leharness.tools.base import Tool, ToolContext, ToolError, ToolRegistry
from leharness.tools.hooks import Hooks
from leharness.tools.project import Instructions, project_instructions
from leharness.tools.redact import redact, redact_json, secrets
from leharness.tools.tasks import TaskRuntime, notification

from . import compaction, hooks, recovery
from .channel import Channel, NullChannel
from .model import ModelClient, ProviderError, Reply, StreamSink
from .prompt import accepts_images, build_messages

FinishReason = Literal["no_tool_calls", "max_steps", "model_failed", "cancelled"]


@dataclass
class Session:
    """One session as the loop runs it: its connection, model, tools and channel."""

    conn: sqlite3.Connection
    session_id: str
    model: ModelClient
    tools: ToolRegistry
    cwd: Path
    channel: Channel = field(default_factory=NullChannel)
    max_steps: int = 50
    system: str | None = None
    home: Path | None = None
    depth: int = 0  # 0 for a top-level session, 1 for its subagents, …
    max_depth: int = 1  # sessions at this depth cannot spawn subagents
    allowed_paths: tuple[Path, ...] = ()  # folders beyond cwd the file tools may use
    sandbox: str = "off"  # where bash commands run: read-only | workspace-write | off
    approval: Approval = field(default_factory=Approval)  # default: auto, everything runs
    # Messages the user typed while a run is going, taken (and emptied) at each step boundary.
    steering: Callable[[], list[str]] | None = None
    context_window: int | None = None  # tokens; None: the model's known window or 32,000
    tasks: TaskRuntime = field(init=False)
    instructions: Instructions = field(default_factory=Instructions)  # read per invocation
    hooks: Hooks = field(default_factory=Hooks)  # settings.toml's [[hooks.*]]; none: no cost
    hook_queue: list[tuple[str, str | None, store.Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        store.claim(self.conn, self.session_id)  # appends fail if another writer gets in
        self.tasks = TaskRuntime(
            self.record, self.home or store.home_dir(), self.session_id, self.conn
        )

    def record(self, payload: store.Payload) -> store.Event:
        event = store.append(self.conn, self.session_id, payload)
        self.channel.event(event)
        hooks.queue(self, event)
        return event


@dataclass
class Result:
    reason: FinishReason
    text: str = ""
    error: ProviderError | None = None


@dataclass
class Replied:
    reply: Reply


@dataclass
class Failed:
    error: ProviderError


@dataclass
class Cancelled:
    pass


def new_session(
    conn: sqlite3.Connection, cwd: Path, provider: str | None = None, model: str | None = None
) -> str:
    return store.create_session(
        conn, ev.SessionCreated(cwd=str(cwd), provider=provider, model=model)
    )


async def run_invocation(session: Session, text: str | None) -> Result:
    """Run the loop for one user message (or, with None, an automatic wake-up)."""
    result = await _invocation(session, text)
    await hooks.run_queued(session)  # invocation_end, and whatever else is still waiting
    return result


async def _invocation(session: Session, text: str | None) -> Result:
    session.instructions = project_instructions(session.cwd)
    digest = session.instructions.hash
    # Calls a crash left open get their results first: a new user message may only
    # follow them (a trigger refuses an invocation.received while one is open).
    settle_unanswered_calls(session)
    session.record(
        ev.InvocationReceived(text=text, instructions_hash=digest)
        if text is not None
        else ev.InvocationAuto(instructions_hash=digest)
    )
    await hooks.run_queued(session)  # invocation_start
    recover_orphaned_tasks(session)
    overflowed = False  # a "prompt too long" refusal shrinks the prompt and retries once
    for step in range(1, session.max_steps + 1):
        deliver_steering(session)
        deliver_notifications(session)
        match await compaction.compact_context(session):
            case compaction.Interrupted():
                return finish(session, "cancelled")
            case compaction.Compacted(view, system):
                await hooks.run_queued(session)  # compaction hooks, if it compacted
        session.record(
            ev.StepStarted(step=step, provider=session.model.provider, model=session.model.model)
        )
        match await call_model(session, view, system):
            case Cancelled():
                return finish(session, "cancelled")
            case Failed(error) if error.kind == "context_length" and not overflowed:
                overflowed = True
                if not compaction.shrink_after_overflow(session):
                    return finish(session, "model_failed", error=error)
            case Failed(error):
                return finish(session, "model_failed", error=error)
            case Replied(reply) if not reply.tool_calls:
                if not deliver_steering(session):  # a message typed meanwhile gets another step
                    return finish(session, "no_tool_calls", reply.text)
            case Replied(reply):
                if not await run_tool_calls(session, reply.tool_calls):
                    return finish(session, "cancelled")
    return finish(session, "max_steps")


async def run_until_settled(
    session: Session, text: str | None, task_wait_s: float = 600.0, wait: bool = True
) -> Result:
    """One-shot ingress: run the prompt, then wait (bounded) for the background tasks it
    started and let the model react to them, instead of dropping their results."""
    result = await run_invocation(session, text)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + task_wait_s
    while wait and result.reason == "no_tool_calls" and session.tasks.running:
        try:
            await session.tasks.wait_all(max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:  # Ctrl-C while waiting: stop the tasks, keep the log whole
            _uncancel()
            await session.tasks.shutdown("cancelled")
            return Result("cancelled")
        if session.tasks.running:
            break
        result = await run_invocation(session, None)
    await session.tasks.shutdown("process_exited")
    if wait and result.reason == "no_tool_calls" and has_notifications(session):
        result = await run_invocation(session, None)
    return result


def has_notifications(session: Session) -> bool:
    return bool(projections.pending_notifications(session.conn, session.session_id))


def deliver_steering(session: Session) -> bool:
    """Record each message the user typed during the run as a steering invocation, so the
    next model call reads it; True if there was any (a final answer then gets a next step)."""
    texts = session.steering() if session.steering is not None else []
    for text in texts:
        session.record(ev.InvocationReceived(text=text, kind="steering"))
    return bool(texts)


def deliver_notifications(session: Session) -> None:
    """Show the model every background task that ended since it last looked, once."""
    pending = projections.pending_notifications(session.conn, session.session_id)
    if not pending:
        return
    text = "\n\n".join(
        notification(task.task_id, task.status, task.summary or "", task.output) for task in pending
    )
    session.record(ev.TaskDelivered(task_ids=[task.task_id for task in pending], text=text))


def spawner(session: Session) -> Spawn | None:
    """The function spawn_agent uses to start a child session of this one (None: too deep)."""
    if session.depth + 1 > session.max_depth:
        return None

    def spawn(prompt: str, agent_type: str, task_id: str) -> tuple[str, Any]:
        child_id = store.create_session(
            session.conn,
            ev.SessionCreated(
                cwd=str(session.cwd),
                provider=session.model.provider,
                model=session.model.model,
                parent_session_id=session.session_id,
                parent_task_id=task_id,
                agent_type=agent_type,
            ),
        )
        tools = session.tools
        if agent_type in ("explore", "plan"):
            tools = tools.only(READ_ONLY_TOOLS)
        if session.depth + 2 > session.max_depth:  # the child may not spawn in turn
            tools = tools.only(name for name in tools.names() if name != "spawn_agent")
        child = Session(
            conn=session.conn,
            session_id=child_id,
            model=session.model,
            tools=tools,
            cwd=session.cwd,
            max_steps=session.max_steps,
            home=session.home,
            depth=session.depth + 1,
            max_depth=session.max_depth,
            context_window=session.context_window,
            allowed_paths=session.allowed_paths,
            sandbox=session.sandbox,
            approval=remember_approvals(session).for_subagent(),
            hooks=session.hooks,
        )

        async def run() -> tuple[str, str]:
            try:
                result = await run_invocation(child, prompt)
            finally:
                await child.tasks.shutdown("parent")  # the child's own tasks end with it
            return result.reason, result.text

        return child_id, run

    return spawn


def recover_orphaned_tasks(session: Session) -> None:
    """Tasks left running by an lh process that died get their real ending or are stopped
    and recorded as such; the subagent sessions it ran are recovered and finished."""
    recovery.recover_tasks(session.tasks)


def settle_unanswered_calls(session: Session) -> None:
    """Give every tool call left without a result (crash, kill) its one result, after
    stopping the command it left running."""
    recovery.settle_calls(session.tasks)


async def call_model(
    session: Session, view: projections.SessionView, system: str
) -> Replied | Failed | Cancelled:
    channel = session.channel
    sink = StreamSink(
        on_text=channel.text,
        on_reasoning=channel.reasoning,
        on_retry=lambda attempt, message, delay: channel.retry(attempt, redact(message), delay),
        on_discard=channel.discard,
    )
    messages = build_messages(view, system, images=accepts_images(session.model.model))
    try:
        await asyncio.sleep(0)  # a cancel that is already pending lands before any request
        reply = await session.model.complete(messages, session.tools.specs(), sink)
    except ProviderError as error:
        session.record(
            ev.ModelFailed(error=redact(str(error)), kind=error.kind, attempts=error.attempts)
        )
        return Failed(error)
    except asyncio.CancelledError:
        _uncancel()
        session.record(ev.ModelCancelled(text=sink.text, reasoning=sink.reasoning))
        return Cancelled()
    reply.tool_calls = unique_call_ids(session, reply.tool_calls)
    session.record(
        ev.ModelCompleted(
            text=reply.text,
            reasoning=reply.reasoning,
            tool_calls=redacted_calls(reply.tool_calls),  # the tools still get what was sent
            usage=reply.usage,
            model=session.model.model,
            attempts=reply.attempts,
            duration_ms=reply.duration_ms,
        )
    )
    return Replied(reply)


def redacted_calls(calls: list[ev.ToolCall]) -> list[ev.ToolCall]:
    """The calls as they may be stored and shown: a secret in an argument is redacted."""
    found = secrets()
    return [
        call.model_copy(update={"arguments": redact_json(call.arguments, found)}) for call in calls
    ]


def unique_call_ids(session: Session, calls: list[ev.ToolCall]) -> list[ev.ToolCall]:
    """Missing or reused call ids get fresh ones so each call pairs with one result."""
    seen: set[str] = set()
    result = []
    for call in calls:
        taken = call.id in seen or projections.tool_call_exists(
            session.conn, session.session_id, call.id
        )
        if not call.id or taken:
            call = call.model_copy(update={"id": f"call_{store.new_ulid().lower()}"})
        seen.add(call.id)
        result.append(call)
    return result


async def run_tool_calls(session: Session, calls: list[ev.ToolCall]) -> bool:
    """Ask about the calls that need approval, in call order, then run every call that may
    run together (two approved `sleep 2` take 2 s, not 4); results are recorded in call
    order. False if cancelled."""
    plan: list[Planned | Refused] = []
    try:
        for call in calls:
            plan.append(await _plan(session, call))
    except asyncio.CancelledError:  # while asking: nothing has run yet
        _uncancel()
        for call in calls:
            _record_failure(session, call, "not run: the user cancelled", "interrupted")
        return False
    ran = await _run_batch(session, plan)
    await hooks.run_queued(session)  # post_tool
    return ran


Planned = tuple[ev.ToolCall, Tool, Any]


def remember_approvals(session: Session) -> Approval:
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


async def _plan(session: Session, call: ev.ToolCall) -> Planned | Refused:
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


async def _run_batch(session: Session, plan: list[Planned | Refused]) -> bool:
    """Start every call that may run, run them together, record results in call order."""
    batch = [item for item in plan if not isinstance(item, Refused)]
    for call, _tool, _args in batch:
        session.record(ev.ToolStarted(call_id=call.id, name=call.name))
    jobs = {
        call.id: asyncio.ensure_future(_run_one(session, tool, args, call))
        for call, tool, args in batch
    }
    try:
        await asyncio.gather(*jobs.values())
    except asyncio.CancelledError:
        _uncancel()
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
    session: Session, call: ev.ToolCall, output: str, duration_ms: int, limit: int | None = None
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
    session: Session, tool: Tool, args: Any, call: ev.ToolCall
) -> tuple[bool, str, str, int]:
    """(ok, output or error, failure kind, duration ms). Only cancellation propagates."""
    ctx = ToolContext(
        cwd=session.cwd,
        session_id=session.session_id,
        home=session.home,
        call_id=call.id,
        tasks=session.tasks,
        spawn=spawner(session),
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
    session: Session, call: ev.ToolCall, error: str, kind: str, duration_ms: int | None = None
) -> None:
    session.record(
        ev.ToolFailed(
            call_id=call.id, name=call.name, error=redact(error), kind=kind, duration_ms=duration_ms
        )
    )


def finish(
    session: Session, reason: FinishReason, text: str = "", error: ProviderError | None = None
) -> Result:
    session.record(ev.AgentFinished(reason=reason, text=text))
    return Result(reason, text, error)


def _uncancel() -> None:
    """We handled the cancel (recorded it); let the task go on to record the rest."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
