"""The store: one SQLite file holding every session's append-only event log.

Connections (WAL, busy timeout, foreign keys), migrations, `append()`, fork by
copying rows, and projection rebuilds. Imports nothing else of leharness.

The event models, the log and transfer need pydantic; their names are imported
on first use (PEP 562), so a command that only opens the file and reads rows
(`lh show`, `lh --help`) never loads it.
"""

from __future__ import annotations

import functools
import importlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .connection import (
    QUERY_REFUSED,
    SqliteWrites,
    StoreConnection,
    StoreError,
    check_is_sqlite,
    connect,
    connect_query,
    connect_readonly,
    db_path,
    home_dir,
    new_ulid,
    now_iso,
    replace_file,
    storage_problem,
    write_transaction,
)
from .schema import SCHEMA_VERSION, migrate, projection_tables, rebuild

if TYPE_CHECKING:
    from .events import EVENT_TYPES, Event, Payload
    from .log import (
        EventValidationError,
        ForeignEvent,
        SessionChanged,
        append,
        claim,
        create_session,
        foreign_events,
        fork,
        last_seq,
        non_utf8_events,
        read_events,
        row_to_event,
        validate_payload,
    )
    from .transfer import export_lines, import_records, read_import, session_tree

# name -> the submodule that defines it, imported by __getattr__ on first use
_LAZY = {
    **dict.fromkeys(("EVENT_TYPES", "Event", "Payload"), "events"),
    **dict.fromkeys(
        (
            "EventValidationError",
            "ForeignEvent",
            "SessionChanged",
            "append",
            "claim",
            "create_session",
            "foreign_events",
            "fork",
            "last_seq",
            "non_utf8_events",
            "read_events",
            "row_to_event",
            "validate_payload",
        ),
        "log",
    ),
    **dict.fromkeys(("export_lines", "import_records", "read_import", "session_tree"), "transfer"),
}

__all__ = [
    "EVENT_TYPES",
    "QUERY_REFUSED",
    "SCHEMA_VERSION",
    "Event",
    "EventValidationError",
    "ForeignEvent",
    "Payload",
    "SessionChanged",
    "StoreError",
    "append",
    "check_is_sqlite",
    "claim",
    "connect",
    "connect_query",
    "connect_readonly",
    "create_session",
    "db_path",
    "export_lines",
    "foreign_events",
    "fork",
    "home_dir",
    "import_records",
    "last_seq",
    "migrate",
    "new_ulid",
    "non_utf8_events",
    "now_iso",
    "open_events_only",
    "open_existing",
    "open_store",
    "projection_tables",
    "read_events",
    "read_import",
    "rebuild",
    "replace_file",
    "require_database",
    "row_to_event",
    "session_tree",
    "storage_problem",
    "validate_payload",
    "write_transaction",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def open_store(path: Path | str | None = None) -> StoreConnection:
    """Open (creating and migrating if needed) the sessions database."""
    path = Path(path or db_path())
    conn = connect(path)
    try:
        migrate(conn)
    except sqlite3.OperationalError as error:
        conn.close()
        problem = storage_problem(path, error)
        if problem is None:
            raise
        raise StoreError(problem) from None
    except BaseException:
        conn.close()
        raise
    return conn


def require_database(path: Path | str | None = None) -> Path:
    """The database's path, or a StoreError when there is none yet. Commands that only
    read (or that need a session to exist) call this first, so that a mistyped
    LEHARNESS_HOME gets one clear error and no new, empty folder."""
    path = Path(path or db_path())
    check_is_sqlite(path)  # a home that is a file, a database that is a folder: say so
    if not path.exists():
        raise StoreError(
            f"no database at {path}: no sessions here yet (is LEHARNESS_HOME right? "
            '`lh "a prompt"` starts the first session)'
        )
    return path


def open_existing(path: Path | str | None = None) -> sqlite3.Connection:
    """Open (migrating if needed) a database that exists; never create one."""
    return open_store(require_database(path))


def open_events_only(path: Path | str | None = None) -> sqlite3.Connection:
    """The loop's connection: it may write to `events` and nothing else.

    Triggers still write the projections (the authorizer sees them as coming
    from a trigger), and SQLite still writes the shadow tables of virtual tables
    such as an FTS index a user added over `events`; a direct write to any other
    table, or any DDL, is refused.
    """
    conn = open_store(path)
    writes = SqliteWrites()
    writes.refresh(conn)
    conn.sqlite_writes = writes
    conn.set_authorizer(functools.partial(_events_only, writes))
    return conn


_WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
_FORBIDDEN = {
    sqlite3.SQLITE_ALTER_TABLE,
    sqlite3.SQLITE_ATTACH,
    sqlite3.SQLITE_DETACH,
    sqlite3.SQLITE_DROP_TABLE,
    sqlite3.SQLITE_DROP_TRIGGER,
    sqlite3.SQLITE_DROP_VIEW,
    sqlite3.SQLITE_DROP_INDEX,
    sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_CREATE_TRIGGER,
    sqlite3.SQLITE_CREATE_VIEW,
    sqlite3.SQLITE_CREATE_INDEX,
}


def _events_only(
    writes: SqliteWrites, action: int, arg1: str | None, _arg2, _db, source: str | None
) -> int:
    if action in _FORBIDDEN:
        return sqlite3.SQLITE_DENY
    # Eponymous virtual tables such as json_each report an UPDATE of
    # sqlite_master when they are first constructed; user SQL cannot write
    # sqlite_master anyway (writable_schema is off), so let that through. A
    # virtual table's module (FTS5, say) writes its shadow tables with
    # statements of its own, which come from no trigger: let those through too.
    if (
        action in _WRITES
        and source is None
        and arg1 not in ("events", "sqlite_master")
        and arg1 not in writes.tables
    ):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK
