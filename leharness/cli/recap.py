"""The end of a resumed conversation, shown before the prompt (`lh -c`, `lh --resume`,
`/resume`) so that the user sees where it stopped: the last prompts and answers, tool
calls as one line each."""

from __future__ import annotations

from typing import Any

from .render import call_summary

MESSAGES = 6  # the last this many user / assistant messages
ANSWER_LINES = 12  # an answer longer than this shows its last lines


def recap_lines(messages: list[Any]) -> list[tuple[str, str]]:
    """(style, text) lines: `› prompt`, the answer's text, `⏺ tool: arg` per call."""
    shown = [m for m in messages if m.role in ("user", "assistant") and m.kind != "summary"]
    shown = shown[-MESSAGES:]
    out: list[tuple[str, str]] = []
    for message in shown:
        if message.role == "user":
            first, *rest = (message.content or "").strip().splitlines() or [""]
            out.append(("bold", f"› {first}" + (f" (+{len(rest)} lines)" if rest else "")))
            continue
        text = (message.content or "").strip().splitlines()
        if len(text) > ANSWER_LINES:
            out.append(("dim", f"  … {len(text) - ANSWER_LINES} earlier lines"))
            text = text[-ANSWER_LINES:]
        out += [("", line) for line in text]
        for call in message.tool_calls or []:
            out.append(("cyan", f"⏺ {call_summary(call.name, call.arguments)}"))
    return out


def show_recap(console: Any, conn: Any, session_id: str) -> None:
    """Print the recap above the prompt (nothing for a session without messages)."""
    from leharness import projections

    lines = recap_lines(projections.all_messages(conn, session_id))
    if not lines:
        return
    console.print("── earlier in this session ──", style="dim")
    for style, text in lines:
        console.print(text, style=style, markup=False, highlight=False)
    console.print("──", style="dim")
