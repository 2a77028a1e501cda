"""Compaction policy: the pressure gradient, decided here, applied by triggers.

Before each model call the loop runs `compact_context`. Pressure is the last
model call's prompt tokens ÷ budget (0.85 × the model's context window); when
the provider reported no usage, or a compaction changed the conversation since
that call, the tokens are estimated from the prompt's characters (4 a token).
Each tier the pressure reaches is recorded as `compaction.*` events, and the
triggers in projections/sql/messages.sql apply it to the visible messages:
nothing here edits or deletes a row. Old means outside the two most recent
turns; a turn is one model call with its input and its tool results, so a
window or a hidden prefix never separates a tool call from its result.

    T1 ≥ 0.50  old reasoning leaves the view
    T2 ≥ 0.65  old tool results of 1 KiB or more move to artifacts (a stub stays)
    T3 ≥ 0.75  remaining old tool result bodies become a marker
    T4 ≥ 0.85  the model summarises the oldest window of turns (transcript saved)
    T5 ≥ 0.95  …and a second window
    T6         whatever the pressure, the oldest turns are hidden until the
               request fits a hard character ceiling (also, once, with half
               the ceiling when the provider still says the prompt is too long)

A summary is never summarised again; once summaries hold more than a quarter
of the ceiling the oldest leave the view. Summaries are written by summary.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leharness import projections, store
from leharness.projections import Message, SessionRow, SessionView
from leharness.store import events as ev
from leharness.tools import artifacts

from .hooks import run_queued
from .prompt import build_messages, session_system, to_openai
from .summary import summarise

if TYPE_CHECKING:
    from .runner import Session

#: Context windows in tokens; a model name matches its longest listed prefix.
CONTEXT_WINDOWS = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "deepseek-chat": 64_000,
    "deepseek-reasoner": 64_000,
    "llama3": 8_192,
    "llama3.1": 128_000,
    "llama3.2": 128_000,
    "llama3.3": 128_000,
    "qwen2.5-coder": 32_768,
    "qwen3": 40_960,
    "gemma3": 128_000,
    "mistral": 32_768,
}
FALLBACK_CONTEXT_WINDOW = 32_000
BUDGET_SHARE = 0.85
CHARS_PER_TOKEN = 4
TIERS = (("T1", 0.50), ("T2", 0.65), ("T3", 0.75), ("T4", 0.85), ("T5", 0.95))
EXEMPT_TURNS = 2
SUMMARY_SHARE = 0.25  # of the ceiling: older summaries beyond it leave the view
MOVE_MIN_BYTES = 1024
DROPPED = "[tool result dropped during compaction]"  # messages.sql writes the same marker
DROP_MIN_CHARS = 40  # shorter results stay: the marker would not save anything


def context_window(model: str | None, override: int | None = None) -> int:
    """The model's context window in tokens: the override, the table, or 32,000."""
    if override:
        return override
    name = (model or "").lower().rsplit("/", 1)[-1]
    matches = [prefix for prefix in CONTEXT_WINDOWS if name.startswith(prefix)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else FALLBACK_CONTEXT_WINDOW


@dataclass(frozen=True)
class Budget:
    window: int

    @property
    def tokens(self) -> int:
        return int(self.window * BUDGET_SHARE)

    @property
    def ceiling_chars(self) -> int:
        """T6: no request is larger than this many characters."""
        return self.tokens * CHARS_PER_TOKEN


@dataclass(frozen=True)
class Pressure:
    tokens: int
    budget: int
    estimated: bool

    @property
    def value(self) -> float:
        return self.tokens / self.budget

    def details(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "budget": self.budget, "estimated": self.estimated}


def budget_of(session: Session) -> Budget:
    return Budget(context_window(session.model.model, session.context_window))


def request_chars(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """The size of a request's conversation and tool list, as JSON characters."""
    return len(json.dumps(messages)) + (len(json.dumps(tools)) if tools else 0)


def is_fresh(row: SessionRow) -> bool:
    """The last call reported prompt tokens and no compaction has happened since."""
    return bool(row.last_prompt_tokens) and (
        row.compacted_seq is None or (row.last_model_seq or 0) > row.compacted_seq
    )


def measure(row: SessionRow, chars: int, budget: Budget) -> Pressure:
    """The last call's prompt tokens, or an estimate from `chars` when there are none
    or they are stale."""
    if is_fresh(row):
        return Pressure(row.last_prompt_tokens or 0, budget.tokens, estimated=False)
    return Pressure(chars // CHARS_PER_TOKEN, budget.tokens, estimated=True)


# -- turns and windows --------------------------------------------------------


def turns(messages: list[Message]) -> list[list[Message]]:
    """Visible messages grouped by model call: its input, the answer, its tool results.

    A summary is a turn of its own. No turn starts while a tool call of the
    current one awaits its result (e.g. a result recorded after a crash and a
    new prompt), so cutting between turns never separates a call from its result.
    """
    groups: list[list[Message]] = []
    waiting: set[str] = set()
    for message in messages:
        previous = groups[-1][-1] if groups else None
        starts = previous is None or (
            not waiting
            and (
                message.kind == "summary"
                or previous.kind == "summary"
                or (message.role != "tool" and previous.role in ("assistant", "tool"))
            )
        )
        if starts:
            groups.append([message])
        else:
            groups[-1].append(message)
        waiting |= {call.id for call in message.tool_calls or ()}
        waiting.discard(message.tool_call_id or "")
    return groups


def old_turns(messages: list[Message]) -> list[list[Message]]:
    """The turns compaction may touch: all but the two most recent."""
    return turns(messages)[:-EXEMPT_TURNS]


def next_window(old: list[list[Message]]) -> list[Message]:
    """The oldest run of not-yet-summarised turns holding about half of their characters."""
    candidates: list[list[Message]] = []
    for turn in old:
        if turn[0].kind == "summary":
            if candidates:
                break  # a window never spans a summary: nothing is summarised twice
            continue
        candidates.append(turn)
    total = sum(_chars(turn) for turn in candidates)
    window: list[Message] = []
    taken = 0
    for turn in candidates:
        window += turn
        taken += _chars(turn)
        if taken * 2 >= total:
            break
    return window


def _chars(turn: list[Message]) -> int:
    return sum(len(m.content) for m in turn)


# -- the loop's phase -----------------------------------------------------------


@dataclass
class Compacted:
    view: SessionView
    system: str  # this step's system prompt, measured here and sent as it is


@dataclass
class Interrupted:
    """The user cancelled while a window was being summarised."""


async def compact_context(session: Session) -> Compacted | Interrupted:
    """Apply every tier the pressure reaches, then the ceiling; return the fresh view.

    T1–T3 are planned together on one read of the view, so a step re-reads it
    at most once for them; the rarer summaries and the ceiling re-read after.
    """
    view = _read(session)
    budget = budget_of(session)
    tools = session.tools.specs()
    system = session_system(session, view)
    chars = 0 if is_fresh(view.session) else _prompt_chars(view, system, tools)
    pressure = measure(view.session, chars, budget)
    old = [m for turn in old_turns(view.messages) for m in turn]
    measured = chars or None  # the request's size while no tier has changed the view
    if old and pressure.value >= THRESHOLD["T1"] and cheap_tiers(session, pressure, old):
        view, measured = _reread_messages(session, view), None
    try:
        for tier in ("T4", "T5"):
            if pressure.value < THRESHOLD[tier]:
                break
            window = next_window(old_turns(view.messages))
            if not window:
                break
            _started(session, tier, pressure)
            if isinstance(await summarise(session, tier, window, _summary_limit(session)), str):
                break  # recorded; the model call goes ahead, and no second try this step
            view, measured = _read(session), None
            if retire_summaries(session, tier, view, budget):
                view = _read(session)
    except asyncio.CancelledError:
        _uncancel()
        return Interrupted()
    if enforce_ceiling(session, view, system, budget, tools, pressure, total=measured):
        view = _read(session)
    return Compacted(view, system)


THRESHOLD = dict(TIERS)


def _read(session: Session) -> SessionView:
    return projections.session_view(session.conn, session.session_id)


def _reread_messages(session: Session, view: SessionView) -> SessionView:
    """The view with its messages read again (T1–T3 change nothing else)."""
    messages = projections.visible_messages(session.conn, session.session_id)
    return view.model_copy(update={"messages": messages})


def _prompt_chars(view: SessionView, system: str, tools: list[dict[str, Any]]) -> int:
    return request_chars(build_messages(view, system), tools)


def _started(session: Session, tier: str, pressure: Pressure, **extra: Any) -> None:
    session.record(
        ev.CompactionStarted(
            tier=tier, pressure=round(pressure.value, 4), details={**pressure.details(), **extra}
        )
    )


def cheap_tiers(session: Session, pressure: Pressure, old: list[Message]) -> bool:
    """T1–T3 on the old messages; True when the visible messages changed."""
    changed = False
    if any(m.reasoning for m in old):
        _started(session, "T1", pressure)
        first, last = old[0].session_seq, old[-1].session_seq
        details = {"from_seq": first, "drop_reasoning_through_seq": last}
        session.record(ev.CompactionCompleted(tier="T1", details=details))
        changed = True
    if pressure.value < THRESHOLD["T2"]:
        return changed
    moved = move_results(session, pressure, old)
    if pressure.value >= THRESHOLD["T3"] and any(
        _droppable(m) for m in old if m.session_seq not in moved
    ):
        _started(session, "T3", pressure)
        first, last = old[0].session_seq, old[-1].session_seq
        details = {"from_seq": first, "drop_results_through_seq": last}
        session.record(ev.CompactionCompleted(tier="T3", details=details))
        changed = True
    return changed or bool(moved)


def move_results(session: Session, pressure: Pressure, old: list[Message]) -> set[int]:
    """T2: old tool results of 1 KiB or more go to artifacts; a stub names each.
    Returns the session_seq of every result moved."""
    large = [
        m
        for m in old
        if m.role == "tool" and not m.compacted_by and len(m.content.encode()) >= MOVE_MIN_BYTES
    ]
    if not large:
        return set()
    _started(session, "T2", pressure)
    home = session.home or store.home_dir()
    moved: list[dict[str, Any]] = []
    for message in large:
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


def _droppable(message: Message) -> bool:
    long_enough = len(message.content) > DROP_MIN_CHARS
    return message.role == "tool" and not message.compacted_by and long_enough


def retire_summaries(session: Session, tier: str, view: SessionView, budget: Budget) -> bool:
    """Summaries are never summarised again, so the oldest leave the view once they
    hold more than SUMMARY_SHARE of the ceiling; their transcripts stay in artifacts.
    Without this they would fill the budget and make every few steps summarise."""
    summaries = [m for m in view.messages if m.kind == "summary"]
    total = sum(len(m.content) for m in summaries)
    retired = 0
    while retired < len(summaries) - 1 and total > SUMMARY_SHARE * budget.ceiling_chars:
        total -= len(summaries[retired].content)
        retired += 1
    if not retired:
        return False
    # Summaries are the visible conversation's prefix: hiding through one hides only them.
    details = {
        "hide_from_seq": view.messages[0].session_seq,
        "hide_through_seq": summaries[retired - 1].session_seq,
        "retired_summaries": retired,
    }
    session.record(ev.CompactionCompleted(tier=tier, details=details))
    return True


def enforce_ceiling(
    session: Session,
    view: SessionView,
    system: str,
    budget: Budget,
    tools: list[dict[str, Any]],
    pressure: Pressure,
    ceiling: int | None = None,
    total: int | None = None,
) -> bool:
    """T6: hide the oldest turns (never the latest) until the request fits the ceiling;
    if the latest turn alone is too large, its tool result bodies go too."""
    ceiling = ceiling or budget.ceiling_chars
    total = total or _prompt_chars(view, system, tools)  # measured already, if unchanged
    if total <= ceiling:
        return False
    groups = turns(view.messages)
    sizes = [sum(_sent_chars(m) for m in turn) for turn in groups]
    hidden = 0
    while hidden < len(groups) - 1 and total > ceiling:
        total -= sizes[hidden]
        hidden += 1
    details: dict[str, Any] = {"ceiling_chars": ceiling, "chars": total}
    if hidden:
        details["hide_from_seq"] = groups[0][0].session_seq
        details["hide_through_seq"] = groups[hidden - 1][-1].session_seq
    rest = [m for turn in groups[hidden:] for m in turn]
    if total > ceiling and any(_droppable(m) for m in rest):
        details["from_seq"] = rest[0].session_seq
        details["drop_results_through_seq"] = rest[-1].session_seq
    if "hide_through_seq" not in details and "from_seq" not in details:
        return False  # nothing left to take away: the provider will say it is too long
    _started(session, "T6", pressure, ceiling_chars=ceiling)
    session.record(ev.CompactionCompleted(tier="T6", details=details))
    return True


def shrink_after_overflow(session: Session) -> bool:
    """The provider refused the prompt as too long although it fit the ceiling (the
    context window is smaller than we think): T6 at half the refused prompt's size.
    False when nothing could be taken away."""
    view = _read(session)
    tools = session.tools.specs()
    system = session_system(session, view)
    chars = _prompt_chars(view, system, tools)
    budget = budget_of(session)
    pressure = measure(view.session, chars, budget)
    return enforce_ceiling(session, view, system, budget, tools, pressure, ceiling=chars // 2)


def _sent_chars(message: Message) -> int:
    converted = to_openai(message)
    return len(json.dumps(converted)) + 2 if converted is not None else 0


# -- manual compaction ----------------------------------------------------------


@dataclass
class ManualResult:
    """What `lh compact` and `/compact` report: a summary, an error, or neither
    (nothing old enough to summarise)."""

    summary: ev.CompactionSummary | None = None
    error: str | None = None


async def compact_now(session: Session) -> ManualResult:
    """Run T4 now, whatever the pressure: summarise the oldest window of old turns."""
    view = projections.session_view(session.conn, session.session_id)
    window = next_window(old_turns(view.messages))
    if not window:
        return ManualResult()
    budget = budget_of(session)
    chars = _prompt_chars(view, session_system(session, view), session.tools.specs())
    _started(session, "T4", measure(view.session, chars, budget), manual=True)
    outcome = await summarise(session, "T4", window, _summary_limit(session))
    if isinstance(outcome, str):
        return ManualResult(error=outcome)
    retire_summaries(
        session, "T4", projections.session_view(session.conn, session.session_id), budget
    )
    await run_queued(session)  # the compaction hooks
    return ManualResult(summary=outcome)


def _summary_limit(session: Session) -> int:
    """How much of a window the summariser reads: half the request ceiling."""
    return budget_of(session).ceiling_chars // 2


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
