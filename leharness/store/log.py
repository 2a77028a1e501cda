"""The event log: append, read back, and branch by copying rows.

`append()` is the only way an event enters the database. It validates the
payload with its pydantic model, computes the next `session_seq` inside a
BEGIN IMMEDIATE transaction, and lets the triggers update the projections in
that same transaction.

One writer per session is kept by the append itself (optimistic concurrency,
as event stores do), not only by the lock file: a process that `claim`s a
session appends to it only while its last `session_seq` is the one this
process last saw; otherwise `SessionChanged` stops it, and nothing is written.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from leharness.errors import LeharnessError

from . import jsontext
from .connection import StoreError, main_file, new_ulid, now_iso, write_transaction
from .events import (
    EVENT_TYPES,
    Event,
    EventPayload,
    Payload,
    SessionCreated,
    SessionForked,
    ToolFailed,
)
from .text import storable_tree


class EventValidationError(LeharnessError, ValueError):
    """An event payload does not match its type's model (nothing was written)."""


class SessionChanged(StoreError):
    """Another writer appended to a session this process writes (nothing was written)."""


log = logging.getLogger("leharness.store")

# (database file, session id) -> the last session_seq this process wrote or saw when
# it claimed the session. Shared by every connection of the process: its loops,
# background tasks and an interactive session's earlier views of the same session
# are one writer.
_SEEN: dict[tuple[str, str], int] = {}


def claim(conn: sqlite3.Connection, session_id: str) -> int:
    """Become `session_id`'s writer in this process: every later append to it must
    follow its current last event, or raise SessionChanged. Returns that session_seq."""
    seen = _SEEN[(_file_of(conn), session_id)] = last_seq(conn, session_id)
    return seen


def _file_of(conn: sqlite3.Connection) -> str:
    known = getattr(conn, "db_file", None)
    if known is not None:
        return known
    return main_file(conn)


def validate_payload(payload: Payload | Mapping[str, Any]) -> Payload:
    """Turn a dict with a `type` key into its payload model, or raise EventValidationError."""
    if isinstance(payload, Payload):
        return payload
    event_type = payload.get("type")
    if event_type not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        raise EventValidationError(f"unknown event type {event_type!r}; known types: {known}")
    try:  # its own model, not the union of all: that builds one schema, not 32 (~25 ms)
        return EVENT_TYPES[event_type].model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in error.errors()
        )
        raise EventValidationError(f"invalid {event_type} payload: {problems}") from None


def encode_data(payload: Payload) -> str:
    """The JSON stored in `events.data`: the payload without its `type`."""
    return payload.model_dump_json(exclude={"type"}, exclude_none=True)


def append(
    conn: sqlite3.Connection,
    session_id: str,
    payload: Payload | Mapping[str, Any],
    *,
    ts: str | None = None,
) -> Event:
    """Validate and append one event; return it as stored.

    Opens its own BEGIN IMMEDIATE transaction, or joins the caller's when one
    is already open (so several appends can commit together).
    """
    model = validate_payload(payload)
    if conn.in_transaction:
        return _insert(conn, session_id, model, ts or now_iso())
    with write_transaction(conn):
        return _insert(conn, session_id, model, ts or now_iso())


def _insert(conn: sqlite3.Connection, session_id: str, model: Payload, ts: str) -> Event:
    _see_virtual_tables(conn)
    (next_seq,) = conn.execute(
        "SELECT coalesce(max(session_seq), 0) + 1 FROM events WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    key = (_file_of(conn), session_id)
    seen = _SEEN.get(key)
    # Events are never deleted, so a last event beyond the one seen is another
    # writer's (one below it is this process's own rolled-back append).
    if seen is not None and next_seq - 1 > seen:
        raise SessionChanged(
            f"session {session_id} changed under me: another writer appended events "
            f"{seen + 1}..{next_seq - 1} after event {seen}, the last this lh saw; stopping "
            "here so that nothing is lost or written twice (`lh --session "
            f"{session_id}` continues from the events as they are)"
        )
    event_id = new_ulid()
    try:
        data = encode_data(model)
    except PydanticSerializationError:  # a lone surrogate in its text: see text.py
        model = model.model_validate(storable_tree(model.model_dump()))
        data = encode_data(model)
    (seq,) = conn.execute(
        "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        (event_id, session_id, next_seq, ts, model.type, data),
    ).fetchone()
    if seen is not None:
        _SEEN[key] = next_seq
    return _event(seq, event_id, session_id, next_seq, ts, model)


def _event(
    seq: int, event_id: str, session_id: str, session_seq: int, ts: str, data: Payload
) -> Event:
    """An Event around a payload already validated: building the Event's own validator
    would build the schema of every event type (~25 ms at start-up) to check nothing new."""
    payload = cast("EventPayload", data)  # one of the union's models: validated already
    return Event.model_construct(
        seq=seq, id=event_id, session_id=session_id, session_seq=session_seq, ts=ts, data=payload
    )


def _see_virtual_tables(conn: sqlite3.Connection) -> None:
    """On the loop's connection, inside a write transaction: learn which shadow tables
    SQLite will write (an FTS index added since), for its authorizer."""
    writes = getattr(conn, "sqlite_writes", None)
    if writes is not None:
        writes.refresh(conn)


def create_session(conn: sqlite3.Connection, created: SessionCreated | None = None) -> str:
    """Start a new session with its `session.created` event; return its id."""
    session_id = new_ulid()
    append(conn, session_id, created or SessionCreated())
    return session_id


def row_to_event(row: sqlite3.Row | tuple) -> Event:
    """An `events` row as its model; EventValidationError when another program wrote a
    type leharness does not know or a payload its model refuses."""
    seq, event_id, session_id, session_seq, ts, event_type, data = tuple(row)
    try:
        fields = jsontext.loads(data)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise EventValidationError(f"{event_type} data is not a JSON object")
    if event_type not in EVENT_TYPES:
        raise EventValidationError(f"type {event_type!r} is not one leharness knows")
    payload = validate_payload({**fields, "type": event_type})
    return _event(seq, event_id, session_id, session_seq, ts, payload)


@dataclass(frozen=True)
class ForeignEvent:
    """A row of `events` that no leharness append wrote: another program inserted a type
    leharness does not know, or a payload its model refuses. Events are append-only, so
    it stays; readers skip it."""

    seq: int
    session_id: str
    session_seq: int
    type: str
    problem: str

    def describe(self) -> str:
        return (
            f"event {self.session_seq} of session {self.session_id} (seq {self.seq}, "
            f"{self.type}): {self.problem}"
        )


def foreign_events(conn: sqlite3.Connection) -> Iterator[ForeignEvent]:
    """Every row of `events`, in order, that does not parse as its model."""
    rows = conn.execute("SELECT seq, id, session_id, session_seq, ts, type, data FROM events")
    for row in rows:
        try:
            row_to_event(row)
        except EventValidationError as error:
            yield ForeignEvent(row[0], row[2], row[3], row[5], str(error))


def non_utf8_events(conn: sqlite3.Connection) -> Iterator[ForeignEvent]:
    """Rows of `events` whose data is not UTF-8 (another program wrote the bytes; readers
    see U+FFFD in place of the bad ones: connection.text_of)."""
    rows = conn.execute("SELECT seq, session_id, session_seq, type, CAST(data AS BLOB) FROM events")
    for seq, session_id, session_seq, event_type, raw in rows:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            problem = f"data is not UTF-8 (byte {raw[error.start]:#04x} at {error.start})"
            yield ForeignEvent(seq, session_id, session_seq, event_type, problem)


def read_events(
    conn: sqlite3.Connection, session_id: str, *, after: int = 0, upto: int | None = None
) -> Iterator[Event]:
    """A session's events in order, optionally only session_seq in (after, upto].
    Rows another program wrote that do not parse are skipped with a logged warning."""
    rows = conn.execute(
        "SELECT seq, id, session_id, session_seq, ts, type, data FROM events "
        "WHERE session_id = ? AND session_seq > ? AND session_seq <= ? ORDER BY session_seq",
        (session_id, after, upto if upto is not None else 2**62),
    )
    for row in rows:
        try:
            yield row_to_event(row)
        except EventValidationError as error:
            foreign = ForeignEvent(row[0], row[2], row[3], row[5], str(error))
            log.warning("lh: skipped %s (written by another program)", foreign.describe())


def last_seq(conn: sqlite3.Connection, session_id: str) -> int:
    (value,) = conn.execute(
        "SELECT coalesce(max(session_seq), 0) FROM events WHERE session_id = ?", (session_id,)
    ).fetchone()
    return value


def fork(conn: sqlite3.Connection, session_id: str, at_session_seq: int | None = None) -> str:
    """Branch a session: copy its events 1..N into a new session, then append
    `session.forked`. The triggers build the new session's projections.

    A cut inside a tool call (N after the call's request, before its result)
    closes that call in the fork with a synthetic "interrupted" `tool.failed`,
    so the fork's conversation is one a provider accepts."""
    with write_transaction(conn):
        _see_virtual_tables(conn)
        end = last_seq(conn, session_id)
        if end == 0:
            raise StoreError(f"no session {session_id!r}: `lh sessions` lists them")
        at = end if at_session_seq is None else at_session_seq
        if not 1 <= at <= end:
            raise StoreError(f"--at must be between 1 and {end} for session {session_id}")
        new_id = new_ulid()
        try:
            conn.execute(
                "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
                "SELECT lh_ulid(), ?, session_seq, ts, type, data FROM events "
                "WHERE session_id = ? AND session_seq <= ? ORDER BY session_seq",
                (new_id, session_id, at),
            )
        except sqlite3.IntegrityError as error:  # e.g. a history an older lh wrote out of order
            raise StoreError(
                f"session {session_id} cannot be forked at {at}: its events break a rule "
                f"new events keep ({error}); fork it at an earlier event"
            ) from None
        append(conn, new_id, SessionForked(source_session_id=session_id, at_session_seq=at))
        for call_id, name in open_calls(conn, new_id):
            append(
                conn,
                new_id,
                ToolFailed(
                    call_id=call_id,
                    name=name,
                    error=f"interrupted: this fork of session {session_id} was cut at its "
                    f"event {at}, before this call's result",
                    kind="interrupted",
                ),
            )
    return new_id


def open_calls(conn: sqlite3.Connection, session_id: str) -> list[tuple[str, str]]:
    """(call id, tool name) of every tool call of the session without a result, in order,
    read from the events alone (the store knows no projection)."""
    requested = conn.execute(
        "SELECT json_extract(c.value, '$.id'), json_extract(c.value, '$.name') "
        "FROM events AS e, json_each(e.data, '$.tool_calls') AS c "
        "WHERE e.session_id = ? AND e.type = 'model.completed' ORDER BY e.session_seq, c.key",
        (session_id,),
    ).fetchall()
    answered = {
        call_id
        for (call_id,) in conn.execute(
            "SELECT json_extract(data, '$.call_id') FROM events "
            "WHERE session_id = ? AND type IN ('tool.completed', 'tool.failed')",
            (session_id,),
        )
    }
    return [(call_id, name) for call_id, name in requested if call_id not in answered]
