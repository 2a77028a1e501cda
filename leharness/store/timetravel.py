"""Time travel: a session as it stood after its event N, without touching the live file.

The session's events 1..N are copied into a fresh in-memory database holding
the same schema and triggers; the triggers project them exactly as they did
the first time, and the usual read functions read the result. The live
projections are never written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from .connection import StoreError, write_transaction
from .schema import install_projections, install_source_tables, is_guard, migrate

_COLUMNS = "seq, id, session_id, session_seq, ts, type, data"


def session_at(
    conn: sqlite3.Connection,
    session_id: str,
    at: int,
    projections: Collection[str] | None = None,
) -> sqlite3.Connection:
    """An in-memory database holding only events 1..`at` of the session, projected.

    `projections` limits the projections built to those files (by name, e.g.
    "messages"): the caller that reads three tables does not pay the triggers
    of the others. Raises StoreError when `at` is outside 1..the session's last event.
    """
    (end,) = conn.execute(
        "SELECT coalesce(max(session_seq), 0) FROM events WHERE session_id = ?", (session_id,)
    ).fetchone()
    if end == 0:
        raise StoreError(f"no session {session_id!r}: `lh sessions` lists them")
    if not 1 <= at <= end:
        raise StoreError(f"--at must be between 1 and {end} for session {session_id}")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE session_id = ? AND session_seq <= ? "
        "ORDER BY session_seq",
        (session_id, at),
    ).fetchall()
    scratch = empty_database(projections)
    with write_transaction(scratch):
        scratch.executemany(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", map(tuple, rows)
        )
    return scratch


def empty_database(projections: Collection[str] | None = None) -> sqlite3.Connection:
    """A new in-memory database with the events table, its guards and every projection
    (every migration step applied, as on a new file), or only the named projections."""
    scratch = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    scratch.row_factory = sqlite3.Row
    if projections is None:
        migrate(scratch)
    else:
        with write_transaction(scratch):
            install_source_tables(scratch)
            install_projections(scratch, only=projections)
    # Guards refuse new bad appends; a copy of what is already stored (an older lh may
    # have written a prompt before a crashed call's result) is shown as it stands.
    triggers = scratch.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for (name,) in triggers:
        if is_guard(name):
            scratch.execute(f'DROP TRIGGER "{name}"')
    return scratch
