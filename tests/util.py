"""Helpers shared by tests: snapshots of projection rows and small session builders."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leharness import store

#: The golden event sequence of one prompt, one tool call and a final answer
#: (the README shows the same sequence).
ONE_TOOL_ROUND_TRIP = [
    "session.created",
    "invocation.received",
    "step.started",
    "model.completed",
    "tool.started",
    "tool.completed",
    "step.started",
    "model.completed",
    "agent.finished",
]
#: The same with bash: its process group is recorded right after the call starts.
BASH_ROUND_TRIP = [*ONE_TOOL_ROUND_TRIP[:5], "process.started", *ONE_TOOL_ROUND_TRIP[5:]]


def snapshot(conn: sqlite3.Connection, rename: dict[str, str] | None = None) -> dict:
    """Every projection row, sorted, with session ids optionally renamed."""
    rename = rename or {}
    result = {}
    for table in store.projection_tables(conn):
        rows = []
        for row in conn.execute(f'SELECT * FROM "{table}"'):
            values = dict(row)
            if table == "conversation":  # its rowid is the event's global seq: not comparable
                values.pop("seq")  # across files; the doctor's rebuild check compares it
            for key in ("id", "session_id"):
                if key in values and values[key] in rename:
                    values[key] = rename[values[key]]
            rows.append(tuple(sorted(values.items(), key=lambda kv: kv[0])))
        result[table] = sorted(rows, key=repr)
    return result


def replay_into_fresh_file(
    source: sqlite3.Connection, path: Path, session_id: str, upto: int
) -> sqlite3.Connection:
    """A new database holding only events 1..upto of one session, projected by the triggers."""
    fresh = store.open_store(path)
    rows = source.execute(
        "SELECT id, session_id, session_seq, ts, type, data FROM events "
        "WHERE session_id = ? AND session_seq <= ? ORDER BY session_seq",
        (session_id, upto),
    ).fetchall()
    with store.write_transaction(fresh):
        fresh.executemany(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [tuple(row) for row in rows],
        )
    return fresh


def tool_round(conn: sqlite3.Connection, session_id: str, text: str = "hi") -> None:
    """One user prompt, one model call with a bash tool call, its result, a final answer."""
    call_id = f"call_{store.last_seq(conn, session_id)}"
    store.append(conn, session_id, {"type": "invocation.received", "text": text})
    store.append(conn, session_id, {"type": "step.started", "step": 1, "model": "m"})
    store.append(
        conn,
        session_id,
        {
            "type": "model.completed",
            "tool_calls": [{"id": call_id, "name": "bash", "arguments": '{"command": "ls"}'}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4},
        },
    )
    store.append(conn, session_id, {"type": "tool.started", "call_id": call_id, "name": "bash"})
    store.append(
        conn,
        session_id,
        {"type": "tool.completed", "call_id": call_id, "name": "bash", "result": "a\n[exit: 0]"},
    )
    store.append(conn, session_id, {"type": "step.started", "step": 2, "model": "m"})
    store.append(conn, session_id, {"type": "model.completed", "text": "done"})
    store.append(conn, session_id, {"type": "agent.finished", "reason": "no_tool_calls"})
