"""Merging other `sessions.db` files into this one, keeping session and event ids.

`lh merge` brings a fleet's histories (every trial of a Harbor job has its own
database) into one file. Each source file is copied in one transaction: its
events go in through the ordinary insert, so the projection triggers build the
rows as for any append. Merging is idempotent: a session already here with the
same events adds nothing, one that grew since adds only its new tail, and one
whose events differ from ours (same session id, different event ids) is a
conflict and the whole file is refused. Rows stream from the source file, so
memory stays flat in the number and size of files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .connection import DB_FILENAME, StoreError, connect_readonly, write_transaction
from .schema import SCHEMA_VERSION, user_version
from .trials import TrialRow, find_trial_results, read_trial, record_trial, trial_folder

_EVENT_COLUMNS = "id, session_id, session_seq, ts, type, data"


class MergeConflict(StoreError):
    """A session in the source file has other events than the session of that id here."""


@dataclass
class Merged:
    """What merging one file did."""

    path: Path
    sessions_added: int = 0
    sessions_extended: int = 0
    sessions_unchanged: int = 0
    events_added: int = 0
    trial: str | None = None


def find_databases(paths: Iterable[Path]) -> list[Path]:
    """Every `sessions.db` under the given folders, and the given files themselves,
    sorted and without duplicates."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p.resolve() for p in path.rglob(DB_FILENAME) if p.is_file())
        elif path.exists():
            found.add(path.resolve())
        else:
            raise StoreError(f"{path}: no such file or folder")
    return sorted(found)


def source_event_count(path: Path) -> int:
    """How many events the file holds (for a progress bar); 0 if it has none."""
    with _open_source(path) as source:
        return source.execute("SELECT count(*) FROM events").fetchone()[0]


def merge_database(conn: sqlite3.Connection, path: Path) -> Merged:
    """Copy the events of the database at `path` that this one lacks, in one transaction,
    and link its sessions to the Harbor trial whose folder holds it (if any)."""
    result = Merged(path)
    trial = _trial_of(path)
    with _open_source(path) as source, write_transaction(conn):
        have = _plan(conn, source, path, result)
        if have:
            conn.executemany(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                _new_rows(source, have, result),
            )
        if trial is not None:
            record_trial(conn, trial)
            sessions = [sid for (sid,) in source.execute("SELECT DISTINCT session_id FROM events")]
            conn.executemany(
                "INSERT OR REPLACE INTO trial_sessions (session_id, trial_id) VALUES (?, ?)",
                ((sid, trial.trial_id) for sid in sessions),
            )
            result.trial = trial.trial
    return result


def merge_trials(conn: sqlite3.Connection, paths: Iterable[Path]) -> int:
    """Record every trial whose result.json is under the given paths (trials without a
    database too, e.g. the oracle's); return how many."""
    rows = [row for file in find_trial_results(paths) if (row := read_trial(file)) is not None]
    with write_transaction(conn):
        for row in rows:
            record_trial(conn, row)
    return len(rows)


def _plan(
    conn: sqlite3.Connection, source: sqlite3.Connection, path: Path, result: Merged
) -> dict[str, int]:
    """{session id: how many of its events are here already} for the sessions that
    have events to add; raises MergeConflict when a session's events differ."""
    todo: dict[str, int] = {}
    counts = source.execute("SELECT session_id, max(session_seq) FROM events GROUP BY session_id")
    for session_id, count in counts:
        here = conn.execute(
            "SELECT coalesce(max(session_seq), 0) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        if here == 0:
            result.sessions_added += 1
            todo[session_id] = 0
            continue
        overlap = min(here, count)
        ours = _ids(conn, session_id, overlap)
        theirs = _ids(source, session_id, overlap)
        if ours != theirs or here > count:
            raise MergeConflict(
                f"{path}: session {session_id} is already here with other events "
                f"({here} here, {count} in the file, first difference at event "
                f"{_first_difference(ours, theirs)}); nothing of this file was merged"
            )
        if count > here:
            result.sessions_extended += 1
            todo[session_id] = here
        else:
            result.sessions_unchanged += 1
    return todo


def _ids(conn: sqlite3.Connection, session_id: str, upto: int) -> list[str]:
    return [
        event_id
        for (event_id,) in conn.execute(
            "SELECT id FROM events WHERE session_id = ? AND session_seq <= ? ORDER BY session_seq",
            (session_id, upto),
        )
    ]


def _first_difference(ours: list[str], theirs: list[str]) -> int:
    for number, (a, b) in enumerate(zip(ours, theirs, strict=False), 1):
        if a != b:
            return number
    return min(len(ours), len(theirs)) + 1


def _new_rows(source: sqlite3.Connection, have: dict[str, int], result: Merged) -> Iterator[tuple]:
    """The source's events this database lacks, in the source's global order (a
    subagent's events after the parent's that started it, as they were appended)."""
    cursor = source.execute(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY seq")
    cursor.arraysize = 1000
    while batch := cursor.fetchmany():
        for row in batch:
            start = have.get(row[1])
            if start is not None and row[2] > start:
                result.events_added += 1
                yield row


class _open_source:
    """A read-only connection to a source file, checked to be a leharness database."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            conn = connect_readonly(self.path)
        except StoreError as error:
            raise StoreError(f"{self.path}: {error}") from None
        self.conn = conn
        try:
            version = user_version(conn)
            has_events = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
        except sqlite3.DatabaseError as error:
            conn.close()
            raise StoreError(f"{self.path} is not a usable SQLite database ({error})") from None
        if not has_events:
            conn.close()
            raise StoreError(f"{self.path} is not a leharness database (no events table)")
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this leharness "
                f"understands ({SCHEMA_VERSION}); upgrade leharness to merge it"
            )
        conn.row_factory = None
        return conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _trial_of(path: Path) -> TrialRow | None:
    folder = trial_folder(path)
    return read_trial(folder / "result.json") if folder else None
