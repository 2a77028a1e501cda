"""Export and import: a session's events as JSON lines, loaded back as new sessions.

Import remaps every session id (and the references between sessions inside
payloads) to fresh ids and gives every event a fresh id; the triggers build
the projections as the rows go in, exactly as they did the first time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .connection import StoreError, new_ulid, write_transaction
from .log import EventValidationError, encode_data, read_events, validate_payload
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


def import_records(conn: sqlite3.Connection, records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Insert exported events as new sessions; return {old session id: new session id}."""
    records = list(records)
    # First pass: a new id for every session in the file, so references between
    # them remap whatever order they come in.
    mapping = {
        r["session_id"]: new_ulid() for r in records if isinstance(r, dict) and "session_id" in r
    }
    rows = []
    for number, record in enumerate(records, 1):
        try:
            old = record["session_id"]
            data = dict(record.get("data") or {})
            event_type = record["type"]
            seq, ts = int(record["session_seq"]), str(record["ts"])
        except (KeyError, TypeError, ValueError) as error:
            raise StoreError(f"line {number}: not an exported event ({error})") from None
        new = mapping[old]
        for key in SESSION_REFERENCES:
            if data.get(key) in mapping:
                data[key] = mapping[data[key]]
        try:
            payload = validate_payload({**data, "type": event_type})
        except EventValidationError as error:
            raise StoreError(f"line {number}: {error}") from None
        rows.append((new_ulid(), new, seq, ts, event_type, encode_data(payload)))
    if not rows:
        raise StoreError("nothing to import: the file holds no events")
    try:
        with write_transaction(conn):
            conn.executemany(
                "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    except sqlite3.IntegrityError as error:
        raise StoreError(f"the file's events are not a whole, ordered log: {error}") from None
    return mapping
