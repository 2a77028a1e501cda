"""Reinstalling the projections of a big file while other `lh` processes keep writing.

A rebuild of 1M events through the triggers takes about a minute; done in one
transaction it holds the write lock all that time, and every other writer
waits (or gives up after busy_timeout). Here the new projection tables are
built beside the old ones, under the prefix `lh_next_`, from the events in
chunks: each chunk is its own short BEGIN IMMEDIATE (sized to take about
`chunk_s`), and between chunks other writers append as usual (their events go
through the old triggers into the old tables, and a later chunk replays them
into the new ones: seq order is commit order). A last short transaction
replays what is left, swaps the tables (renames, O(schema)), and creates the
new triggers and views; the old tables are then emptied in chunks and dropped.

Index names cannot be changed with ALTER, so the swap renames them in
`sqlite_master` (writable_schema) inside that same transaction, whose other DDL
bumps the schema cookie: every connection reloads the schema, and this module's
own connection is closed right after. One builder at a time: an flock on
`sessions.db.rebuild.lock` (a separate file: the database file itself is never
opened with anything but SQLite).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .connection import connect, sql_statements, write_transaction
from .schema import (
    _TRIGGER_HEAD,
    GUARD_PREFIX,
    _ours_in,
    fresh_install,
    installed_hash,
    projection_hash,
    projection_objects,
    projection_sql,
    record_installed,
    shadow_names,
)

NEXT = "lh_next_"
OLD = "lh_old_"
_INDEX_HEAD = re.compile(r'^CREATE (UNIQUE )?INDEX "?(\w+)"? ON ', re.I)
_CREATES = re.compile(r"^\s*CREATE\s+(TRIGGER|VIEW)\b", re.I)


@dataclass
class Progress:
    """What a chunked reinstall did: events replayed, chunks, the longest lock held (s)."""

    events: int = 0
    chunks: int = 0
    longest_lock_s: float = 0.0
    longest_by_phase: dict[str, float] = field(default_factory=dict)
    replayed_seq: int = 0  # the last event seq replayed into the lh_next_ tables

    def held(self, phase: str, seconds: float) -> None:
        self.chunks += 1
        self.longest_lock_s = max(self.longest_lock_s, seconds)
        self.longest_by_phase[phase] = max(self.longest_by_phase.get(phase, 0.0), seconds)


def reinstall_in_chunks(
    path: Path, *, chunk_s: float = 0.1, force: bool = False, progress: Progress | None = None
) -> Progress:
    """Bring the projections of the file at `path` to the current SQL without holding the
    write lock for more than about `chunk_s` at a time. Does nothing when they already are
    (unless `force`). The schema version must already be current."""
    progress = progress or Progress()
    with _one_builder(path):
        conn = connect(path)
        try:
            if force or installed_hash(conn) != projection_hash():
                _build_beside(conn, chunk_s, progress)
                upto = _swap(conn, progress)
                _fill_fts(conn, upto, chunk_s, progress)
        finally:
            conn.close()
        conn = connect(path)  # a fresh view of the schema the swap rewrote
        try:
            _drop_old(conn, chunk_s, progress)
        finally:
            conn.close()
    return progress


def leftovers(conn: sqlite3.Connection) -> list[str]:
    """Tables an interrupted reinstall left behind (lh_next_*, lh_old_*)."""
    return [
        name
        for kind, name in _objects_named(conn, NEXT) + _objects_named(conn, OLD)
        if kind == "table"
    ]


def drop_leftovers(path: Path, chunk_s: float = 0.1) -> None:
    """Remove what an interrupted reinstall left, in short transactions (`lh doctor
    --repair`; the next reinstall would do it too)."""
    with _one_builder(path):
        conn = connect(path)
        try:
            for prefix in (NEXT, OLD):
                _drop_old(conn, chunk_s, Progress(), prefix)
        finally:
            conn.close()


@contextlib.contextmanager
def _one_builder(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".rebuild.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _next_schema() -> tuple[list[str], list[str]]:
    """(CREATE TABLE/INDEX statements for the lh_next_ tables, TEMP replay triggers
    writing into them), from the projection SQL with its table names retargeted."""
    tables = set(_tables())
    creates, triggers = [], []
    for _name, sql in projection_sql():
        for statement in sql_statements(sql):
            head = _without_comments(statement).lstrip()
            if re.match(r"CREATE\s+TABLE\b", head, re.I):
                creates.append(_retarget(statement, tables))
            elif re.match(r"CREATE\s+(UNIQUE\s+)?INDEX\s+(\w+)", head, re.I):
                renamed = _INDEX_HEAD.sub(rf"CREATE \1INDEX {NEXT}\2 ON ", head, count=1)
                creates.append(_retarget(renamed, tables))
            elif re.match(rf"CREATE\s+TRIGGER\s+{GUARD_PREFIX}", head, re.I):
                continue  # guards refuse bad appends; a replay only projects what is stored
            elif re.match(r"CREATE\s+TRIGGER\s+proj_", head, re.I):
                clone = _TRIGGER_HEAD.sub(
                    r"CREATE TEMP TRIGGER replay_\1 AFTER INSERT ON replay_events", head
                )
                triggers.append(_without_fts_writes(_retarget(clone, tables)))
    return creates, triggers


# Words after which a name is a table: INSERT INTO t, UPDATE t, FROM t, JOIN t,
# CREATE TABLE t, CREATE INDEX i ON t. (ALTER TABLE RENAME would rewrite triggers
# too, but SQLite 3.40 rewrites an upsert's `excluded.x` into `t.x` there.)
_BEFORE_TABLE = {"INTO", "UPDATE", "FROM", "JOIN", "TABLE", "ON"}
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\w+|\s+|.", re.S)


def _retarget(sql: str, tables: set[str]) -> str:
    """`sql` with every reference to a projection table pointed at its lh_next_ twin:
    after one of _BEFORE_TABLE, or as a column qualifier (`timeline.status`). String
    literals, comments and column names (messages.tool_calls) are left alone."""
    tokens = _TOKEN.findall(sql)
    out, previous = [], ""
    for i, token in enumerate(tokens):
        bare = token.strip('"')
        if bare in tables and previous != ".":
            following = next((t for t in tokens[i + 1 :] if not t.isspace()), "")
            if previous.upper() in _BEFORE_TABLE or following == ".":
                token = f'"{NEXT}{bare}"'
        out.append(token)
        if not token.isspace() and not token.startswith("--"):
            previous = token
    return "".join(out)


def _build_beside(conn: sqlite3.Connection, chunk_s: float, progress: Progress) -> None:
    creates, triggers = _next_schema()
    with _timed(progress, "create"), write_transaction(conn):
        for kind, name in _objects_named(conn, NEXT):
            conn.execute(f'DROP {kind} IF EXISTS "{name}"')
        for sql in creates:
            conn.execute(sql)
    conn.execute("DROP TABLE IF EXISTS temp.replay_events")
    conn.execute("CREATE TEMP TABLE replay_events AS SELECT * FROM main.events WHERE 0")
    for sql in triggers:
        conn.execute(sql)
    progress.replayed_seq = 0
    batch = 500
    behind, stalled = None, 0
    while True:
        started = time.perf_counter()
        with _timed(progress, "build"), write_transaction(conn):
            done = _replay(conn, batch, progress)
        elapsed = time.perf_counter() - started
        _let_others_in(conn)
        if done < batch:
            return  # nearly caught up: the swap replays the rest
        # Writers that append faster than the chunks replay would keep this going for
        # ever: when the distance stops shrinking, the swap replays what is left.
        (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM main.events").fetchone()
        now = last - progress.replayed_seq
        stalled = stalled + 1 if behind is not None and now >= behind else 0
        if stalled >= 3:
            return
        behind = now
        batch = next_batch(batch, chunk_s, elapsed)


def _replay(conn: sqlite3.Connection, limit: int | None, progress: Progress) -> int:
    """Replay up to `limit` events after the last one replayed into the lh_next_ tables."""
    done = conn.execute(
        "INSERT INTO temp.replay_events SELECT * FROM main.events WHERE seq > ? "
        "ORDER BY seq LIMIT ?",
        (progress.replayed_seq, -1 if limit is None else limit),
    ).rowcount
    if done:
        (last,) = conn.execute("SELECT max(seq) FROM temp.replay_events").fetchone()
        progress.replayed_seq = last
        conn.execute("DELETE FROM temp.replay_events")
    progress.events += done
    return done


def _swap(conn: sqlite3.Connection, progress: Progress) -> dict[str, int]:
    """Put the lh_next_ tables in place; returns, per full-text index, the last content
    rowid it must be filled up to (see _fill_fts)."""
    with _timed(progress, "swap"), write_transaction(conn):
        _replay(conn, None, progress)
        conn.execute("DROP TABLE temp.replay_events")  # and its temp triggers
        for kind, name in _ours_in(conn):  # the installed ones, as lh_meta records them
            if kind in ("trigger", "view"):
                conn.execute(f'DROP {kind} "{name}"')
        conn.execute("PRAGMA legacy_alter_table = ON")  # leave users' views as they are
        try:
            for table in _tables():
                if _present(conn, {("table", table)}):
                    conn.execute(f'ALTER TABLE "{table}" RENAME TO "{OLD}{table}"')
                conn.execute(f'ALTER TABLE "{NEXT}{table}" RENAME TO "{table}"')
        finally:
            conn.execute("PRAGMA legacy_alter_table = OFF")
        _canonical_names(conn)
        for _name, sql in projection_sql():
            for statement in sql_statements(sql):
                match = _FTS_CREATE.match(_without_comments(statement).strip())
                if match and not _present(conn, {("table", match.group(1))}):
                    conn.execute(statement)
        for _name, sql in projection_sql():
            for statement in sql_statements(sql):
                if _CREATES.match(_without_comments(statement)):
                    conn.execute(statement)
        record_installed(conn)
        upto = {}
        for name, _columns, content in _fts_indexes():
            (upto[name],) = conn.execute(
                f"SELECT coalesce(max(rowid), 0) FROM {content}"
            ).fetchone()
        return upto


def _canonical_names(conn: sqlite3.Connection) -> None:
    """In sqlite_master itself (ALTER cannot rename an index; no row or page moves):
    the old indexes become lh_old_*, the new ones take their names, and the new
    tables' and indexes' SQL reads exactly as a fresh install writes it."""
    canonical = _fresh_sql()
    conn.execute("PRAGMA writable_schema = ON")
    try:
        for (kind, name), sql in canonical.items():
            if kind == "index":
                row = conn.execute(  # on lh_old_<table> since the ALTER
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
                ).fetchone()
                if row is not None:
                    conn.execute(
                        "UPDATE sqlite_master SET name = ?, sql = ? "
                        "WHERE type = 'index' AND name = ?",
                        (OLD + name, _INDEX_HEAD.sub(rf"CREATE \1INDEX {OLD}\2 ON ", row[0]), name),
                    )
                conn.execute(
                    "UPDATE sqlite_master SET name = ?, sql = ? WHERE type = 'index' AND name = ?",
                    (name, sql, NEXT + name),
                )
            elif kind == "table":
                conn.execute(
                    "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                    (sql, name),
                )
    finally:
        conn.execute("PRAGMA writable_schema = OFF")


def _fresh_sql() -> dict[tuple[str, str], str]:
    """(type, name) -> sqlite_master.sql of every projection table and index, as a
    fresh install on an empty database stores it."""
    return {
        (o.kind, o.name): o.sql
        for o in fresh_install()
        if o.kind in ("table", "index") and o.sql is not None
    }


def _drop_old(
    conn: sqlite3.Connection, chunk_s: float, progress: Progress, prefix: str = OLD
) -> None:
    """Empty the swapped-out lh_old_ tables in short transactions, then drop them."""
    for kind, name in _objects_named(conn, prefix):
        if kind != "table":
            continue
        key = _key_columns(conn, name)
        batch = 2000
        while True:
            started = time.perf_counter()
            with _timed(progress, "empty old"), write_transaction(conn):
                gone = conn.execute(
                    f'DELETE FROM "{name}" WHERE ({key}) IN '
                    f'(SELECT {key} FROM "{name}" LIMIT {batch})'
                ).rowcount
            elapsed = time.perf_counter() - started
            _let_others_in(conn)
            if gone < batch:
                break
            batch = next_batch(batch, chunk_s, elapsed)
        with _timed(progress, "drop old"), write_transaction(conn):
            conn.execute(f'DROP TABLE "{name}"')


GAP_S = 0.15  # between two chunks: longer than the longest sleep of SQLite's busy handler (0.1 s)


def _let_others_in(conn: sqlite3.Connection) -> None:
    """Between two chunks: copy the WAL back into the file here, so that it stays small
    and no other writer pays for a checkpoint of this rebuild's pages at its own commit
    (a PASSIVE checkpoint takes no write lock), then leave the lock free for a moment:
    writers waiting in SQLite's busy handler poll, they are not queued."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    time.sleep(GAP_S)


def _key_columns(conn: sqlite3.Connection, table: str) -> str:
    rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    keys = [f'"{row[1]}"' for row in sorted(rows, key=lambda r: r[5]) if row[5]]
    return ", ".join(keys) or "rowid"


@contextlib.contextmanager
def _timed(progress: Progress, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        progress.held(phase, time.perf_counter() - started)


def _tables() -> list[str]:
    """The projection tables built beside and swapped: not the full-text indexes (nor
    their shadow tables), which are filled again in chunks after the swap."""
    indexes = [name for name, _columns, _content in _fts_indexes()]
    skipped = {*indexes, *(shadow for name in indexes for shadow in shadow_names(name))}
    return [name for kind, name in projection_objects() if kind == "table" and name not in skipped]


_FTS_CREATE = re.compile(r"CREATE\s+VIRTUAL\s+TABLE\s+(\w+)\s+USING\s+fts5\s*\((.*)\)", re.I | re.S)


@functools.cache
def _fts_indexes() -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """(name, indexed columns, content table) of each FTS5 index the projection SQL
    creates (external content: the index holds no text of its own)."""
    found = []
    for _name, sql in projection_sql():
        for statement in sql_statements(sql):
            match = _FTS_CREATE.match(_without_comments(statement).strip())
            if match:
                args = [a.strip() for a in match.group(2).split(",")]
                columns = tuple(a for a in args if "=" not in a)
                options = dict(a.split("=", 1) for a in args if "=" in a)
                content = options.get("content", "").strip("[]'\" ")
                found.append((match.group(1), columns, content))
    return tuple(found)


def _without_fts_writes(trigger_sql: str) -> str:
    """A replay trigger leaves the full-text indexes alone: they are filled after the swap."""
    for name, _columns, _content in _fts_indexes():
        trigger_sql = re.sub(rf"INSERT\s+INTO\s+{name}\b[^;]*;", "", trigger_sql, flags=re.I)
    return trigger_sql


def _fill_fts(
    conn: sqlite3.Connection, upto: dict[str, int], chunk_s: float, progress: Progress
) -> None:
    """Index the content rows that were there at the swap, in short transactions (rows
    added since came with their own trigger).

    The index still holds what the old triggers wrote before the swap, and, since the
    swap committed, what other writers' new triggers indexed (rows past `upto`). The
    first transaction empties it and indexes those newer rows again: emptying it in a
    transaction of its own would drop them for good, and FTS5 would then find the index
    malformed against its content table."""
    for name, columns, content in _fts_indexes():
        cols = ", ".join(columns)
        last, batch = 0, 2000
        with _timed(progress, "index"), write_transaction(conn):
            conn.execute(f"INSERT INTO {name} ({name}) VALUES ('delete-all')")
            conn.execute(
                f"INSERT INTO {name} (rowid, {cols}) SELECT rowid, {cols} FROM {content} "
                "WHERE rowid > ?",
                (upto.get(name, 0),),
            )
        while last < upto.get(name, 0):
            started = time.perf_counter()
            with _timed(progress, "index"), write_transaction(conn):
                rows = conn.execute(
                    f"SELECT rowid FROM {content} WHERE rowid > ? AND rowid <= ? "
                    f"ORDER BY rowid LIMIT {batch}",
                    (last, upto[name]),
                ).fetchall()
                if not rows:
                    break
                conn.execute(
                    f"INSERT INTO {name} (rowid, {cols}) SELECT rowid, {cols} FROM {content} "
                    "WHERE rowid > ? AND rowid <= ?",
                    (last, rows[-1][0]),
                )
                last = rows[-1][0]
            elapsed = time.perf_counter() - started
            _let_others_in(conn)
            batch = next_batch(batch, chunk_s, elapsed)


def next_batch(batch: int, chunk_s: float, elapsed: float) -> int:
    """The next chunk's size, scaled so that it takes about `chunk_s` (100 to 200,000)."""
    return max(100, min(200_000, int(batch * chunk_s / max(elapsed, 1e-3))))


def _objects_named(conn: sqlite3.Connection, prefix: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE substr(name, 1, ?) = ?",
        (
            len(prefix),
            prefix,
        ),
    )
    return [(kind, name) for kind, name in rows if kind in ("table", "index")]


def _present(conn: sqlite3.Connection, objects: set[tuple[str, str]]) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT type, name FROM sqlite_master")
    return sorted((kind, name) for kind, name in rows if (kind, name) in objects)


def _without_comments(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
