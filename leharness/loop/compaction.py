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
               request fits a hard character ceiling
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

from .model import ProviderError, StreamSink
from .prompt import build_messages, to_openai

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
MOVE_MIN_BYTES = 1024
DROPPED = "[tool result dropped during compaction]"  # messages.sql writes the same marker
DROP_MIN_CHARS = 40  # shorter results stay: the marker would not save anything
SUMMARY_MAX_TOKENS = 1024
SUMMARY_SYSTEM = """\
You compact an agent's conversation. Summarise the part you are given so the agent
can carry on without it: the user's goals and instructions, decisions made, files
and commands involved, results found, errors met, and what was still open. Be
concrete and brief; use plain sentences or short bullets. Do not call tools."""


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
    chars = 0 if is_fresh(view.session) else _prompt_chars(session, view, tools)
    pressure = measure(view.session, chars, budget)
    old = [m for turn in old_turns(view.messages) for m in turn]
    if old and pressure.value >= THRESHOLD["T1"] and cheap_tiers(session, pressure, old):
        view = _read(session)
    try:
        for tier in ("T4", "T5"):
            if pressure.value < THRESHOLD[tier]:
                break
            window = next_window(old_turns(view.messages))
            if not window:
                break
            _started(session, tier, pressure)
            if isinstance(await summarise(session, tier, window), str):
                break  # recorded; the model call goes ahead, and no second try this step
            view = _read(session)
    except asyncio.CancelledError:
        _uncancel()
        return Interrupted()
    if enforce_ceiling(session, view, budget, tools, pressure):
        view = _read(session)
    return Compacted(view)


THRESHOLD = dict(TIERS)


def _read(session: Session) -> SessionView:
    return projections.session_view(session.conn, session.session_id)


def _prompt_chars(session: Session, view: SessionView, tools: list[dict[str, Any]]) -> int:
    return request_chars(build_messages(view, session.system), tools)


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
    moved = []
    for message in large:
        try:
            saved = artifacts.save(home, session.session_id, message.content.encode())
        except OSError:
            continue  # the result simply stays; T3 and T6 still bound the prompt
        session.record(
            ev.ArtifactCreated(
                artifact_id=saved.artifact_id,
                kind="compacted_tool_result",
                path=str(saved.path),
                bytes=saved.bytes,
                sha256=saved.sha256,
                call_id=message.tool_call_id,
            )
        )
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


def enforce_ceiling(
    session: Session,
    view: SessionView,
    budget: Budget,
    tools: list[dict[str, Any]],
    pressure: Pressure,
) -> bool:
    """T6: hide the oldest turns (never the latest) until the request fits the ceiling;
    if the latest turn alone is too large, its tool result bodies go too."""
    total = _prompt_chars(session, view, tools)
    if total <= budget.ceiling_chars:
        return False
    groups = turns(view.messages)
    sizes = [sum(_sent_chars(m) for m in turn) for turn in groups]
    hidden = 0
    while hidden < len(groups) - 1 and total > budget.ceiling_chars:
        total -= sizes[hidden]
        hidden += 1
    details: dict[str, Any] = {"ceiling_chars": budget.ceiling_chars, "chars": total}
    if hidden:
        details["hide_through_seq"] = groups[hidden - 1][-1].session_seq
    rest = [m for turn in groups[hidden:] for m in turn]
    if total > budget.ceiling_chars and any(_droppable(m) for m in rest):
        details["from_seq"] = rest[0].session_seq
        details["drop_results_through_seq"] = rest[-1].session_seq
    if "hide_through_seq" not in details and "from_seq" not in details:
        return False  # nothing left to take away: the provider will say it is too long
    _started(session, "T6", pressure, ceiling_chars=budget.ceiling_chars)
    session.record(ev.CompactionCompleted(tier="T6", details=details))
    return True


def _sent_chars(message: Message) -> int:
    converted = to_openai(message)
    return len(json.dumps(converted)) + 2 if converted is not None else 0


# -- summaries ------------------------------------------------------------------


async def summarise(
    session: Session, tier: str, window: list[Message]
) -> ev.CompactionSummary | str:
    """Save the window's transcript, ask the model for a summary, record the outcome.

    Returns the recorded summary, or the error text: a failure is recorded as
    compaction.summary.failed and the loop goes on.
    """
    first, last = window[0].session_seq, window[-1].session_seq
    full = projections.messages_between(session.conn, session.session_id, first, last)
    saved = artifacts.save(
        session.home or store.home_dir(), session.session_id, transcript(full).encode()
    )
    session.record(
        ev.ArtifactCreated(
            artifact_id=saved.artifact_id,
            kind="compaction_transcript",
            path=str(saved.path),
            bytes=saved.bytes,
            sha256=saved.sha256,
        )
    )
    limit = budget_of(session).ceiling_chars // 2
    request = [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {"role": "user", "content": _clip(transcript(window), limit)},
    ]
    try:
        reply = await session.model.complete(
            request, [], StreamSink(), max_tokens=SUMMARY_MAX_TOKENS
        )
        summary = reply.text.strip()[: SUMMARY_MAX_TOKENS * CHARS_PER_TOKEN]
        if not summary:
            raise ProviderError("the model returned an empty summary", "empty")
    except ProviderError as error:
        session.record(
            ev.CompactionSummaryFailed(
                from_seq=first, to_seq=last, error=str(error), kind=error.kind, tier=tier
            )
        )
        return str(error)
    except asyncio.CancelledError:
        session.record(
            ev.CompactionSummaryFailed(
                from_seq=first, to_seq=last, error="cancelled", kind="cancelled", tier=tier
            )
        )
        raise
    text = (
        f"[Summary of the earlier conversation (events {first}–{last}); the full transcript "
        f"is artifact {saved.artifact_id} at {saved.path}]\n{summary}"
    )
    payload = ev.CompactionSummary(
        from_seq=first,
        to_seq=last,
        summary=summary,
        artifact_id=saved.artifact_id,
        tier=tier,
        text=text,
    )
    summary_seq = session.record(payload).session_seq
    details = {"from_seq": first, "to_seq": last, "summary_seq": summary_seq}
    session.record(ev.CompactionCompleted(tier=tier, details=details))
    return payload


def transcript(messages: list[Message]) -> str:
    """Messages as plain text: who said what, tool calls and results, in order."""
    parts = []
    for m in messages:
        head = f"## {m.role} ({m.kind}, event {m.session_seq})"
        body = [m.content] if m.content else []
        if m.reasoning:
            body.insert(0, f"(reasoning) {m.reasoning}")
        for call in m.tool_calls or []:
            body.append(f"→ {call.name} {call.arguments}")
        parts.append("\n".join([head, *body]))
    return "\n\n".join(parts)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = max(limit // 2 - 20, 0)
    return f"{text[:half]}\n[… {len(text) - 2 * half:,} characters cut …]\n{text[-half:]}"


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
    chars = request_chars(build_messages(view, session.system), session.tools.specs())
    _started(session, "T4", measure(view.session, chars, budget), manual=True)
    outcome = await summarise(session, "T4", window)
    if isinstance(outcome, str):
        return ManualResult(error=outcome)
    return ManualResult(summary=outcome)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
