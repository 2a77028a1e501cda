"""Readable cells: messages as Markdown, payloads as indented JSON, outputs as
preformatted text, and session ids as links to the session page.

`cell_kind()` decides from the table and column names alone; the renderers
escape everything they are given (Markdown's raw HTML is off).
"""

from __future__ import annotations

import json
from functools import cache
from urllib.parse import quote

from markupsafe import Markup, escape

from leharness.store import jsontext

MAX_CHARS = 20_000  # a cell longer than this is cut; the JSON API has it all

SESSION_COLUMNS = frozenset({"session_id", "parent_session_id", "child_session_id", "forked_from"})
JSON_COLUMNS = frozenset({"data", "tool_calls", "arguments", "details"})
MARKDOWN_COLUMNS = frozenset({"reasoning"})
PRE_COLUMNS = frozenset({"output", "command", "error"})
MESSAGE_TABLES = frozenset({"messages", "transcript"})

PRE_STYLE = "white-space:pre-wrap;max-height:24em;overflow:auto;margin:0;font-size:0.85em"


def cell_kind(table: str | None, column: str, row) -> str | None:
    """How a cell is shown: session, session_title, json, markdown, pre or None."""
    if column in SESSION_COLUMNS or (table == "sessions" and column == "id"):
        return "session"
    if table == "sessions" and column == "title":
        return "session_title"
    if column in JSON_COLUMNS:
        return "json"
    if column == "content" and table in MESSAGE_TABLES:
        return "pre" if _get(row, "role") == "tool" else "markdown"
    if column in MARKDOWN_COLUMNS:
        return "markdown"
    if column in PRE_COLUMNS:
        return "pre"
    return None


def _get(row, key: str):
    try:
        return row[key]
    except (KeyError, IndexError):
        return None


def session_url(base: str, session_id: str) -> str:
    """The session page of `session_id` under the database URL `base`."""
    return f"{base}/-/session/{quote(session_id, safe='')}"


def session_link(base: str, session_id: str, label: str | None = None) -> Markup:
    text = label if label is not None else session_id
    return Markup(f'<a href="{escape(session_url(base, session_id))}">{escape(text)}</a>')


def json_html(value) -> Markup | None:
    """Indented JSON in a <pre>, or None when the text is not a JSON object or list."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = jsontext.loads(value)
    except json.JSONDecodeError:
        return None
    return pre_html(json.dumps(parsed, indent=2, ensure_ascii=False), "lh-json")


def pre_html(text: str, css_class: str = "lh-pre") -> Markup:
    return Markup(f'<pre class="{css_class}" style="{PRE_STYLE}">{escape(_cut(str(text)))}</pre>')


def markdown_html(text: str) -> Markup:
    """Markdown as HTML; raw HTML in the text is shown escaped, never run."""
    return Markup(f'<div class="lh-md">{_markdown().render(_cut(str(text)))}</div>')


@cache
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return text[:MAX_CHARS] + f"\n… ({len(text) - MAX_CHARS:,} more characters)"


def render(kind: str, value, row, base: str) -> Markup | None:
    """The HTML of one cell of the given kind, or None to leave it to Datasette."""
    if value is None or value == "":
        return None
    if kind == "session":
        return session_link(base, str(value))
    if kind == "session_title":
        session_id = _get(row, "id")
        return session_link(base, session_id, str(value)) if session_id else None
    if kind == "json":
        return json_html(value)
    if kind == "markdown":
        return markdown_html(value)
    if kind == "pre":
        return pre_html(value)
    return None
