"""Summaries for compaction tiers T4 and T5: the window's transcript is saved as
an artifact, the same model summarises it with no tools and a bounded output,
and the outcome is recorded. A failure is an event, never an exception: the
loop's model call goes ahead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from leharness import projections, store
from leharness.projections import Message
from leharness.store import events as ev
from leharness.tools import artifacts

from ..model import ProviderError, StreamSink

if TYPE_CHECKING:
    from ..session import LoopSession


SUMMARY_MAX_TOKENS = 1024
SUMMARY_SYSTEM = """\
You compact an agent's conversation. Summarise the part you are given so the agent
can carry on without it: the user's goals and instructions, decisions made, files
and commands involved, results found, errors met, and what was still open. Be
concrete and brief; use plain sentences or short bullets. Do not call tools."""
SUMMARY_MAX_CHARS = SUMMARY_MAX_TOKENS * 4  # if a provider ignores max_tokens


async def summarise(
    session: LoopSession, tier: str, window: list[Message], limit: int
) -> ev.CompactionSummary | str:
    """Save the window's transcript, ask the model for a summary of at most `limit`
    characters of it, record the outcome.

    Returns the recorded summary, or the error text: a failure is recorded as
    compaction.summary.failed and the loop goes on.
    """
    first, last = window[0].session_seq, window[-1].session_seq
    full = projections.messages_between(session.conn, session.session_id, first, last)
    try:
        saved = artifacts.save(
            session.home or store.home_dir(),
            session.session_id,
            transcript(full).encode(),
            sync=False,  # the log holds every message of the window
        )
    except OSError as error:
        message = f"the window's transcript could not be saved: {error}"
        session.record(
            ev.CompactionSummaryFailed(
                from_seq=first, to_seq=last, error=message, kind="artifact_error", tier=tier
            )
        )
        return message
    session.record(saved.created("compaction_transcript"))
    request = [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {"role": "user", "content": _clip(transcript(window), limit)},
    ]
    try:
        reply = await session.model.complete(
            request, [], StreamSink(), max_tokens=SUMMARY_MAX_TOKENS
        )
        summary = reply.text.strip()[:SUMMARY_MAX_CHARS]
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
