"""The compaction planner: what to compact, decided from a view alone. No I/O here.

`plan(view, budget, request)` measures the pressure and returns the steps of
this step's compaction in order: event payloads where the view decides them
(T1, T3), and where a payload needs text only applying creates, a step the
applier resolves — `MoveResults` (T2's stubs name artifacts it writes),
`Summarise` (T4/T5: the summary comes from the model, and T5's window is the
one after T4's summary) and `Fit` (T6 measures the view the earlier steps left).
The applier (apply.py) resolves those with the pure functions below on the
view it reads back: `next_window`, `retire` and `fit`.

Old means outside the two most recent turns; a turn is one model call with
its input and its tool results, so every range planned here starts and ends
on a turn's edge and never separates a tool call from its result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from leharness.projections import Message, SessionRow, SessionView
from leharness.store import events as ev

from ..prompt import build_messages, sent_chars
from ..request import Messages, tools_json

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
THRESHOLD = dict(TIERS)
EXEMPT_TURNS = 2
SUMMARY_SHARE = 0.25  # of the ceiling: older summaries beyond it leave the view
MOVE_MIN_BYTES = 1024
DROPPED = "[tool result dropped during compaction]"  # messages.sql writes the same marker
DROP_MIN_CHARS = 40  # shorter results stay: the marker would not save anything
# T6 makes room: once a request outgrows the ceiling it hides old turns until the
# request is at most this share of it. Hiding just enough would hide one more turn
# at every step of a long session, changing the request's start (the prefix that
# providers cache) every turn and adding two events and a re-read to each step.
FIT_SHARE = 0.8


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


@dataclass(frozen=True)
class Request:
    """What the next model call sends besides the conversation, measured with it."""

    system: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)


def request_chars(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """The size of a request's conversation and tool list, as JSON characters."""
    size = messages.chars() if isinstance(messages, Messages) else len(json.dumps(messages))
    return size + (len(tools_json(tools)) if tools else 0)


def prompt_chars(view: SessionView, request: Request) -> int:
    """The size of the request the view makes, as JSON characters."""
    return request_chars(build_messages(view, request.system), request.tools)


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


def turns(messages: Sequence[Message]) -> list[list[Message]]:
    """Visible messages grouped by model call: its input, the answer, its tool results.

    A summary is a turn of its own. No turn starts while a tool call of the
    current one awaits its result (e.g. a result recorded after a crash and a
    new prompt), so cutting between turns never separates a call from its result.
    """
    groups: list[list[Message]] = []
    waiting: set[str] = set()
    previous: Message | None = None
    current: list[Message] = []
    for message in messages:
        starts = previous is None or (
            not waiting
            and (
                message.kind == "summary"
                or previous.kind == "summary"
                or (message.role != "tool" and previous.role in ("assistant", "tool"))
            )
        )
        if starts:
            current = [message]
            groups.append(current)
        else:
            current.append(message)
        if message.tool_calls:
            waiting.update(call.id for call in message.tool_calls)
        if message.tool_call_id:
            waiting.discard(message.tool_call_id)
        previous = message
    return groups


def old_turns(messages: Sequence[Message]) -> list[list[Message]]:
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


# -- the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class MoveResults:
    """T2: each message's body goes to an artifact and a stub naming it takes its place;
    `if_any_fails` is recorded after T2 when a body could not be saved (T3, which
    otherwise had nothing left to drop)."""

    messages: list[Message]
    if_any_fails: list[ev.CompactionStarted | ev.CompactionCompleted] = field(default_factory=list)


@dataclass(frozen=True)
class Summarise:
    """T4/T5: the model summarises the oldest window of old turns of the view as it is
    when this step comes (`next_window`); a failure ends the summaries of this step."""

    tier: str
    pressure: Pressure


@dataclass(frozen=True)
class Fit:
    """T6: hide the oldest turns of the view as it is when this step comes until the
    request fits (`fit`); `total` is the request's size while nothing changed the view."""

    pressure: Pressure
    total: int | None = None


Step = ev.CompactionStarted | ev.CompactionCompleted | MoveResults | Summarise | Fit


def plan(view: SessionView, budget: Budget, request: Request | None = None) -> list[Step]:
    """This step's compaction of `view`, in order: the tiers the pressure reaches and,
    last, the ceiling. Deterministic, and it reads nothing but its arguments."""
    request = request or Request()
    chars = 0 if is_fresh(view.session) else prompt_chars(view, request)
    pressure = measure(view.session, chars, budget)
    steps: list[Step] = []
    if pressure.value >= THRESHOLD["T1"]:  # grouping turns walks every visible message
        old = [m for turn in old_turns(view.messages) for m in turn]
        if old:
            steps += plan_tiers(old, pressure)
    for tier in ("T4", "T5"):
        if pressure.value >= THRESHOLD[tier]:
            steps.append(Summarise(tier, pressure))
    return [*steps, Fit(pressure, chars or None)]


def plan_tiers(old: list[Message], pressure: Pressure) -> list[Step]:
    """T1–T3 on the old messages, as the pressure reaches them."""
    steps: list[Step] = []
    first, last = old[0].session_seq, old[-1].session_seq
    if any(m.reasoning for m in old):
        steps.append(started("T1", pressure))
        details = {"from_seq": first, "drop_reasoning_through_seq": last}
        steps.append(ev.CompactionCompleted(tier="T1", details=details))
    if pressure.value < THRESHOLD["T2"]:
        return steps
    large = [m for m in old if m.role == "tool" and not m.compacted_by and _large(m)]
    moving = {m.session_seq for m in large}
    rest_droppable = any(_droppable(m) for m in old if m.session_seq not in moving)
    drop: list[ev.CompactionStarted | ev.CompactionCompleted] = []
    if pressure.value >= THRESHOLD["T3"]:
        details = {"from_seq": first, "drop_results_through_seq": last}
        drop = [started("T3", pressure), ev.CompactionCompleted(tier="T3", details=details)]
    if large:
        # With nothing else to drop, T3 happens only if a body stays (its save failed).
        steps += [started("T2", pressure), MoveResults(large, [] if rest_droppable else drop)]
    if rest_droppable:
        steps += drop
    return steps


def started(tier: str, pressure: Pressure, **extra: Any) -> ev.CompactionStarted:
    return ev.CompactionStarted(
        tier=tier, pressure=round(pressure.value, 4), details={**pressure.details(), **extra}
    )


def _large(message: Message) -> bool:
    return len(message.content.encode()) >= MOVE_MIN_BYTES


def _droppable(message: Message) -> bool:
    long_enough = len(message.content) > DROP_MIN_CHARS
    return message.role == "tool" and not message.compacted_by and long_enough


def retire(view: SessionView, tier: str, budget: Budget) -> ev.CompactionCompleted | None:
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
        return None
    # Summaries are the visible conversation's prefix: hiding through one hides only them.
    details = {
        "hide_from_seq": view.messages[0].session_seq,
        "hide_through_seq": summaries[retired - 1].session_seq,
        "retired_summaries": retired,
    }
    return ev.CompactionCompleted(tier=tier, details=details)


def fit(
    view: SessionView,
    budget: Budget,
    request: Request,
    pressure: Pressure,
    ceiling: int | None = None,
    total: int | None = None,
) -> list[ev.Payload]:
    """T6: once the request outgrows the ceiling, hide the oldest turns (never the
    latest) until it is at most FIT_SHARE of it; if the latest turn alone is too large,
    its tool result bodies go too. `total`: the request's size when already measured.
    Nothing when it fits or nothing can go."""
    ceiling = ceiling or budget.ceiling_chars
    total = total or prompt_chars(view, request)
    if total <= ceiling:
        return []
    groups = turns(view.messages)
    sizes = _turn_sizes(groups, sent_chars(view))
    room = int(ceiling * FIT_SHARE)
    hidden = 0
    while hidden < len(groups) - 1 and total > room:
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
        return []  # nothing left to take away: the provider will say it is too long
    return [
        started("T6", pressure, ceiling_chars=ceiling),
        ev.CompactionCompleted(tier="T6", details=details),
    ]


def _turn_sizes(groups: list[list[Message]], chars: list[int]) -> list[int]:
    """Each turn's share of the request's JSON, from each message's (in order)."""
    sizes, start = [], 0
    for turn in groups:
        sizes.append(sum(chars[start : start + len(turn)]))
        start += len(turn)
    return sizes
