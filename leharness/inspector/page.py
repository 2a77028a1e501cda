"""What the inspector's session page shows, read from the projections.

One synchronous function, `load()`, runs inside Datasette's read connection
(`Database.execute_fn`) and returns plain data for the template: the session
row and its relatives, the transcript with each tool call folded together
with its result, and the timeline rows. Nothing here writes or renders HTML.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from leharness import projections
from leharness.projections.models import Message, SessionRow, ToolCallRow
from leharness.store import StoreError, jsontext
from leharness.store.events import ToolCall

MAX_MESSAGES = 500  # the rest stays one click away, in the transcript view
MAX_TIMELINE = 2000


@dataclass
class FoldedCall:
    """A tool call as the assistant asked for it, with its projection row and result."""

    call: ToolCall
    row: ToolCallRow | None
    result: Message | None

    @property
    def status(self) -> str:
        return self.row.status if self.row else "requested"

    @property
    def summary(self) -> str:
        return summarize_arguments(self.call.arguments)

    @property
    def pretty_arguments(self) -> str:
        return pretty_json(self.call.arguments)


@dataclass
class Entry:
    """One message of the transcript; an assistant message carries its folded calls."""

    message: Message
    calls: list[FoldedCall] = field(default_factory=list)


@dataclass
class SessionPage:
    session: SessionRow
    parent: SessionRow | None
    source: SessionRow | None  # the session this one was forked from
    children: list[SessionRow]
    forks: list[SessionRow]
    entries: list[Entry]
    messages_shown: int
    message_count: int
    timeline: list[dict]
    timeline_count: int
    tasks: list[dict]
    mcp: list[dict] = field(default_factory=list)  # mcp.connected / mcp.failed, in order
    trial: dict | None = None  # the Harbor trial the session came from (lh merge)


def load(conn: sqlite3.Connection, session_ref: str) -> SessionPage:
    """The session page of one session (an id or a unique prefix of one).

    Raises StoreError when no session matches.
    """
    previous = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        return _load(conn, projections.resolve_session_id(conn, session_ref))
    finally:
        conn.row_factory = previous


def _load(conn: sqlite3.Connection, session_id: str) -> SessionPage:
    session = projections.get_session(conn, session_id)
    if session is None:
        raise StoreError(f"no session {session_id!r}")
    messages = _messages(conn, session_id)
    (message_count,) = conn.execute(
        "SELECT count(*) FROM messages WHERE session_id = ?", (session_id,)
    ).fetchone()
    timeline = [
        dict(row)
        for row in conn.execute(
            "SELECT * FROM session_timeline WHERE session_id = ? LIMIT ?",
            (session_id, MAX_TIMELINE + 1),
        )
    ]
    return SessionPage(
        session=session,
        parent=_session(conn, session.parent_session_id),
        source=_session(conn, session.forked_from),
        children=_sessions(conn, "parent_session_id", session_id),
        forks=_sessions(conn, "forked_from", session_id),
        entries=fold(messages, projections.tool_calls(conn, session_id)),
        messages_shown=len(messages),
        message_count=message_count,
        timeline=timeline[:MAX_TIMELINE],
        timeline_count=len(timeline),
        tasks=[
            dict(row)
            for row in conn.execute(
                "SELECT * FROM task_durations WHERE session_id = ? ORDER BY started_at",
                (session_id,),
            )
        ],
        mcp=_mcp_events(conn, session_id),
        trial=_trial(conn, session_id),
    )


def _mcp_events(conn: sqlite3.Connection, session_id: str) -> list[dict]:
    """The session's MCP server events: which servers connected with which tools, which
    failed and why (the events table's index on session and sequence finds them)."""
    rows = conn.execute(
        "SELECT session_seq, ts, type, data FROM events WHERE session_id = ? "
        "AND type IN ('mcp.connected', 'mcp.failed') ORDER BY session_seq LIMIT 200",
        (session_id,),
    )
    return [{"seq": row[0], "ts": row[1], "type": row[2], **jsontext.loads(row[3])} for row in rows]


def _trial(conn: sqlite3.Connection, session_id: str) -> dict | None:
    row = conn.execute(
        "SELECT t.trial_id, t.job, t.trial, t.task, t.agent, t.reward, t.exception_type "
        "FROM trial_sessions AS link JOIN trials AS t ON t.trial_id = link.trial_id "
        "WHERE link.session_id = ?",
        (session_id,),
    ).fetchone()
    return dict(row) if row else None


def _messages(conn: sqlite3.Connection, session_id: str) -> list[Message]:
    rows = conn.execute(
        "SELECT session_seq, role, kind, content, reasoning, tool_calls, tool_call_id, name, ts, "
        "visible FROM messages WHERE session_id = ? ORDER BY session_seq LIMIT ?",
        (session_id, MAX_MESSAGES),
    )
    return [Message(**dict(row)) for row in rows]


def _session(conn: sqlite3.Connection, session_id: str | None) -> SessionRow | None:
    return projections.get_session(conn, session_id) if session_id else None


def _sessions(conn: sqlite3.Connection, column: str, session_id: str) -> list[SessionRow]:
    rows = conn.execute(
        f"SELECT * FROM sessions WHERE {column} = ? ORDER BY created_at, id", (session_id,)
    )
    return [SessionRow(**dict(row)) for row in rows]


def fold(messages: list[Message], calls: list[ToolCallRow]) -> list[Entry]:
    """Attach every tool result to the assistant message that asked for it.

    A result whose call is not on the page (cut off by MAX_MESSAGES) stays a
    message of its own.
    """
    rows = {row.call_id: row for row in calls}
    results = {m.tool_call_id: m for m in messages if m.role == "tool" and m.tool_call_id}
    requested = {call.id for m in messages for call in m.tool_calls or ()}
    entries = []
    for message in messages:
        if message.role == "tool" and message.tool_call_id in requested:
            continue
        folded = [
            FoldedCall(call, rows.get(call.id), results.get(call.id))
            for call in message.tool_calls or ()
        ]
        entries.append(Entry(message, folded))
    return entries


def summarize_arguments(arguments: str, width: int = 90) -> str:
    """`command: ls -la` — the arguments of a call on one short line."""
    try:
        value = jsontext.loads(arguments)
    except json.JSONDecodeError:
        text = arguments
    else:
        if isinstance(value, dict):
            text = "  ".join(f"{key}: {_flat(item)}" for key, item in value.items())
        else:
            text = _flat(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _flat(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def pretty_json(text: str) -> str:
    """Indented JSON, or the text unchanged when it is not JSON."""
    try:
        return json.dumps(jsontext.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        return text
