"""Building the Chat Completions request from a session view.

Input is projection rows only (never the event log), plus the project's
instructions and skills catalog, which the runner reads from files. Reasoning
is kept in the database but never sent back: most providers reject it in
requests.
"""

from __future__ import annotations

import base64
import bisect
import json
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leharness import projections, store
from leharness.projections import Message, SessionView
from leharness.tools import skills

from . import request

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


def build_messages(
    view: SessionView, system: str | None = None, images: bool = False
) -> list[dict[str, Any]]:
    """The request's messages. With `images` (the model accepts them), the images tool
    results point to (MCP image blocks, saved as artifacts) follow those results as image
    parts of a user message: Chat Completions takes images only in user messages.

    Each message is converted and encoded once per session (request.py): a step
    costs the same at turn 10 and at turn 500. Without images the result is the
    session's one request list, extended in place by the messages new since the last
    step (request.Kept.request): a model client reads it during its call and keeps
    nothing of it."""
    content = system or system_prompt(view)
    kept = _conversation(view)
    if images and kept.marked:
        head = {"role": "system", "content": content}
        converted, encoded = [head, *kept.converted], [json.dumps(head), *kept.encoded]
        _insert_images(view.messages, kept, converted, encoded)
        return request.Messages(converted, encoded)
    return kept.request(content)


def sent_chars(view: SessionView) -> list[int]:
    """What each visible message adds to the request's JSON (0: it sends nothing)."""
    return _conversation(view).sent_chars()


def _conversation(view: SessionView) -> request.Kept:
    return request.conversation(view.session.id, view.messages, to_openai, _image_ids)


def warm(conn: Any, session_id: str) -> None:
    """Read and encode the session's visible conversation now, at start-up: the first
    step then reads only what is new, and the objects made here are frozen with the
    rest of start-up's heap instead of being walked by the collector during turns."""
    messages = projections.visible_messages(conn, session_id)
    request.conversation(session_id, messages, to_openai, _image_ids)


def _image_ids(message: Message) -> list[str]:
    if message.role != "tool" or "[image: " not in (message.content or ""):
        return []
    return [match["id"] for match in IMAGE_MARKER.finditer(message.content)]


def _insert_images(
    history: Sequence[Message], kept: request.Kept, converted: list[Any], encoded: list[str]
) -> None:
    """Put the image messages into the request (`converted` and `encoded`, which hold
    the system message first): the parts of the latest MAX_IMAGES images, each run of
    tool results followed by one user message with the images its results returned."""
    wanted = set([image for _, ids in kept.marked for image in ids][-MAX_IMAGES:])
    parts: dict[int, list[dict[str, Any]]] = {}  # by the index of the message they precede
    for index, ids in kept.marked:
        if wanted.isdisjoint(ids):
            continue  # older images: their files are not read again
        found = [part for part in _image_parts(history[index].content) if part["id"] in wanted]
        if not found:
            continue
        after = index + 1  # the first message after this run of tool results
        while after < len(history) and history[after].role == "tool":
            after += 1
        parts.setdefault(after, []).extend(found)
    for before in sorted(parts, reverse=True):  # from the end: earlier positions stay valid
        position = 1 + bisect.bisect_left(kept.at, before)
        message = _image_message(parts[before])
        converted.insert(position, message)
        encoded.insert(position, json.dumps(message))


# A tool result's pointer to an image it returned (tools/mcp writes it).
IMAGE_MARKER = re.compile(
    r"\[image: (?P<mime>[\w.+-]+/[\w.+-]+), [\d,]+ bytes, "
    r"artifact (?P<id>\w+) at (?P<path>[^\]]+)\]"
)
MAX_IMAGES = 4  # only the latest are sent again: each costs a file read and many tokens
VISION_MODELS = (
    "gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "claude",
    "gemini", "gemma3", "llava", "bakllava", "llama3.2-vision", "llama4", "qwen2.5vl",
    "qwen2.5-vl", "qwen-vl", "minicpm-v", "pixtral", "mistral-small3", "granite3.2-vision",
)  # fmt: skip


def accepts_images(model: str | None) -> bool:
    """Whether the model takes image content parts (a known vision model family)."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    return name.startswith(VISION_MODELS) and not name.startswith(("o1-mini", "o3-mini"))


def _image_parts(content: str) -> list[dict[str, Any]]:
    parts = []
    for match in IMAGE_MARKER.finditer(content or ""):
        try:
            data = Path(match["path"]).read_bytes()
        except OSError:  # the artifact is gone: the marker in the result still says what it was
            continue
        url = f"data:{match['mime']};base64,{base64.b64encode(data).decode()}"
        parts.append({"id": match["id"], "type": "image_url", "image_url": {"url": url}})
    return parts


def _image_message(parts: list[dict[str, Any]]) -> dict[str, Any]:
    text = {"type": "text", "text": "The image(s) the tool calls above returned, in order:"}
    images = [{key: part[key] for key in ("type", "image_url")} for part in parts]
    return {"role": "user", "content": [text, *images]}
