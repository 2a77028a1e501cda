"""Backups around schema migrations: history lost after an upgrade is what users of
other session stores complain about most.

Before a migration changes a file that holds events, `VACUUM INTO` writes a copy
beside it named with the old schema version (`sessions.db.v10-<time>.backup`;
never a file copy under WAL). After the migration, `PRAGMA integrity_check`
must say ok; then backups of earlier migrations are removed and this one is
kept until the next successful migration.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .connection import StoreError, main_file


def database_file(conn: sqlite3.Connection) -> Path | None:
    """The file behind `conn`'s main database (None for an in-memory one)."""
    file = main_file(conn)
    return Path(file) if file else None


def backup_path(path: Path, version: int) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return path.with_name(f"{path.name}.v{version}-{stamp}.backup")


def backups_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.v*.backup"))


def backup_before_migration(conn: sqlite3.Connection, version: int) -> Path | None:
    """Copy the file as it is (schema `version`) beside it; None when there is nothing
    to lose (a new file, an in-memory database, no events yet)."""
    path = database_file(conn)
    if path is None or version == 0 or not _has_events(conn):
        return None
    target = backup_path(path, version)
    n = 1
    while target.exists():  # two migrations within a second: keep both
        n += 1
        target = target.with_name(f"{backup_path(path, version).name[:-7]}-{n}.backup")
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.OperationalError as error:
        raise StoreError(
            f"cannot write the backup {target} before upgrading {path} ({error}); "
            "nothing was changed"
        ) from None
    return target


def finish_migration(conn: sqlite3.Connection, backup: Path) -> None:
    """Check the migrated file; keep `backup`, remove the backups of earlier migrations."""
    path = database_file(conn)
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        raise StoreError(
            f"after upgrading {path}, integrity_check reports: {'; '.join(problems[:3])}; "
            f"the file as it was before is in {backup}"
        )
    if path is not None:
        for old in backups_of(path):
            if old != backup:
                old.unlink(missing_ok=True)


def _has_events(conn: sqlite3.Connection) -> bool:
    try:
        return conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # no events table yet
        return False
