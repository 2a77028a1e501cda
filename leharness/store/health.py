"""Checks of the file itself: is it SQLite, is it intact, do projections match a rebuild.

Nothing here changes the database it checks: the rebuild comparison runs on a
scratch copy made with `VACUUM INTO` (never a file copy under WAL).
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .connection import connect
from .schema import check_fts, fts_tables, projection_tables, rebuild

# SQLite result codes that mean "this file is damaged or not a database".
CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_corruption(error: BaseException) -> bool:
    return isinstance(error, sqlite3.DatabaseError) and (
        getattr(error, "sqlite_errorcode", None) in CORRUPT_CODES
        or "malformed" in str(error)
        or "not a database" in str(error)
    )


def integrity_problems(conn: sqlite3.Connection, limit: int = 20) -> list[str]:
    """`PRAGMA integrity_check`'s findings; an empty list when the file is intact."""
    rows = [row[0] for row in conn.execute(f"PRAGMA integrity_check({int(limit)})")]
    return [] if rows == ["ok"] else rows


@dataclass(frozen=True)
class Drift:
    """A projection table whose rows differ from what a rebuild computes."""

    table: str
    stale_rows: int  # rows present now that a rebuild would not produce
    missing_rows: int  # rows a rebuild produces that are absent now
    note: str = ""  # for a full-text index: why it does not match its content


def rebuild_drift(conn: sqlite3.Connection) -> list[Drift]:
    """Compare every projection table with a rebuild from the events, on a scratch copy."""
    with tempfile.TemporaryDirectory(prefix="lh-doctor-") as folder:
        copy_path = Path(folder) / "copy.db"
        conn.execute("VACUUM INTO ?", (str(copy_path),))
        copy = connect(copy_path)
        try:
            return _drift_in(copy)
        finally:
            copy.close()


def _drift_in(copy: sqlite3.Connection) -> list[Drift]:
    fts = set(fts_tables(copy))
    # A full-text index is checked by FTS5 itself against its content table (whose
    # rows the comparison below covers); its own rows are the content table's.
    drift = [Drift(t, 0, 0, problem) for t in sorted(fts) if (problem := check_fts(copy, t))]
    tables = [t for t in projection_tables(copy) if t not in fts]
    for table in tables:
        copy.execute(f'CREATE TEMP TABLE "before_{table}" AS SELECT * FROM main."{table}"')
    rebuild(copy)
    for table in tables:
        stale = _count_except(copy, f'temp."before_{table}"', f'main."{table}"')
        missing = _count_except(copy, f'main."{table}"', f'temp."before_{table}"')
        if stale or missing:
            drift.append(Drift(table, stale, missing))
    return drift


def _count_except(conn: sqlite3.Connection, left: str, right: str) -> int:
    """Rows of `left` not matched by a row of `right`, duplicates counted (a multiset EXCEPT)."""
    grouped_left = f"SELECT *, count(*) AS lh_n FROM {left} GROUP BY {_all_columns(conn, left)}"
    grouped_right = f"SELECT *, count(*) AS lh_n FROM {right} GROUP BY {_all_columns(conn, right)}"
    sql = (
        f"SELECT coalesce(sum(lh_n), 0) FROM ("
        f"  SELECT l.lh_n - coalesce(r.lh_n, 0) AS lh_n"
        f"  FROM ({grouped_left}) AS l LEFT JOIN ({grouped_right}) AS r ON {_match(conn, left)}"
        f") WHERE lh_n > 0"
    )
    return conn.execute(sql).fetchone()[0]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]


def _all_columns(conn: sqlite3.Connection, table: str) -> str:
    return ", ".join(f'"{c}"' for c in _columns(conn, table))


def _match(conn: sqlite3.Connection, table: str) -> str:
    return " AND ".join(f'l."{c}" IS r."{c}"' for c in _columns(conn, table)) or "1"
