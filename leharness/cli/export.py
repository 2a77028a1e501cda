"""`lh export SESSION --format md|html`: a session people can read, subagents nested.

Each readable format is one function in READABLE taking the connection and the
session id and yielding text; history.EXPORT_FORMATS offers them beside jsonl
and atif. Everything comes from the projections, where secrets were already
redacted before they were recorded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leharness.projections import SessionRow

Exporter = Callable[[sqlite3.Connection, str], Iterator[str]]


@dataclass
class Transcript:
    """A session's row, its transcript with calls folded, its subagents' transcripts."""

    session: SessionRow
    entries: list  # inspector.page.Entry
    children_by_task: dict[str, Transcript] = field(default_factory=dict)
    unattached: list[Transcript] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)


def load(conn: sqlite3.Connection, session_id: str) -> Transcript:
    """The session's transcript with its subagents' nested (the timeline is left to the
    HTML page, which draws it for the top session only)."""
    from leharness import projections
    from leharness.inspector.page import fold

    session = projections.get_session(conn, session_id)
    if session is None:  # the caller resolved the id, and sessions are never deleted
        raise LookupError(f"no session {session_id}")
    entries = fold(
        projections.all_messages(conn, session_id), projections.tool_calls(conn, session_id)
    )
    transcript = Transcript(session, entries)
    call_tasks = {c.row.task_id for e in entries for c in e.calls if c.row and c.row.task_id}
    children = conn.execute(
        "SELECT id, parent_task_id FROM sessions WHERE parent_session_id = ? ORDER BY created_at",
        (session_id,),
    ).fetchall()
    for child_id, task_id in children:
        child = load(conn, child_id)
        if task_id in call_tasks:
            transcript.children_by_task[task_id] = child
        else:
            transcript.unattached.append(child)
    return transcript


# -- Markdown -------------------------------------------------------------------------


def export_md(conn: sqlite3.Connection, session_id: str) -> Iterator[str]:
    """A readable transcript: prompts and answers as text, tool calls folded in <details>."""
    yield from _md(load(conn, session_id), 1)


def _md(t: Transcript, level: int) -> Iterator[str]:
    from leharness.inspector.page import pretty_json

    s = t.session
    yield f"{'#' * level} {s.title or '(untitled session)'}\n\n"
    yield f"- session `{s.id}` · {s.provider or '?'}/{s.model or '?'} · {s.status}\n"
    yield f"- created {s.created_at} · {s.event_count} events · {s.steps} steps\n"
    if s.cwd:
        yield f"- cwd `{s.cwd}`\n"
    if s.forked_from:
        yield f"- forked from `{s.forked_from}` at event {s.forked_at}\n"
    yield "\n"
    for entry in t.entries:
        m = entry.message
        if m.role == "user":
            label = "Notification" if m.kind == "notification" else "User"
            yield f"**{label}** · #{m.session_seq} · {m.ts}\n\n{_quote(m.content)}\n\n"
        elif m.role == "assistant":
            yield f"**Assistant** · #{m.session_seq} · {m.ts}\n\n"
            if m.reasoning:
                yield f"<details><summary>reasoning</summary>\n\n{m.reasoning}\n\n</details>\n\n"
            if m.content:
                yield m.content.rstrip() + ("\n\n*(cancelled)*" if m.kind == "cancelled" else "")
                yield "\n\n"
        else:  # a result whose call is not in the transcript
            yield f"**Tool result** ({m.name}) · #{m.session_seq}\n\n{_fence(m.content)}\n\n"
        for c in entry.calls:
            yield f"<details><summary>{c.call.name}: {_html_escape(c.summary)} ({c.status})"
            yield "</summary>\n\n"
            yield f"Arguments:\n\n{_fence(pretty_json(c.call.arguments), 'json')}\n\n"
            if c.result is not None:
                yield f"Result:\n\n{_fence(c.result.content)}\n\n"
            child = t.children_by_task.get(c.row.task_id) if c.row and c.row.task_id else None
            if child is not None:
                yield from _md(child, min(level + 1, 6))
            yield "</details>\n\n"
    for child in t.unattached:
        yield from _md(child, min(level + 1, 6))


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines()) or ">"


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def _html_escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


# -- HTML -----------------------------------------------------------------------------


def export_html(conn: sqlite3.Connection, session_id: str) -> Iterator[str]:
    """One self-contained page (inline CSS and SVG, no script, no network), like the
    inspector's session page: details, timeline, transcript, subagents nested."""
    from pathlib import Path

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from leharness import inspector
    from leharness.inspector import cells, chart
    from leharness.inspector.page import pretty_json

    here = Path(__file__).parent  # the page shares the inspector's stylesheet
    loader = FileSystemLoader([here, Path(inspector.__file__).parent / "templates"])
    env = Environment(loader=loader, autoescape=select_autoescape(default=True), trim_blocks=True)
    template = env.get_template("export_session.html")

    def timeline(t: Transcript):
        return chart.draw(t.timeline, t.session.updated_at, _bar_link) if t.timeline else ""

    transcript = load(conn, session_id)
    transcript.timeline = [
        dict(row)
        for row in conn.execute(
            "SELECT * FROM session_timeline WHERE session_id = ?", (session_id,)
        )
    ]
    yield template.render(
        t=transcript,
        markdown=cells.markdown_html,
        format_ms=chart.format_ms,
        pretty_json=pretty_json,
        timeline=timeline,
    )


def _bar_link(row: dict) -> str | None:
    if row["kind"] == "subagent" and row.get("child_session_id"):
        return f"#session-{row['child_session_id']}"
    if row["kind"] == "tool":
        return f"#call-{row['ref']}"
    return None


READABLE: dict[str, Exporter] = {"md": export_md, "html": export_html}
