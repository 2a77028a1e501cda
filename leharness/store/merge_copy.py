"""The fast path of `lh merge`: a file's whole new sessions copied together with the
projection rows its own triggers built, instead of replaying its events through ours.

It applies only when those rows are what our triggers would make of the same events
here: both files define the same projection tables, indexes and triggers (same SQL),
every projection row is keyed by its session or by its event's global seq
(`SEQ_KEYED`), and the file's events have global seqs without gaps. The events get the
next seqs here in the file's order, so rows keyed by seq move by one offset, and each
full-text index then takes exactly its content table's new rows, as the triggers would
have indexed them. The copy runs with this connection's triggers off.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from .reinstall import _fts_indexes
from .schema import SOURCE_TABLES, projection_objects, projection_tables, shadow_names
from .triggers import Switch, triggers_off

EVENT_COLUMNS = "id, session_id, session_seq, ts, type, data"

# A failed copy ends the file's whole transaction (the merge refuses the file anyway):
# with OR ROLLBACK, SQLite keeps no statement journal to undo just the statement,
# which for a 1,000-event file is ~120 pages written to a temporary file and deleted.
INSERT = "INSERT OR ROLLBACK"

# Projection tables keyed by the event's own global `seq` (search.sql's `conversation`,
# the rowid of its FTS index). A trigger that writes NEW.seq into any other table makes
# the fast path stand aside (see _seq_only_in): its rows could not be shifted.
SEQ_KEYED = frozenset({"conversation"})
_NEW_SEQ = re.compile(r"\bNEW\.seq\b", re.I)
_INSERT_INTO = re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+[\"\[]?(\w+)", re.I)

SchemaRow = tuple[str, str, str]  # (type, name, sql)

# The projection tables, their indexes and the proj_ triggers of a file, as one string:
# SQLite builds it, so a file's ~35 KB of schema SQL never becomes Python rows (~1 ms).
_ROW, _FIELD = "\x1e", "\x1f"
_DERIVED = (
    "SELECT group_concat(type || char(31) || name || char(31) || sql, char(30)) FROM ("
    "SELECT type, name, sql FROM {schema}.sqlite_master "
    "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND ("
    "(type = 'trigger' AND name LIKE 'proj_%') OR "
    "(type IN ('table', 'index') AND tbl_name NOT IN ({sources}))) ORDER BY type, name)"
)


@dataclass(frozen=True)
class FileSchema:
    """What one read of a file's sqlite_master tells the merge."""

    events_sql: str | None  # the events table's CREATE statement (None: no such table)
    derived: str  # projection tables, their indexes and triggers (_DERIVED)

    def rows(self) -> list[SchemaRow]:
        rows = (row.split(_FIELD) for row in self.derived.split(_ROW) if row)
        return [(kind, name, sql) for kind, name, sql in rows]


def read_schema(conn: sqlite3.Connection, schema: str) -> FileSchema:
    """One statement: a file compared with ours costs ~50 µs, not a read of its schema."""
    sources = ", ".join(f"'{name}'" for name in sorted(SOURCE_TABLES))
    events_sql, derived = conn.execute(
        f"SELECT (SELECT sql FROM {schema}.sqlite_master WHERE type = 'table' "
        f"AND name = 'events'), ({_DERIVED.format(schema=schema, sources=sources)})"
    ).fetchone()
    return FileSchema(events_sql, derived or "")


@dataclass(frozen=True)
class SourceCounts:
    """What the merge's plan and copy read of the source file alone, counted by the
    stager on its own thread (`count_source`): the merge thread then only looks up
    this database's side."""

    sessions: tuple[tuple[str, int, bool], ...]  # (session id, last session_seq, 1..n gapless)
    low: int | None  # the file's lowest and highest global seq
    high: int | None
    filled: frozenset[str]  # the tables with rows


def count_source(conn: sqlite3.Connection, schema: str) -> SourceCounts:
    """The counts of `schema`'s events and which of its tables have rows."""
    sessions = conn.execute(
        "SELECT session_id, max(session_seq), count(*) = max(session_seq) "
        f"AND min(session_seq) = 1 FROM {schema}.events GROUP BY session_id"
    ).fetchall()
    names = [
        name
        for (name,) in conn.execute(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND sql NOT LIKE "
            "'CREATE VIRTUAL%'"
        )
    ]
    # One statement for the seq range and every table's EXISTS (not one per table).
    exists = "".join(f", EXISTS (SELECT 1 FROM {schema}.{_quoted(name)})" for name in names)
    low, high, *has_rows = conn.execute(
        f"SELECT (SELECT min(seq) FROM {schema}.events), "
        f"(SELECT max(seq) FROM {schema}.events){exists}"
    ).fetchone()
    filled = frozenset(name for name, has in zip(names, has_rows, strict=True) if has)
    return SourceCounts(
        tuple((sid, top, bool(gapless)) for sid, top, gapless in sessions), low, high, filled
    )


class FastCopy:
    """Decides, once per distinct source schema, whether its rows can be copied, and
    copies them with statements prepared once for the whole merge."""

    def __init__(self, conn: sqlite3.Connection, switch: Switch | None) -> None:
        self.conn = conn
        self._switch = switch
        self._ours = read_schema(conn, "main")
        self._verdicts: dict[str, bool] = {}
        # ({table: its INSERT … SELECT}, the query run before them), made on first use
        self._prepared: tuple[dict[str, str], str] | None = None
        # {FTS index: its content table}: an index is copied when its content has rows
        self._contents = {name: content for name, _columns, content in _fts_indexes()}
        # The triggers and CHECKs a copy left off for the next one (see copy's `hold`)
        self._held: ExitStack | None = None

    def applies(self, theirs: FileSchema) -> bool:
        if theirs.derived not in self._verdicts:
            self._verdicts[theirs.derived] = self._same_as_ours(theirs.derived)
        return self._verdicts[theirs.derived]

    def copy(
        self, total: int, checked: bool, counts: SourceCounts | None = None, hold: bool = False
    ) -> int | None:
        """Copy the attached file's events and projection rows; the events added, or None
        (nothing done) when the file's global seqs have gaps. `checked`: the file's
        events table is ours, so its CHECKs held for every row it has. `counts`: the
        file's side counted already (by the stager). `hold`: leave this connection's
        triggers and CHECKs off after the copy, for the next file's (until `release`).

        Turning either on or off expires every statement the connection has prepared:
        toggled around each file's copy, they made SQLite compile the copies, the plan's
        queries and the next file's statements again for every file (~1 ms of it)."""
        conn = self.conn
        if self._prepared is None:
            self._prepared = self._statements()
        copies, before = self._prepared
        if counts is None:
            # One statement: the file's seq range, the next seq here, which tables have rows.
            low, high, first, *present = conn.execute(before).fetchone()
        else:
            low, high = counts.low, counts.high
            (first,) = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM main.events").fetchone()
            present = [self._contents.get(table, table) in counts.filled for table in copies]
        if low is None or high is None:
            return None
        if total == 0 or high - low + 1 != total:
            return None
        shift = {"offset": first - low, "first": first}
        if hold and checked and self._switch is not None:
            if self._held is None:
                self._held = ExitStack()  # before entering: release() undoes what was done
                self._held.enter_context(_no_triggers(conn, self._switch))
                self._held.enter_context(_no_checks(conn, checked))
            return self._copy_rows(present, copies, shift)
        self.release()
        with _no_triggers(conn, self._switch), _no_checks(conn, checked):
            return self._copy_rows(present, copies, shift)

    def release(self) -> None:
        """This connection's triggers and CHECKs on again, if a copy left them off."""
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def _copy_rows(self, present: list[bool], copies: dict[str, str], shift: dict) -> int:
        added = self.conn.execute(
            f"{INSERT} INTO main.events ({EVENT_COLUMNS}) "
            f"SELECT {EVENT_COLUMNS} FROM src.events ORDER BY seq"
        ).rowcount
        for has_rows, sql in zip(present, copies.values(), strict=True):
            if has_rows:
                self.conn.execute(sql, shift)
        return added

    def _same_as_ours(self, theirs: str) -> bool:
        if self._ours.derived != theirs:
            return False
        indexes = {name: content for name, _columns, content in _fts_indexes()}
        shadows = {shadow for name in indexes for shadow in shadow_names(name)}
        copied = {name for kind, name in projection_objects() if kind == "table"} - shadows
        for kind, name, sql in self._ours.rows():
            if kind == "trigger" and not _seq_only_in(sql, SEQ_KEYED | set(indexes)):
                return False
            if kind != "table" or name not in copied:
                continue  # lh_meta, say, is the same in both files and not copied
            if sql.upper().startswith("CREATE VIRTUAL"):
                if indexes.get(name) not in SEQ_KEYED:
                    return False  # a virtual table we cannot refill from a shifted table
                continue
            columns = {row[1] for row in self.conn.execute(f'PRAGMA main.table_info("{name}")')}
            if not {"session_id", "id"} & columns and name not in SEQ_KEYED:
                return False
        return True

    def _statements(self) -> tuple[dict[str, str], str]:
        """({table: the INSERT … SELECT that copies its rows}, the query giving the file's
        lowest and highest seq, the next seq here, and which tables have rows in the
        file). FTS indexes come last: they read their content table's new rows here."""
        conn = self.conn
        indexes = {name: (columns, content) for name, columns, content in _fts_indexes()}
        copies: dict[str, str] = {}
        checks: list[str] = []
        for table in projection_tables(conn):
            if table in indexes:
                continue
            names = [row[1] for row in conn.execute(f'PRAGMA main.table_info("{table}")')]
            columns = ", ".join(f'"{c}"' for c in names)
            picked = columns
            if table in SEQ_KEYED:
                picked = ", ".join('"seq" + :offset' if c == "seq" else f'"{c}"' for c in names)
            copies[table] = (
                f'{INSERT} INTO main."{table}" ({columns}) SELECT {picked} FROM src."{table}"'
            )
            checks.append(f'EXISTS (SELECT 1 FROM src."{table}")')
        for name, (indexed, content) in indexes.items():
            if content not in copies:
                continue
            listed = ", ".join(f'"{c}"' for c in indexed)
            copies[name] = (
                f'{INSERT} INTO main."{name}" (rowid, {listed}) '
                f'SELECT rowid, {listed} FROM main."{content}" WHERE rowid >= :first'
            )
            checks.append(f'EXISTS (SELECT 1 FROM src."{content}")')
        return copies, (
            "SELECT (SELECT min(seq) FROM src.events), (SELECT max(seq) FROM src.events), "
            "(SELECT coalesce(max(seq), 0) + 1 FROM main.events), " + ", ".join(checks)
        )


def _quoted(name: str) -> str:
    """A source file's table name as an SQL identifier, whatever characters it has."""
    return '"' + name.replace('"', '""') + '"'


def _seq_only_in(trigger_sql: str, tables: AbstractSet[str]) -> bool:
    """Whether a trigger that reads NEW.seq writes only into `tables`."""
    if not _NEW_SEQ.search(trigger_sql):
        return True
    return set(_INSERT_INTO.findall(trigger_sql)) <= tables


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
