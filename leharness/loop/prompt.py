"""Building the Chat Completions request from a session view.

Input is projection rows only (never the event log), plus the project's
instructions and skills catalog, which the runner reads from files. Reasoning
is kept in the database but never sent back: most providers reject it in
requests.
"""

from __future__ import annotations

import platform
from typing import Any

from leharness import store
from leharness.projections import Message, SessionView
from leharness.tools import skills

SYSTEM_PROMPT = """\
You are lh, a careful coding agent running in a terminal harness.
Working directory: {cwd}
Platform: {platform}

Use the tools to inspect and change files and run commands; prefer reading before
editing. Tool results end with their status. Keep answers short and concrete; when you
are done, answer without calling a tool."""


def system_prompt(view: SessionView, instructions: str = "", skills_catalog: str = "") -> str:
    """The base prompt, then the project instructions (AGENTS.md…), then the skills catalog."""
    parts = [SYSTEM_PROMPT.format(cwd=view.session.cwd or ".", platform=platform.system())]
    if instructions:
        parts.append(
            "# Project instructions\n\nFrom the project's AGENTS.md files (or CLAUDE.md), "
            "root first; nearer folders override.\n\n" + instructions
        )
    if skills_catalog:
        parts.append(skills_catalog)
    return "\n\n".join(parts)


def session_system(session: Any, view: SessionView) -> str:
    """This step's system prompt, the one the model gets and compaction measures: the
    session's own when it has one, else ours with the project instructions and, for a
    session that can load skills, their catalog. Skills are rescanned every step (a stat
    per SKILL.md; only changed files are read again), so an edit shows at the next step."""
    if session.system:
        return session.system
    catalog = ""
    if skills.LOAD_SKILL.name in session.tools:
        catalog = skills.catalog(skills.discover(session.home or store.home_dir(), session.cwd))
    return system_prompt(view, session.instructions.text, catalog)


def to_openai(message: Message) -> dict[str, Any] | None:
    """One projected message as a Chat Completions message (None: nothing to send)."""
    if message.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": message.content or None}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        elif not message.content:
            return None  # e.g. a model call cancelled before any text arrived
        return out
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    return {"role": "user", "content": message.content}


def build_messages(view: SessionView, system: str | None = None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system or system_prompt(view)}]
    for message in view.messages:
        converted = to_openai(message)
        if converted is not None:
            messages.append(converted)
    return messages
