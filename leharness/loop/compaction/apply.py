"""The compaction step: reads the view, has planner.py decide, records what it decided.

The applier is the only part of compaction that does I/O: it appends the
plan's `compaction.*` events (the triggers in projections/sql/messages.sql
apply them to the visible messages; nothing here edits or deletes a row),
writes T2's artifacts, has summary.py ask the model for T4/T5's summaries, and
reads the view back where a step changed it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from leharness import projections, store
from leharness.projections import Message, SessionView
from leharness.store import events as ev
from leharness.tools import artifacts

from ..hooks import run_queued
from ..prompt import session_system
from ..session import LoopSession, uncancel
from .planner import (
    Budget,
    Fit,
    MoveResults,
    Request,
    Step,
    Summarise,
    context_window,
    fit,
    measure,
    next_window,
    old_turns,
    plan,
    prompt_chars,
    retire,
    started,
)
from .summary import summarise


def budget_of(session: LoopSession) -> Budget:
    return Budget(context_window(session.model.model, session.context_window))


def request_of(session: LoopSession, view: SessionView) -> Request:
    """What this step's model call sends besides the conversation."""
    return Request(session_system(session, view), session.tools.specs())


@dataclass
class Compacted:
    view: SessionView
    system: str  # this step's system prompt, measured here and sent as it is


@dataclass
class Interrupted:
    """The user cancelled while a window was being summarised."""


async def compact_context(session: LoopSession) -> Compacted | Interrupted:
    """Apply this step's plan (every tier the pressure reaches, then the ceiling) and
    return the fresh view. T1–T3 are recorded on one read of the view, so a step
    re-reads it at most once for them; the rarer summaries and the ceiling re-read after."""
    view = _read(session)
    budget = budget_of(session)
    request = request_of(session, view)
    *steps, last = plan(view, budget, request)
    assert isinstance(last, Fit)  # the plan always ends with the ceiling
    total = last.total  # the request's size while nothing has changed the view
    if record_tiers(session, [s for s in steps if not isinstance(s, Summarise)]):
        view, total = _reread_messages(session, view), None
    try:
        for step in steps:
            if not isinstance(step, Summarise):
                continue
            if not await summarise_window(session, view, step, budget):
                break  # recorded; the model call goes ahead, and no second try this step
            view, total = _read(session), None
            if record(session, retire(view, step.tier, budget)):
                view = _read(session)
    except asyncio.CancelledError:
        uncancel()
        return Interrupted()
    if record(session, *fit(view, budget, request, last.pressure, total=total)):
        view = _read(session)
    return Compacted(view, request.system)


def record(session: LoopSession, *payloads: ev.Payload | None) -> bool:
    """Append the payloads (None: nothing); True if there were any."""
    recorded = False
    for payload in payloads:
        if payload is not None:
            session.record(payload)
            recorded = True
    return recorded


def record_tiers(session: LoopSession, steps: list[Step]) -> bool:
    """T1–T3 as planned; True when the visible messages changed."""
    changed = False
    for step in steps:
        if isinstance(step, MoveResults):
            moved = move_results(session, step.messages)
            changed = bool(moved) or changed
            if len(moved) < len(step.messages):
                changed = record(session, *step.if_any_fails) or changed
        elif isinstance(step, ev.CompactionCompleted | ev.CompactionStarted):
            session.record(step)
            changed = changed or isinstance(step, ev.CompactionCompleted)
    return changed


def move_results(session: LoopSession, messages: list[Message]) -> set[int]:
    """T2: the results' bodies go to artifacts; a stub names each. Returns the
    session_seq of every result moved (a body that could not be saved stays)."""
    home = session.home or store.home_dir()
    moved: list[dict[str, Any]] = []
    for message in messages:
        try:
            saved = artifacts.save(home, session.session_id, message.content.encode(), sync=False)
        except OSError:
            continue  # the result simply stays; T3 and T6 still bound the prompt
        session.record(saved.created("compacted_tool_result", call_id=message.tool_call_id))
        stub = (
            f"[tool result moved to artifact {saved.artifact_id} during compaction: "
            f"{saved.bytes:,} bytes at {saved.path}; read it with read_file if needed]"
        )
        moved.append({"seq": message.session_seq, "artifact_id": saved.artifact_id, "stub": stub})
    session.record(ev.CompactionCompleted(tier="T2", details={"moved": moved}))
    return {entry["seq"] for entry in moved}


async def summarise_window(
    session: LoopSession, view: SessionView, step: Summarise, budget: Budget
) -> ev.CompactionSummary | None:
    """T4/T5 on the oldest window of the view's old turns; None when there is none or
    the summary failed (recorded)."""
    window = next_window(old_turns(view.messages))
    if not window:
        return None
    session.record(started(step.tier, step.pressure))
    outcome = await summarise(session, step.tier, window, budget.ceiling_chars // 2)
    return None if isinstance(outcome, str) else outcome


def _read(session: LoopSession) -> SessionView:
    return projections.session_view(session.conn, session.session_id)


def _reread_messages(session: LoopSession, view: SessionView) -> SessionView:
    """The view with its messages read again (T1–T3 change nothing else)."""
    messages = projections.visible_messages(session.conn, session.session_id)
    return view.model_copy(update={"messages": messages})


def shrink_after_overflow(session: LoopSession) -> bool:
    """The provider refused the prompt as too long although it fit the ceiling (the
    context window is smaller than we think): T6 at half the refused prompt's size.
    False when nothing could be taken away."""
    view = _read(session)
    request = request_of(session, view)
    chars = prompt_chars(view, request)
    pressure = measure(view.session, chars, budget_of(session))
    return record(session, *fit(view, budget_of(session), request, pressure, ceiling=chars // 2))


# -- manual compaction ----------------------------------------------------------


@dataclass
class ManualResult:
    """What `lh compact` and `/compact` report: a summary, an error, or neither
    (nothing old enough to summarise)."""

    summary: ev.CompactionSummary | None = None
    error: str | None = None


async def compact_now(session: LoopSession) -> ManualResult:
    """Run T4 now, whatever the pressure: summarise the oldest window of old turns."""
    view = _read(session)
    window = next_window(old_turns(view.messages))
    if not window:
        return ManualResult()
    budget = budget_of(session)
    chars = prompt_chars(view, request_of(session, view))
    session.record(started("T4", measure(view.session, chars, budget), manual=True))
    outcome = await summarise(session, "T4", window, budget.ceiling_chars // 2)
    if isinstance(outcome, str):
        return ManualResult(error=outcome)
    record(session, retire(_read(session), "T4", budget))
    await run_queued(session)  # the compaction hooks
    return ManualResult(summary=outcome)
