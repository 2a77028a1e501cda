"""Schema migrations and projection installs and rebuilds.

Migrations are an append-only list of hand-written steps guarded by
`PRAGMA user_version`, all applied in one BEGIN IMMEDIATE transaction, after a
backup of the file (`VACUUM INTO`, named with the old version) and followed by
`PRAGMA integrity_check` (see `backup.py`). Only `events` holds truth; the
projections are exactly the tables, views, triggers and indexes that the
`.sql` files in `leharness/projections/sql/` create. The sha256 of those files
is stored in `lh_meta`: whenever it differs (a new version, or an edited file)
they are reinstalled and rebuilt from the events. Whatever else is in the file
belongs to other tools (sqlite-utils' FTS, a user's own tables) and is never touched.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

from .connection import StoreError, execute_script, write_transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql_file: str | None = None  # a file in leharness/store/sql/, run once
    reinstall_projections: bool = False


# Append-only: add a step for every change; never edit one that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events table with append-only and contiguous-sequence guards", "0001_events.sql"),
    Migration(2, "projections: sessions, messages, tool_calls, tasks, artifacts", None, True),
    Migration(3, "messages: compaction.completed can hide the oldest messages", None, True),
    Migration(4, "messages: a task.delivered with empty text adds no message", None, True),
    Migration(5, "tasks: the lh process that runs each task (harness_pid)", None, True),
    Migration(
        6,
        "views: transcript, session_timeline, tool_failures, task_durations, token_usage",
        None,
        True,
    ),
    Migration(
        7,
        "timeline and model_usage projections, covering indexes: views fast on 1M events",
        None,
        True,
    ),
    Migration(
        8,
        "compaction tiers: dropped reasoning, compacted tool results and summaries in messages",
        None,
        True,
    ),
    Migration(
        9,
        "trials and trial_sessions from Harbor's result.json (lh merge), and views over them",
        "0009_trials.sql",
        True,
    ),
    Migration(
        10, "approvals_always: an 'always' answer lasts for the rest of the session", None, True
    ),
    Migration(
        11,
        "processes projection; tasks: process identity (boot id, start time, owner), "
        "a fork closes the running tasks it copied",
        None,
        True,
    ),
    Migration(
        12,
        "guard: no invocation.received while a tool call of the session has no result",
        None,
        True,
    ),
    Migration(13, "lh_meta: the projection SQL's hash and the objects it created", "0013_meta.sql"),
    Migration(14, "search: the conversation table and its FTS5 index conversation_fts", None, True),
    Migration(
        15, "checkpoints: file and work-tree changes lh made, for diff and rewind", None, True
    ),
    Migration(
        16,
        "cheaper appends: timeline keeps steps and model calls (session_timeline reads tool "
        "calls and tasks from their own tables); no sessions_updated or conversation_session index",
        None,
        True,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# Tables that hold truth. Everything else in the file is derived from them. `trials`
# and `trial_sessions` hold what Harbor's result.json files said (lh merge).
SOURCE_TABLES = frozenset({"events", "trials", "trial_sessions"})
META_TABLE = "lh_meta"


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION and its projections to the current SQL;
    refuse one written by a newer leharness. On a big file the projections are rebuilt
    beside the old ones in short transactions (`reinstall.py`), so that other processes
    keep writing meanwhile."""
    found = user_version(conn)
    if found == SCHEMA_VERSION and installed_hash(conn) == projection_hash():
        return SCHEMA_VERSION  # the fast path of every open
    _refuse_newer(found)
    from .backup import backup_before_migration, database_file, finish_migration

    backup = backup_before_migration(conn, found) if found < SCHEMA_VERSION else None
    path = database_file(conn)
    in_chunks = path is not None and _events_beyond(conn, CHUNKED_FROM_EVENTS)
    with write_transaction(conn):
        found = user_version(conn)  # re-read: another process may have migrated meanwhile
        _refuse_newer(found)
        pending = [m for m in MIGRATIONS if m.version > found]
        for step in pending:
            if step.sql_file:
                execute_script(conn, _read_sql("store", step.sql_file))
        forced = any(step.reinstall_projections for step in pending)
        if (forced or installed_hash(conn) != projection_hash()) and not in_chunks:
            install_projections(conn)
            rebuild(conn, in_transaction=True)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    if in_chunks and path is not None:
        from .reinstall import reinstall_in_chunks

        reinstall_in_chunks(path, force=forced)
    if backup is not None:
        finish_migration(conn, backup)
    return SCHEMA_VERSION


# From this many events on, projections are reinstalled in chunks rather than in one
# transaction (a rebuild runs at roughly 15,000 events a second).
CHUNKED_FROM_EVENTS = 20_000


def _events_beyond(conn: sqlite3.Connection, count: int) -> bool:
    try:
        (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    except sqlite3.OperationalError:  # no events table yet
        return False
    return last > count


def _refuse_newer(found: int) -> None:
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"this database has schema version {found}, newer than this leharness "
            f"understands ({SCHEMA_VERSION}); upgrade leharness to open it"
        )


def projection_files() -> list[str]:
    # Every open hashes these files: a plain listdir, as importlib.resources costs
    # tens of milliseconds of imports (tempfile, zipfile) on the first call.
    import os

    import leharness

    folder = os.path.join(os.path.dirname(leharness.__file__), "projections", "sql")
    try:
        names = os.listdir(folder)
    except OSError:  # not installed as plain files (a zip): ask the loader
        from importlib import resources

        names = [
            i.name for i in resources.files("leharness").joinpath("projections", "sql").iterdir()
        ]
    return sorted(name for name in names if name.endswith(".sql"))


@functools.cache
def projection_sql() -> tuple[tuple[str, str], ...]:
    """(file name, SQL) of every projection file, in the order they are installed."""
    return tuple((name, _read_sql("projections", name)) for name in projection_files())


@functools.cache
def projection_hash() -> str:
    """sha256 over every projection file's name and SQL: what `lh_meta` records."""
    digest = hashlib.sha256()
    for name, sql in projection_sql():
        digest.update(f"{name}\0{sql}\0".encode())
    return digest.hexdigest()


def installed_hash(conn: sqlite3.Connection) -> str | None:
    """The projection hash recorded at their last install (None: never recorded)."""
    return _meta(conn, "projections_sha256")


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    try:
        row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:  # no lh_meta: a file older than version 11
        return None
    return row[0] if row else None


@dataclass(frozen=True)
class FreshObject:
    """One object a projection file creates, as a fresh install stores it."""

    file: str  # the projection file's name, e.g. `tasks.sql`
    kind: str  # table | index | trigger | view
    name: str
    tbl_name: str
    sql: str | None  # sqlite_master.sql (None for an index SQLite makes itself)


@functools.cache
def fresh_install() -> tuple[FreshObject, ...]:
    """Every object the projection files create, in file order, found by running them on
    an empty in-memory database (the one scratch install the schema, the reinstall and the
    README's trigger table read)."""
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    try:
        install_source_tables(scratch)
        seen = {name for (name,) in scratch.execute("SELECT name FROM sqlite_master")}
        found = []
        for filename, sql in projection_sql():
            execute_script(scratch, sql)
            rows = scratch.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
            ).fetchall()
            for kind, name, table, text in rows:
                if name not in seen and not name.startswith("sqlite_"):
                    found.append(FreshObject(filename, kind, name, table, text))
                seen.add(name)
    finally:
        scratch.close()
    return tuple(found)


@functools.cache
def projection_objects() -> tuple[tuple[str, str], ...]:
    """(type, name) of every table, view, trigger and index the projection files create."""
    return tuple(sorted((o.kind, o.name) for o in fresh_install()))


def projection_tables(conn: sqlite3.Connection) -> list[str]:
    """The projection tables present in `conn`: only those our `.sql` files create, less
    the shadow tables an FTS index keeps for itself (its virtual table stands for them)."""
    ours = {name for kind, name in projection_objects() if kind == "table"}
    shadows = fts_shadow_tables(conn)
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [name for (name,) in rows if name in ours and name not in shadows]


# What FTS5 (and FTS3/4) name their shadow tables: `<virtual table>_<suffix>`.
_FTS_SHADOW_SUFFIXES = ("data", "idx", "content", "docsize", "config", "segments", "segdir", "stat")


def fts_tables(conn: sqlite3.Connection) -> list[str]:
    """Full-text virtual tables in the file (ours, e.g. conversation_fts, or a user's)."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND rootpage = 0 "
        "AND sql LIKE '%VIRTUAL TABLE%USING FTS%' ORDER BY name"
    )
    return [name for (name,) in rows]


def shadow_names(fts: str) -> set[str]:
    """The shadow tables an FTS index named `fts` keeps for itself."""
    return {f"{fts}_{suffix}" for suffix in _FTS_SHADOW_SUFFIXES}


def fts_shadow_tables(conn: sqlite3.Connection) -> set[str]:
    return {name for fts in fts_tables(conn) for name in shadow_names(fts)}


def _external_content(conn: sqlite3.Connection, table: str) -> bool:
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return "content=" in sql.replace(" ", "").lower()


def check_fts(conn: sqlite3.Connection, table: str) -> str:
    """An empty string when the FTS index `table` matches its content table, else why not.
    Writes nothing it keeps (the integrity-check command only reads)."""
    try:
        conn.execute(f'INSERT INTO "{table}" ("{table}", rank) VALUES (\'integrity-check\', 1)')
    except sqlite3.DatabaseError as error:
        return str(error)
    return ""


def install_source_tables(conn: sqlite3.Connection) -> None:
    """Create the source tables and their guards (every step's own SQL file), on an
    empty database; `migrate` is the way for a real one."""
    for step in MIGRATIONS:
        if step.sql_file:
            execute_script(conn, _read_sql("store", step.sql_file))


def install_projections(conn: sqlite3.Connection, only: Collection[str] | None = None) -> None:
    """Drop the projection objects and create them again from the projection files.

    Dropped are only objects leharness made: those recorded in `lh_meta` at the
    last install, those the current files create, and (on files older than
    version 11) triggers on `events` named `proj_*`. `only` names the files
    (without `.sql`) to create, for a scratch database that needs a few
    projections: each file writes and reads its own tables only.
    """
    for kind, name in _ours_in(conn):
        conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    names = None if only is None else {f"{name}.sql" for name in only}
    for missing in sorted((names or set()) - {filename for filename, _ in projection_sql()}):
        raise StoreError(f"no projections file {missing}")
    for filename, sql in projection_sql():
        if names is None or filename in names:
            execute_script(conn, sql)
    if only is None and _has_meta(conn):
        record_installed(conn)


def record_installed(conn: sqlite3.Connection) -> None:
    """Note in lh_meta which projection SQL is installed and the objects it created."""
    conn.executemany(
        f"INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES (?, ?)",
        [
            ("projections_sha256", projection_hash()),
            ("projection_objects", json.dumps([list(o) for o in projection_objects()])),
        ],
    )


def _ours_in(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Projection objects present in `conn`, triggers and views first (tables last: a
    dropped table takes its indexes and triggers with it)."""
    ours = set(projection_objects())
    recorded = _meta(conn, "projection_objects")
    if recorded:
        ours |= {(kind, name) for kind, name in json.loads(recorded)}
    else:  # installed before lh_meta: our triggers were always named proj_*
        ours |= {
            (kind, name)
            for kind, name in conn.execute(
                "SELECT type, name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'proj\\_%' ESCAPE '\\' AND tbl_name = 'events'"
            )
        }
    present = {(kind, name) for kind, name in conn.execute("SELECT type, name FROM sqlite_master")}
    order = {"trigger": 0, "view": 1, "index": 2, "table": 3}
    return sorted((o for o in ours if o in present), key=lambda o: (order.get(o[0], 9), o[1]))


def _has_meta(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META_TABLE,)
        ).fetchone()
        is not None
    )


# Guard triggers (BEFORE INSERT, named proj_guard_*) refuse a bad append; they project
# nothing, so a rebuild, a reinstall's replay and a time-travel copy leave them out.
GUARD_PREFIX = "proj_guard_"


def is_guard(trigger_name: str) -> bool:
    return trigger_name.startswith(GUARD_PREFIX)


_TRIGGER_HEAD = re.compile(r"^CREATE TRIGGER (proj_\w+) AFTER INSERT ON events\b", re.I)


def rebuild(conn: sqlite3.Connection, *, in_transaction: bool = False) -> int:
    """Recompute every projection from the events, in place, in one transaction.

    The projection triggers are cloned as TEMP triggers on a TEMP copy of the
    events table; replaying the events through them reproduces exactly what
    the live triggers did, with no second file. Returns the events replayed.
    This works because projection triggers read only NEW and projection
    tables, never `events` itself.
    """
    if not in_transaction:
        with write_transaction(conn):
            return rebuild(conn, in_transaction=True)
    # Guards refuse bad appends; a rebuild only projects what is stored.
    rows = conn.execute(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND name LIKE 'proj_%' "
        "ORDER BY name"
    ).fetchall()
    triggers = [(sql,) for name, sql in rows if not is_guard(name)]
    conn.execute("DROP TABLE IF EXISTS temp.replay_events")
    conn.execute("CREATE TEMP TABLE replay_events AS SELECT * FROM main.events WHERE 0")
    for (sql,) in triggers:
        clone, count = _TRIGGER_HEAD.subn(
            r"CREATE TEMP TRIGGER replay_\1 AFTER INSERT ON replay_events", sql
        )
        if count != 1:
            raise StoreError(f"projection trigger not in the expected form: {sql[:80]}")
        conn.execute(clone)
    fts = set(fts_tables(conn))
    for table in projection_tables(conn):
        if table in fts and _external_content(conn, table):  # emptied by its own command
            conn.execute(f'INSERT INTO main."{table}" ("{table}") VALUES (\'delete-all\')')
        else:
            conn.execute(f'DELETE FROM main."{table}"')
    replayed = conn.execute(
        "INSERT INTO temp.replay_events SELECT * FROM main.events ORDER BY seq"
    ).rowcount
    conn.execute("DROP TABLE temp.replay_events")  # drops its temp triggers too
    return replayed


def _read_sql(package: str, filename: str) -> str:
    # pkgutil reads through the package's loader as importlib.resources does (so it
    # works from a zip too) without importing tempfile, shutil and zipfile: that
    # was a tenth of `lh show --at`.
    import pkgutil

    try:
        data = pkgutil.get_data("leharness", f"{package}/sql/{filename}")
    except FileNotFoundError:
        data = None
    if data is None:
        raise StoreError(f"no {package} file {filename}")
    return data.decode("utf-8")
