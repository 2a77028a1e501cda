"""A session's transcript as plain text, for `lh show`.

It reads only attributes, so it formats the typed rows (`SessionRow`,
`Message`) and the light records `lh show` reads without pydantic alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .render import call_summary

if TYPE_CHECKING:
    from leharness.projections import Message, Record, SessionRow

PREVIEW_LINES = 8


def format_header(row: SessionRow | Record) -> list[str]:
    lines = [
        f"session {row.id} · {row.provider or '?'}/{row.model or '?'} · {row.status} · "
        f"{row.event_count} events · {row.steps} steps · created {row.created_at}"
    ]
    if row.forked_from:
        lines.append(f"forked from {row.forked_from} at event {row.forked_at}")
    if row.parent_session_id:
        lines.append(f"child of {row.parent_session_id} (task {row.parent_task_id})")
    return lines


def format_message(message: Message | Record, full: bool = False) -> list[str]:
    if message.role == "user":
        label = "[notification]" if message.kind == "notification" else "›"
        return [f"{label} {message.content}"]
    if message.role == "assistant":
        lines = [f"  (reasoning) {message.reasoning}"] if message.reasoning else []
        if message.content:
            suffix = " [cancelled]" if message.kind == "cancelled" else ""
            lines.append(message.content + suffix)
        for call in message.tool_calls or []:
            lines.append(f"  ⏺ {call_summary(call.name, call.arguments)}")
        return lines
    marker = "✗" if message.kind == "tool_error" else "⎿"
    body = message.content.rstrip("\n").splitlines() or [""]
    if not full and len(body) > PREVIEW_LINES:
        body = [*body[:PREVIEW_LINES], f"… {len(body) - PREVIEW_LINES} more lines (--full)"]
    return [f"    {marker} {body[0]}", *(f"      {line}" for line in body[1:])]


def format_transcript(
    row: SessionRow | Record, messages: list[Message] | list[Record], full: bool = False
) -> str:
    lines = format_header(row)
    for message in messages:
        lines.append("")
        lines.extend(format_message(message, full))
    return "\n".join(lines)
