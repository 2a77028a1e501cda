"""Merging other `sessions.db` files into this one, keeping session and event ids.

`lh merge` brings a fleet's histories (every trial of a Harbor job has its own
database) into one file. Each source file is copied in one transaction: its
events go in through the ordinary insert, so the projection triggers build the
rows as for any append. Merging is idempotent: a session already here with the
same events adds nothing, one that grew since adds only its new tail, and one
whose events differ from ours (same session id, different event ids) is a
conflict and the whole file is refused. The source file is ATTACHed and copied
with INSERT … SELECT, so memory stays flat in the number and size of files.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .connection import DB_FILENAME, StoreError, check_is_sqlite, write_transaction
from .reinstall import _fts_indexes
from .schema import (
    SCHEMA_VERSION,
    SOURCE_TABLES,
    projection_objects,
    projection_tables,
    shadow_names,
)
from .trials import TrialRow, find_trial_results, read_trial, record_trial, trial_of
from .triggers import Switch, trigger_switch, triggers_off

_EVENT_COLUMNS = "id, session_id, session_seq, ts, type, data"

# Projection tables keyed by the event's own global `seq` (search.sql's `conversation`,
# the rowid of its FTS index). An event gets a new seq here, so a copy of their rows
# shifts `seq` by the same amount as the events'; a trigger that writes NEW.seq into
# any other table makes the fast path stand aside (see _seq_only_in).
_SEQ_KEYED = frozenset({"conversation"})
_NEW_SEQ = re.compile(r"\bNEW\.seq\b", re.I)
_INSERT_INTO = re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+[\"\[]?(\w+)", re.I)


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


def merge_database(conn: sqlite3.Connection, path: Path) -> Merged:
    """Copy the events of the database at `path` that this one lacks, in one transaction,
    and link its sessions to the Harbor trial whose folder holds it (if any)."""
    return Merger(conn).merge(path)


class Merger:
    """Merges files one after the other into `conn`, remembering what they share: the
    projection column lists and, per schema of a source file, whether its projection
    rows can be copied (a fleet's files all have the same schema: one comparison)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._switch = trigger_switch(conn)
        self._copyable: dict[tuple[tuple[str, str, str], ...], bool] = {}
        self._ours: list[tuple[str, str, str]] | None = None
        self._events_sql = _events_sql(conn, "main")
        self._checked = False  # whether the attached file's CHECKs are ours
        self._copies: dict[str, str] | None = None

    def merge(self, path: Path) -> Merged:
        result = Merged(path)
        trial = trial_of(path)
        _check_source(path)
        self.conn.execute("ATTACH DATABASE ? AS src", (str(path),))
        try:
            self._merge_attached(path, result, trial)
        except sqlite3.IntegrityError as error:  # an event id already here in another session
            raise MergeConflict(
                f"{path}: its events clash with events already here ({error}); "
                "nothing of this file was merged"
            ) from None
        finally:
            self.conn.execute("DETACH DATABASE src")
        return result

    def _merge_attached(self, path: Path, result: Merged, trial: TrialRow | None) -> None:
        conn = self.conn
        with write_transaction(conn):
            _check_attached(conn, path)
            have, contiguous = _plan(conn, path, result)
            if have and contiguous and self._can_copy_projections(result):
                self._copy_with_projections(result)
            elif have:
                _copy_events(conn, have, result)
            if trial is not None:
                record_trial(conn, trial)
                conn.execute(
                    "INSERT OR REPLACE INTO trial_sessions (session_id, trial_id) "
                    "SELECT DISTINCT session_id, ? FROM src.events",
                    (trial.trial_id,),
                )
                result.trial = trial.trial

    def _can_copy_projections(self, result: Merged) -> bool:
        """Whether the source's projection rows are exactly what our triggers would make
        of its events: every session is new here, both files define the same derived
        tables, indexes and triggers (same SQL), every projection table is a plain table
        keyed by session (or by the event's seq, which the copy shifts, with its full-text
        index filled here), and the file's events are numbered without gaps. The schema is
        compared once per distinct source schema."""
        if result.sessions_extended or result.sessions_unchanged:
            return False  # the file's rows of those sessions are here already
        theirs = tuple(_derived_schema(self.conn, "src"))
        self._checked = _events_sql(self.conn, "src") == self._events_sql
        if theirs not in self._copyable:
            self._copyable[theirs] = self._same_as_ours(list(theirs))
        return self._copyable[theirs] and _gapless(self.conn)

    def _same_as_ours(self, theirs: list[tuple[str, str, str]]) -> bool:
        if self._ours is None:
            self._ours = _derived_schema(self.conn, "main")
        if self._ours != theirs:
            return False
        indexes = {name: content for name, _columns, content in _fts_indexes()}
        shadows = {shadow for name in indexes for shadow in shadow_names(name)}
        copied = {name for kind, name in projection_objects() if kind == "table"} - shadows
        for kind, name, sql in self._ours:
            if kind == "trigger" and not _seq_only_in(sql, _SEQ_KEYED | set(indexes)):
                return False
            if kind != "table" or name not in copied:
                continue  # lh_meta, say, is the same in both files and not copied
            if sql.upper().startswith("CREATE VIRTUAL"):
                if indexes.get(name) not in _SEQ_KEYED:
                    return False  # a virtual table we cannot refill from a shifted table
                continue
            columns = {row[1] for row in self.conn.execute(f'PRAGMA main.table_info("{name}")')}
            if not {"session_id", "id"} & columns and name not in _SEQ_KEYED:
                return False
        return True

    def _copy_with_projections(self, result: Merged) -> None:
        """Whole new sessions: the events and the projection rows the same triggers built
        from them in the source file, with this connection's triggers off for the copy
        (other connections keep theirs; the source's sequences were checked contiguous,
        which the events guard would have checked). The events get the next global seqs
        here, in the source's order: rows keyed by the event's seq move by the same
        offset, and the full-text indexes take exactly those new rows, as the triggers
        would have indexed them. Replaying 1,000 events through the projections costs
        ~30 ms of CPU; this a few."""
        conn = self.conn
        if self._copies is None:
            self._copies = self._copy_statements()
        (first,) = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM main.events").fetchone()
        (low,) = conn.execute("SELECT min(seq) FROM src.events").fetchone()
        with _no_triggers(conn, self._switch), _no_checks(conn, self._checked):
            result.events_added += conn.execute(
                f"INSERT INTO main.events ({_EVENT_COLUMNS}) "
                f"SELECT {_EVENT_COLUMNS} FROM src.events ORDER BY seq"
            ).rowcount
            shift = {"offset": first - (low or 0), "first": first}
            for sql in self._copies.values():
                conn.execute(sql, shift)

    def _copy_statements(self) -> dict[str, str]:
        """table: the INSERT … SELECT that copies its rows, for every projection table
        (FTS indexes last: they read their content table's new rows)."""
        conn = self.conn
        indexes = {name: (columns, content) for name, columns, content in _fts_indexes()}
        plain: dict[str, str] = {}
        for table in projection_tables(conn):
            if table in indexes:
                continue
            names = [row[1] for row in conn.execute(f'PRAGMA main.table_info("{table}")')]
            columns = ", ".join(f'"{c}"' for c in names)
            picked = columns
            if table in _SEQ_KEYED:
                picked = ", ".join('"seq" + :offset' if c == "seq" else f'"{c}"' for c in names)
            plain[table] = (
                f'INSERT INTO main."{table}" ({columns}) SELECT {picked} FROM src."{table}"'
            )
        for name, (columns, content) in indexes.items():
            listed = ", ".join(f'"{c}"' for c in columns)
            plain[name] = (
                f'INSERT INTO main."{name}" (rowid, {listed}) '
                f'SELECT rowid, {listed} FROM main."{content}" WHERE rowid >= :first'
            )
        return plain


@contextmanager
def _no_checks(conn: sqlite3.Connection, checked: bool) -> Iterator[None]:
    """CHECK constraints off for a copy from a file whose events table is ours (same
    SQL, so its CHECKs held for every row it has; its projection tables were compared
    before): json_valid on every event's data costs ~0.5 ms of CPU a file."""
    if not checked:
        yield
        return
    conn.execute("PRAGMA ignore_check_constraints = ON")
    try:
        yield
    finally:
        conn.execute("PRAGMA ignore_check_constraints = OFF")


def _gapless(conn: sqlite3.Connection) -> bool:
    """Whether the file's events have the global seqs min..max without a gap (so each
    gets the seq here that its position in the copy gives it)."""
    (count, low, high) = conn.execute(
        "SELECT count(*), min(seq), max(seq) FROM src.events"
    ).fetchone()
    return count == 0 or high - low + 1 == count


def _seq_only_in(trigger_sql: str, tables: set[str]) -> bool:
    """Whether a trigger that reads NEW.seq writes only into `tables`."""
    if not _NEW_SEQ.search(trigger_sql):
        return True
    return set(_INSERT_INTO.findall(trigger_sql)) <= tables


def _events_sql(conn: sqlite3.Connection, schema: str) -> str | None:
    row = conn.execute(
        f"SELECT sql FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    return row[0] if row else None


@contextmanager
def _no_triggers(conn: sqlite3.Connection, switch: Switch | None) -> Iterator[None]:
    """This connection's triggers off (see triggers.py); where that switch is missing,
    the projection triggers are dropped and re-created inside the caller's transaction
    (it holds the write lock; readers see the schema only as committed), which costs
    ~12 ms a file more."""
    if switch is not None:
        with triggers_off(switch):
            yield
        return
    triggers = conn.execute(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND name LIKE 'proj_%'"
    ).fetchall()
    for name, _sql in triggers:
        conn.execute(f'DROP TRIGGER main."{name}"')
    yield
    for _name, sql in triggers:
        conn.execute(sql)


def merge_trials(conn: sqlite3.Connection, paths: Iterable[Path]) -> int:
    """Record every trial whose result.json is under the given paths (trials without a
    database too, e.g. the oracle's); return how many."""
    rows = [row for file in find_trial_results(paths) if (row := read_trial(file)) is not None]
    with write_transaction(conn):
        for row in rows:
            record_trial(conn, row)
    return len(rows)


def _plan(conn: sqlite3.Connection, path: Path, result: Merged) -> tuple[dict[str, int], bool]:
    """({session id: how many of its events are here already} for the sessions that
    have events to add, whether every session of the file numbers its events 1..n
    without gaps); raises MergeConflict when a session's events differ. One indexed
    query gives every session's count here and in the file."""
    todo: dict[str, int] = {}
    contiguous = True
    counts = conn.execute(
        "SELECT s.session_id, s.top, s.n = s.top AND s.low = 1, "
        "(SELECT coalesce(max(m.session_seq), 0) FROM main.events AS m "
        "WHERE m.session_id = s.session_id) "
        "FROM (SELECT session_id, max(session_seq) AS top, min(session_seq) AS low, "
        "count(*) AS n FROM src.events GROUP BY session_id) AS s"
    ).fetchall()
    for session_id, count, gapless, here in counts:
        contiguous = contiguous and bool(gapless)
        if here == 0:
            result.sessions_added += 1
            todo[session_id] = 0
            continue
        overlap = min(here, count)
        ours, theirs = (
            _ids(conn, "main", session_id, overlap),
            _ids(conn, "src", session_id, overlap),
        )
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
    return todo, contiguous


def _ids(conn: sqlite3.Connection, schema: str, session_id: str, upto: int) -> list[str]:
    return [
        event_id
        for (event_id,) in conn.execute(
            f"SELECT id FROM {schema}.events WHERE session_id = ? AND session_seq <= ? "
            "ORDER BY session_seq",
            (session_id, upto),
        )
    ]


def _first_difference(ours: list[str], theirs: list[str]) -> int:
    for number, (a, b) in enumerate(zip(ours, theirs, strict=False), 1):
        if a != b:
            return number
    return min(len(ours), len(theirs)) + 1


def _copy_events(conn: sqlite3.Connection, have: dict[str, int], result: Merged) -> None:
    """The source's events this database lacks, in the source's global order (a
    subagent's events after the parent's that started it), through the triggers."""
    conn.execute("CREATE TEMP TABLE merge_todo (session_id TEXT PRIMARY KEY, start INTEGER)")
    try:
        conn.executemany("INSERT INTO temp.merge_todo VALUES (?, ?)", have.items())
        result.events_added += conn.execute(
            f"INSERT INTO main.events ({_EVENT_COLUMNS}) "
            f"SELECT {_qualified('e')} FROM src.events AS e "
            "JOIN temp.merge_todo AS todo ON todo.session_id = e.session_id "
            "WHERE e.session_seq > todo.start ORDER BY e.seq"
        ).rowcount
    finally:
        conn.execute("DROP TABLE temp.merge_todo")


def _derived_schema(conn: sqlite3.Connection, schema: str) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every projection table, its indexes and the projection
    triggers."""
    sources = ", ".join(f"'{name}'" for name in sorted(SOURCE_TABLES))
    return conn.execute(
        f"SELECT type, name, sql FROM {schema}.sqlite_master "
        "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND ("
        "(type = 'trigger' AND name LIKE 'proj_%') OR "
        f"(type IN ('table', 'index') AND tbl_name NOT IN ({sources}))) ORDER BY type, name"
    ).fetchall()


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in _EVENT_COLUMNS.split(","))


def _check_source(path: Path) -> None:
    """Before attaching: a SQLite file (16 bytes read), not this database itself."""
    try:
        check_is_sqlite(path)
    except StoreError as error:
        raise StoreError(f"{path}: {error}") from None
    if not path.is_file():
        raise StoreError(f"{path}: no such file")


def _check_attached(conn: sqlite3.Connection, path: Path) -> None:
    try:
        version = conn.execute("PRAGMA src.user_version").fetchone()[0]
        has_events = conn.execute(
            "SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is not a usable SQLite database ({error})") from None
    if not has_events:
        raise StoreError(f"{path} is not a leharness database (no events table)")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this leharness "
            f"understands ({SCHEMA_VERSION}); upgrade leharness to merge it"
        )
