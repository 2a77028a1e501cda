"""Projection rows as light records, for commands that only display them.

A `Record` is a row as a dict whose columns also read as attributes, with a
message's tool calls parsed from their JSON. No pydantic here, so `lh show`
starts without it. The typed read functions in `read.py` build their models
from these same queries: one SQL text per read. Nothing here writes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from leharness.store import StoreError
from leharness.store.text import lone_surrogate, storable

# The projections a transcript reads (their .sql files): what `lh show --at`
# needs projected in its scratch database.
TRANSCRIPT_PROJECTIONS = ("sessions", "messages", "tasks")

MESSAGE_COLUMNS = (
    "session_seq, role, kind, content, reasoning, tool_calls, tool_call_id, name, ts, visible, "
    "compacted_by"
)


class Record(dict):
    """One projection row: `record["status"]` and `record.status` read the same column."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def resolve_session_id(conn: sqlite3.Connection, prefix: str) -> str:
    """A full session id from an id or a unique prefix of one (as git does)."""
    if lone_surrogate(prefix) is not None:  # a command-line byte that is not UTF-8: no id's
        raise StoreError(f"no session '{storable(prefix)}' (`lh sessions` lists them)")
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 2", (pattern,)
    ).fetchall()
    ids = [row[0] for row in rows]
    if prefix in ids:
        return prefix
    if not prefix or not ids:
        raise StoreError(f"no session {prefix!r} (`lh sessions` lists them)")
    if len(ids) > 1:
        raise StoreError(f"session prefix {prefix!r} matches several sessions: give more of it")
    return ids[0]


def sessions(conn: sqlite3.Connection, limit: int | None = None) -> list[Record]:
    """Sessions, newest first (`lh sessions`, which starts without pydantic)."""
    return _records(
        conn,
        "SELECT * FROM sessions ORDER BY created_at DESC, id DESC LIMIT ?",
        (limit if limit is not None else -1,),
    )


def session(conn: sqlite3.Connection, session_id: str) -> Record | None:
    """The session's row, or None."""
    rows = _records(conn, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    return rows[0] if rows else None


def session_row(conn: sqlite3.Connection, session_id: str) -> Record:
    """The row of a session known to exist (its id came from `resolve_session_id`)."""
    row = session(conn, session_id)
    if row is None:
        raise LookupError(f"no session {session_id}")
    return row


def all_messages(conn: sqlite3.Connection, session_id: str) -> list[Record]:
    """Every message as it happened, visible or compacted away (for transcripts)."""
    return [
        message_record(row)
        for row in _records(
            conn,
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY session_seq",
            (session_id,),
        )
    ]


def tasks(conn: sqlite3.Connection, session_id: str) -> list[Record]:
    """The session's tasks, oldest first."""
    return _records(
        conn,
        "SELECT * FROM tasks WHERE session_id = ? ORDER BY started_at, task_id",
        (session_id,),
    )


def message_record(row: Record) -> Record:
    """The row with its `tool_calls` JSON text parsed into records (name, arguments, id)."""
    calls = row.get("tool_calls")
    if isinstance(calls, str):
        calls = json.loads(calls)
        row["tool_calls"] = [Record(c) for c in calls] if isinstance(calls, list) else calls
    return row


def _records(conn: sqlite3.Connection, sql: str, params: tuple) -> list[Record]:
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [Record(zip(columns, row, strict=True)) for row in cursor]
