"""Export and import: a session's events as JSON lines, loaded back once (or as a copy).

Import keeps every event's and session's id, so an event is imported once: a
second import of the same file adds nothing. `--as-new` instead remaps every
session id (and the references between sessions inside payloads) and gives
every event a fresh id: a copy. Either way the triggers build the projections
as the rows go in, exactly as they did the first time.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .connection import StoreError, new_ulid, write_transaction
from .log import EventValidationError, encode_data, last_seq, read_events, validate_payload
from .text import lone_surrogate, storable
from .ts_sessions import Converted, convert, find_sessions, is_ts_record, parse_lines, read_lines

FORMAT = "leharness.events/1"
#: Payload fields that name another session.
SESSION_REFERENCES = ("parent_session_id", "child_session_id", "source_session_id")


def session_tree(conn: sqlite3.Connection, session_id: str, with_children: bool) -> list[str]:
    """The session and, if asked, its subagents' sessions, recursively (parents first)."""
    ids = [session_id]
    if with_children:
        for (child,) in conn.execute(
            "SELECT id FROM sessions WHERE parent_session_id = ? ORDER BY created_at", (session_id,)
        ):
            ids += session_tree(conn, child, True)
    return ids


def export_lines(conn: sqlite3.Connection, session_ids: Iterable[str]) -> Iterator[str]:
    for session_id in session_ids:
        for event in read_events(conn, session_id):
            yield json.dumps({"format": FORMAT, **event.as_record()}, ensure_ascii=False)


def read_import(path: Path, lines: Iterable[str] | None = None) -> Converted:
    """What `lh import` loads: our exported JSON lines (from `lines` when given, e.g.
    stdin), or sessions of the original TypeScript leharness (a `sessions/<id>/`
    folder, its events.jsonl, or a `sessions/` folder with several)."""
    if lines is not None:
        return Converted(parse_lines(lines, str(path)))
    if path.is_dir():
        return convert(find_sessions(path))
    records = read_lines(path)
    if records and is_ts_record(records[0]):
        return convert(find_sessions(path))
    return Converted(records)


@dataclass
class Imported:
    """What an import did: {session id in the file: its id here} for every session that
    got events, and the sessions whose every event was here already."""

    sessions: dict[str, str] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)
    events: int = 0


def import_records(
    conn: sqlite3.Connection, records: Iterable[dict[str, Any]], *, as_new: bool = False
) -> Imported:
    """Insert exported events, keeping their ids: an event already here (same id) is not
    imported again, so importing a file twice adds nothing the second time, and a later
    export of a session that grew adds only its new events. With `as_new`, every session
    and event gets a fresh id instead (a copy beside the original)."""
    rows = [_row(number, record) for number, record in enumerate(records, 1)]
    if not rows:
        raise StoreError("nothing to import: the file holds no events")
    if as_new:
        mapping = {old: new_ulid() for old in dict.fromkeys(row.session_id for row in rows)}
        rows = [row.renamed(mapping, new_ulid()) for row in rows]
        done = Imported(sessions=mapping)
    else:
        rows, done = _not_yet_here(conn, rows)
    for row in rows:  # references between sessions follow their (possibly new) ids
        row.validate(done.sessions)
    try:
        with write_transaction(conn):
            conn.executemany(
                "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [row.values() for row in rows],
            )
    except sqlite3.IntegrityError as error:
        raise StoreError(f"the file's events are not a whole, ordered log: {error}") from None
    done.events = len(rows)
    return done


@dataclass
class _Row:
    number: int  # line in the file, for errors
    id: str
    session_id: str
    session_seq: int
    ts: str
    type: str
    data: dict[str, Any]
    encoded: str = ""

    def renamed(self, mapping: dict[str, str], event_id: str) -> _Row:
        return dataclasses.replace(self, id=event_id, session_id=mapping[self.session_id])

    def validate(self, mapping: dict[str, str]) -> None:
        data = dict(self.data)
        for key in SESSION_REFERENCES:
            if data.get(key) in mapping:
                data[key] = mapping[data[key]]
        try:
            payload = validate_payload({**data, "type": self.type})
        except EventValidationError as error:
            raise StoreError(f"line {self.number}: {error}") from None
        self.encoded = encode_data(payload)

    def values(self) -> tuple[str, str, int, str, str, str]:
        return (self.id, self.session_id, self.session_seq, self.ts, self.type, self.encoded)


def _row(number: int, record: Any) -> _Row:
    try:
        data = dict(record.get("data") or {})
        event_id = str(record.get("id") or "") or new_ulid()  # no id: it cannot be matched
        row = _Row(
            number,
            event_id,
            str(record["session_id"]),
            int(record["session_seq"]),
            str(record["ts"]),
            str(record["type"]),
            data,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise StoreError(f"line {number}: not an exported event ({error})") from None
    # What no export of ours holds, and sqlite3 or the payload's JSON could not take
    # (they stopped lh import with OverflowError and UnicodeEncodeError).
    if not 1 <= row.session_seq < 2**62:
        raise StoreError(f"line {number}: not an exported event (session_seq {row.session_seq})")
    if not isinstance(record["ts"], str):
        raise StoreError(f"line {number}: not an exported event (ts {record['ts']!r})")
    found = lone_surrogate([row.id, row.session_id, row.ts, row.type, row.data])
    if found is not None:
        raise StoreError(
            f'line {number}: "{storable(found)}" holds a lone surrogate, which is no text an '
            "event can hold"
        )
    return row


def _not_yet_here(conn: sqlite3.Connection, rows: list[_Row]) -> tuple[list[_Row], Imported]:
    """The rows whose event is not in the database yet, per session; a StoreError when a
    session here and the same session in the file went different ways."""
    by_session: dict[str, list[_Row]] = {}
    for row in rows:
        by_session.setdefault(row.session_id, []).append(row)
    done, new_rows = Imported(), []
    for session_id, theirs in by_session.items():
        here = _events_here(conn, [row.id for row in theirs])
        present = [row for row in theirs if row.id in here]
        for row in present:
            if here[row.id] != (row.session_id, row.session_seq):
                raise StoreError(
                    f"line {row.number}: event {row.id} is here already as event "
                    f"{here[row.id][1]} of session {here[row.id][0]}; `lh import --as-new` "
                    "imports the file as new sessions"
                )
        rest = theirs[len(present) :]
        if present != theirs[: len(present)] or (
            rest and last_seq(conn, session_id) != len(present)
        ):
            raise StoreError(
                f"session {session_id} is here already with other events than the file's; "
                "`lh import --as-new` imports the file as new sessions"
            )
        if rest:
            done.sessions[session_id] = session_id
            new_rows += rest
        else:
            done.already.append(session_id)
    return new_rows, done


def _events_here(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(ids), 500):  # well under SQLite's limit on parameters
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for event_id, session_id, seq in conn.execute(
            f"SELECT id, session_id, session_seq FROM events WHERE id IN ({marks})", chunk
        ):
            found[event_id] = (session_id, seq)
    return found
