"""Schema migrations and projection rebuilds.

Migrations are an append-only list of hand-written steps guarded by
`PRAGMA user_version`, all applied in one BEGIN IMMEDIATE transaction. Only
`events` holds truth; every other table, trigger and view is derived, so a
step that changes projections simply reinstalls them from the `.sql` files in
`leharness/projections/sql/` and rebuilds their rows from the events.
"""

from __future__ import annotations

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
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# Tables that hold truth. Everything else in the file is derived from them. `trials`
# and `trial_sessions` hold what Harbor's result.json files said (lh merge).
SOURCE_TABLES = frozenset({"events", "trials", "trial_sessions"})


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; refuse one written by a newer leharness."""
    if user_version(conn) == SCHEMA_VERSION:  # fast path for every open
        return SCHEMA_VERSION
    with write_transaction(conn):
        found = user_version(conn)  # re-read: another process may have migrated meanwhile
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"this database has schema version {found}, newer than this leharness "
                f"understands ({SCHEMA_VERSION}); upgrade leharness to open it"
            )
        pending = [m for m in MIGRATIONS if m.version > found]
        for step in pending:
            if step.sql_file:
                execute_script(conn, _read_sql("store", step.sql_file))
        if any(step.reinstall_projections for step in pending):
            install_projections(conn)
            rebuild(conn, in_transaction=True)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return SCHEMA_VERSION


def projection_files() -> list[str]:
    from importlib import resources  # here, not at the top: every open would pay for it

    folder = resources.files("leharness").joinpath("projections", "sql")
    return sorted(item.name for item in folder.iterdir() if item.name.endswith(".sql"))


def projection_tables(conn: sqlite3.Connection) -> list[str]:
    """Derived tables: every table but the source tables and SQLite's own."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    return [name for (name,) in rows if name not in SOURCE_TABLES]


def install_source_tables(conn: sqlite3.Connection) -> None:
    """Create the source tables and their guards (every step's own SQL file), on an
    empty database; `migrate` is the way for a real one."""
    for step in MIGRATIONS:
        if step.sql_file:
            execute_script(conn, _read_sql("store", step.sql_file))


def install_projections(conn: sqlite3.Connection, only: Collection[str] | None = None) -> None:
    """Drop every derived object and create them again from the projection files.

    `only` names the files (without `.sql`) to create, for a scratch database
    that needs a few projections: each file writes and reads its own tables only.
    """
    files = projection_files() if only is None else sorted(f"{name}.sql" for name in set(only))
    triggers = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'proj_%'"
    ).fetchall()
    views = conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall()
    for (name,) in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    for (name,) in views:
        conn.execute(f'DROP VIEW "{name}"')
    for name in projection_tables(conn):
        conn.execute(f'DROP TABLE "{name}"')
    for filename in files:
        execute_script(conn, _read_sql("projections", filename))


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
    triggers = conn.execute(
        "SELECT sql FROM main.sqlite_master WHERE type = 'trigger' AND name LIKE 'proj_%' "
        "ORDER BY name"
    ).fetchall()
    conn.execute("DROP TABLE IF EXISTS temp.replay_events")
    conn.execute("CREATE TEMP TABLE replay_events AS SELECT * FROM main.events WHERE 0")
    for (sql,) in triggers:
        clone, count = _TRIGGER_HEAD.subn(
            r"CREATE TEMP TRIGGER replay_\1 AFTER INSERT ON replay_events", sql
        )
        if count != 1:
            raise StoreError(f"projection trigger not in the expected form: {sql[:80]}")
        conn.execute(clone)
    for table in projection_tables(conn):
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
