"""Read-only queries over the projection tables. Nothing here writes.

Each function reads a bounded set of rows through an index; none folds the
event log, so a step costs the same at event 100 and at event 100,000. The
per-step queries name their partial index (INDEXED BY): without statistics
the planner scans the session's whole primary-key range instead, which made a
step at 100,000 events 40 times slower than at 100. The transcript's reads
(session, all messages, tasks) type the rows of `records.py`, which serves the
same rows without pydantic to commands that only display them.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from leharness.store import StoreError

from . import records
from .models import (
    ArtifactRow,
    Message,
    ProcessRow,
    SessionRow,
    SessionView,
    TaskRow,
    ToolCallRow,
)
from .records import MESSAGE_COLUMNS

# What the model sees is the `transcript` view (views.sql): compaction's
# replacements over the original columns, in one place for the loop, Datasette
# and any SQLite tool.
_VISIBLE_COLUMNS = (
    "session_seq, role, kind, content, reasoning, tool_calls, tool_call_id, name, ts, "
    "1 AS visible, compacted_by"
)


def get_session(conn: sqlite3.Connection, session_id: str) -> SessionRow | None:
    row = records.session(conn, session_id)
    return SessionRow(**row) if row else None


def list_sessions(conn: sqlite3.Connection, limit: int | None = None) -> list[SessionRow]:
    """Sessions, newest first."""
    rows = conn.execute(
        "SELECT * FROM sessions ORDER BY created_at DESC, id DESC LIMIT ?",
        (limit if limit is not None else -1,),
    )
    return [SessionRow(**dict(row)) for row in rows]


def latest_session_id(conn: sqlite3.Connection) -> str | None:
    """The most recently active top-level session (for `--continue`)."""
    row = conn.execute(
        "SELECT id FROM sessions WHERE parent_session_id IS NULL "
        "ORDER BY updated_at DESC, id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def visible_messages(
    conn: sqlite3.Connection, session_id: str, compacted_seq: int | bool | None = False
) -> VisibleMessages:
    """The conversation the model sees, compaction applied.

    Kept in memory per connection and session: a call reads only the rows past
    the last `session_seq` it saw, so a step costs the same at turn 10 and at
    turn 500 (rebuilding every row as a pydantic object cost ~16 ms a step at
    1,300 rows). A message row changes after it is written only through a
    compaction, and every compaction moves `sessions.compacted_seq`: a
    different value there reads every visible row again, and a row equal to
    the one kept keeps its `Message` (the same object: the request's encoding
    of it, loop/request.py, stays valid). `compacted_seq` is that value when
    the caller has just read the session row (False: read it here).
    """
    if compacted_seq is False:
        row = conn.execute(
            "SELECT compacted_seq FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        compacted_seq = row[0] if row else None
    key = (id(conn), session_id)
    kept = _VISIBLE.get(key)
    if kept is None or kept.conn is not conn:
        kept = _Visible(conn, compacted_seq)
    elif kept.compacted_seq != compacted_seq:
        kept = kept.reread(compacted_seq)
    rows = conn.execute(
        f"SELECT {_VISIBLE_COLUMNS} FROM transcript WHERE session_id = ? AND session_seq > ? "
        "ORDER BY session_seq",
        (session_id, kept.last_seq),
    )
    kept.add(rows)
    _VISIBLE.pop(key, None)
    _VISIBLE[key] = kept  # most recent last
    while len(_VISIBLE) > _VISIBLE_KEPT:
        del _VISIBLE[next(iter(_VISIBLE))]
    return VisibleMessages(kept.messages, kept.generation)


class VisibleMessages(Sequence[Message]):
    """The visible messages as of one read, without copying them: the first `len` of
    the kept list, which only ever grows at its end (a compaction reads a new list),
    so what a read returned stays as it was. At turn 500 a copy of ~1,100 messages a
    step touched every one of them, then freed them, then the collector walked the
    copy: a step's cost grew with the session although its work did not.

    Two with the same `generation` are one list as it grew (the older one a prefix
    of the newer, the same objects), so a caller can tell what is new without
    comparing."""

    __slots__ = ("_length", "_messages", "generation")

    def __init__(self, messages: list[Message], generation: int) -> None:
        self._messages = messages
        self._length = len(messages)
        self.generation = generation

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> list[Message]: ...
    def __getitem__(self, index: int | slice) -> Message | list[Message]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step == 1:
                return self._messages[start:stop]
            return [self._messages[i] for i in range(start, stop, step)]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("visible message index out of range")
        return self._messages[index]

    def __iter__(self) -> Iterator[Message]:
        return itertools.islice(self._messages, self._length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(other) == self._length and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which have none

    def __repr__(self) -> str:
        return f"VisibleMessages({list(self)!r})"


_GENERATIONS = itertools.count(1)


class _Visible:
    def __init__(self, conn: sqlite3.Connection, compacted_seq: int | None) -> None:
        self.generation = next(_GENERATIONS)  # a new one for every list read from scratch
        self.conn = conn  # held so that id(conn) is not reused while kept
        self.compacted_seq = compacted_seq
        self.last_seq = 0
        self.messages: list[Message] = []
        self.rows: list[tuple] = []  # each message's row as read, to tell a changed one
        self.earlier: dict[tuple, Message] = {}  # before the last compaction, by row

    def reread(self, compacted_seq: int | None) -> _Visible:
        """A fresh list that reads every visible row again, reusing the kept `Message` of
        each row that the compaction left as it was."""
        fresh = _Visible(self.conn, compacted_seq)
        fresh.earlier = dict(zip(self.rows, self.messages, strict=True))
        return fresh

    def add(self, rows: Iterable[sqlite3.Row]) -> None:
        for row in rows:
            raw = tuple(row)
            message = self.earlier.pop(raw, None) or Message(**dict(row))
            self.rows.append(raw)
            self.messages.append(message)
        self.earlier = {}
        if self.messages:
            self.last_seq = self.messages[-1].session_seq


_VISIBLE: dict[tuple[int, str], _Visible] = {}
_VISIBLE_KEPT = 8  # sessions a process steps at once: the loop, subagents, compaction


def all_messages(conn: sqlite3.Connection, session_id: str) -> list[Message]:
    """Every message as it happened, visible or compacted away (for transcripts)."""
    return [Message(**row) for row in records.all_messages(conn, session_id)]


def messages_between(
    conn: sqlite3.Connection, session_id: str, first_seq: int, last_seq: int
) -> list[Message]:
    """The messages of events first_seq..last_seq as they happened (a compaction window)."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages "
        "WHERE session_id = ? AND session_seq BETWEEN ? AND ? ORDER BY session_seq",
        (session_id, first_seq, last_seq),
    )
    return [Message(**dict(row)) for row in rows]


def tool_calls(conn: sqlite3.Connection, session_id: str) -> list[ToolCallRow]:
    rows = conn.execute(
        "SELECT * FROM tool_calls WHERE session_id = ? ORDER BY model_seq, position",
        (session_id,),
    )
    return [ToolCallRow(**dict(row)) for row in rows]


def unanswered_tool_calls(conn: sqlite3.Connection, session_id: str) -> list[ToolCallRow]:
    """Tool calls with no result yet: the process stopped between request and result."""
    rows = conn.execute(
        "SELECT * FROM tool_calls INDEXED BY tool_calls_open "
        "WHERE session_id = ? AND status IN ('requested', 'running') "
        "ORDER BY model_seq, position",
        (session_id,),
    )
    return [ToolCallRow(**dict(row)) for row in rows]


def interrupted_processes(conn: sqlite3.Connection, session_id: str) -> list[ProcessRow]:
    """Commands started for tool calls that have no result yet (a killed lh left them)."""
    rows = conn.execute(
        "SELECT p.* FROM processes AS p JOIN tool_calls AS c "
        "ON c.session_id = p.session_id AND c.call_id = p.call_id "
        "WHERE p.session_id = ? AND c.status IN ('requested', 'running') ORDER BY p.started_at",
        (session_id,),
    )
    return [ProcessRow(**dict(row)) for row in rows]


def unfinished_children(conn: sqlite3.Connection, session_id: str) -> list[SessionRow]:
    """Subagent sessions of this session that never recorded how their run ended."""
    rows = conn.execute(
        "SELECT * FROM sessions INDEXED BY sessions_parent "
        "WHERE parent_session_id = ? AND status IN ('new', 'running') ORDER BY created_at, id",
        (session_id,),
    )
    return [SessionRow(**dict(row)) for row in rows]


def tool_call_exists(conn: sqlite3.Connection, session_id: str, call_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM tool_calls WHERE session_id = ? AND call_id = ?", (session_id, call_id)
    ).fetchone()
    return row is not None


def tasks(conn: sqlite3.Connection, session_id: str) -> list[TaskRow]:
    return [TaskRow(**row) for row in records.tasks(conn, session_id)]


def open_tasks(conn: sqlite3.Connection, session_id: str) -> list[TaskRow]:
    rows = conn.execute(
        "SELECT * FROM tasks INDEXED BY tasks_running WHERE session_id = ? AND status = 'running' "
        "ORDER BY started_at, task_id",
        (session_id,),
    )
    return [TaskRow(**dict(row)) for row in rows]


def pending_notifications(conn: sqlite3.Connection, session_id: str) -> list[TaskRow]:
    """Finished tasks whose result the model has not been shown yet, in the order they
    ended (by the ending event's session_seq: two endings often share a millisecond `ts`)."""
    rows = conn.execute(
        "SELECT * FROM tasks INDEXED BY tasks_pending "
        "WHERE session_id = ? AND delivered = 0 AND status != 'running' "
        "ORDER BY finished_seq",
        (session_id,),
    )
    return [TaskRow(**dict(row)) for row in rows]


def always_allowed(conn: sqlite3.Connection, session_id: str) -> set[str]:
    """The tools the user allowed for the rest of this session (answered "always")."""
    rows = conn.execute("SELECT name FROM approvals_always WHERE session_id = ?", (session_id,))
    return {name for (name,) in rows}


def artifacts(conn: sqlite3.Connection, session_id: str) -> list[ArtifactRow]:
    rows = conn.execute(
        "SELECT * FROM artifacts WHERE session_id = ? ORDER BY created_at, artifact_id",
        (session_id,),
    )
    return [ArtifactRow(**dict(row)) for row in rows]


def session_view(conn: sqlite3.Connection, session_id: str) -> SessionView:
    """The loop's whole read for one step: session row, visible messages, tasks."""
    session = get_session(conn, session_id)
    if session is None:
        raise StoreError(f"no session {session_id!r} (`lh sessions` lists them)")
    # Built without validating again what was just built (a list of ~1,300 messages
    # at turn 500 cost a check of each one, every step).
    return SessionView.model_construct(
        session=session,
        messages=visible_messages(conn, session_id, session.compacted_seq),
        open_tasks=open_tasks(conn, session_id),
        pending_notifications=pending_notifications(conn, session_id),
    )
