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
from dataclasses import dataclass
from pathlib import Path

from leharness import projections, store
from leharness.store import events as ev
from leharness.tools.project import project_instructions
from leharness.tools.redact import redact, redact_json, secrets
from leharness.tools.tasks import notification

from . import compaction, hooks, recovery
from .channel import Channel as Channel  # re-exported: callers typed runner.Channel
from .channel import NullChannel as NullChannel
from .execute import run_tool_calls
from .model import ProviderError, Reply, StreamSink
from .prompt import accepts_images, build_messages
from .session import FinishReason, LoopSession, Result, uncancel
from .subagents import spawner


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


async def run_invocation(session: LoopSession, text: str | None) -> Result:
    """Run the loop for one user message (or, with None, an automatic wake-up)."""
    result = await _invocation(session, text)
    await hooks.run_queued(session)  # invocation_end, and whatever else is still waiting
    return result


async def _invocation(session: LoopSession, text: str | None) -> Result:
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
                spawn = spawner(session, run_invocation)
                if not await run_tool_calls(session, reply.tool_calls, spawn):
                    return finish(session, "cancelled")
    return finish(session, "max_steps")


async def run_until_settled(
    session: LoopSession, text: str | None, task_wait_s: float = 600.0, wait: bool = True
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
            uncancel()
            await session.tasks.shutdown("cancelled")
            return Result("cancelled")
        if session.tasks.running:
            break
        result = await run_invocation(session, None)
    await session.tasks.shutdown("process_exited")
    if wait and result.reason == "no_tool_calls" and has_notifications(session):
        result = await run_invocation(session, None)
    return result


def has_notifications(session: LoopSession) -> bool:
    return bool(projections.pending_notifications(session.conn, session.session_id))


def deliver_steering(session: LoopSession) -> bool:
    """Record each message the user typed during the run as a steering invocation, so the
    next model call reads it; True if there was any (a final answer then gets a next step)."""
    texts = session.steering() if session.steering is not None else []
    for text in texts:
        session.record(ev.InvocationReceived(text=text, kind="steering"))
    return bool(texts)


def deliver_notifications(session: LoopSession) -> None:
    """Show the model every background task that ended since it last looked, once."""
    pending = projections.pending_notifications(session.conn, session.session_id)
    if not pending:
        return
    text = "\n\n".join(
        notification(task.task_id, task.status, task.summary or "", task.output) for task in pending
    )
    session.record(ev.TaskDelivered(task_ids=[task.task_id for task in pending], text=text))


def recover_orphaned_tasks(session: LoopSession) -> None:
    """Tasks left running by an lh process that died get their real ending or are stopped
    and recorded as such; the subagent sessions it ran are recovered and finished."""
    recovery.recover_tasks(session.tasks)


def settle_unanswered_calls(session: LoopSession) -> None:
    """Give every tool call left without a result (crash, kill) its one result, after
    stopping the command it left running."""
    recovery.settle_calls(session.tasks)


async def call_model(
    session: LoopSession, view: projections.SessionView, system: str
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
        uncancel()
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


def unique_call_ids(session: LoopSession, calls: list[ev.ToolCall]) -> list[ev.ToolCall]:
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


def finish(
    session: LoopSession, reason: FinishReason, text: str = "", error: ProviderError | None = None
) -> Result:
    session.record(ev.AgentFinished(reason=reason, text=text))
    return Result(reason, text, error)
