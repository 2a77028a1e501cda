"""Opening `sessions.db`: where it lives, the pragmas every connection needs,
write transactions that start with BEGIN IMMEDIATE, and the loop's
events-only connection.

The rule kept here: every write transaction is `BEGIN IMMEDIATE` on a
connection opened with `isolation_level=None` (a plain BEGIN produced
thousands of "database is locked" errors with four writers, see DESIGN.md).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

MIN_SQLITE_VERSION = (3, 35, 0)  # json_each in triggers, RETURNING, DROP COLUMN
BUSY_TIMEOUT_MS = 10_000
DB_FILENAME = "sessions.db"
HOME_NAME = ".leharness"
# Written into a `.leharness` folder lh creates, so that git ignores the history in it.
GITIGNORE = "# created by lh: the session history stays out of git\n*\n"
SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(Exception):
    """The database cannot be opened or used as asked (a user-facing problem)."""


def home_dir() -> Path:
    """`$LEHARNESS_HOME`, else the nearest `.leharness/` at or above the current directory
    (as git finds `.git`), else `.leharness/` in the current directory."""
    override = os.environ.get("LEHARNESS_HOME")
    if override:
        return Path(override).expanduser().resolve()
    cwd = Path.cwd()
    return find_home(cwd) or cwd / HOME_NAME


def find_home(start: Path) -> Path | None:
    """The nearest `.leharness` folder at or above `start`. The search stops below the
    user's home folder: a `~/.leharness` counts only in `~` itself, so one `lh` run there
    does not take over every project beneath it."""
    user_home = Path.home()
    for folder in (start, *start.parents):
        if folder == user_home and folder != start:
            return None
        if (folder / HOME_NAME).is_dir():
            return folder / HOME_NAME
    return None


def db_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / DB_FILENAME


def check_sqlite_version(version: str = sqlite3.sqlite_version) -> None:
    found = tuple(int(part) for part in version.split("."))
    if found < MIN_SQLITE_VERSION:
        wanted = ".".join(map(str, MIN_SQLITE_VERSION))
        raise StoreError(f"SQLite {version} is too old: leharness needs {wanted} or newer")


def check_home(home: Path) -> None:
    """Raise StoreError when the home (LEHARNESS_HOME) exists but is not a folder."""
    if home.exists() and not home.is_dir():
        raise StoreError(f"{home} is a file, not a folder: set LEHARNESS_HOME to a folder")


def check_is_sqlite(path: Path) -> None:
    """Raise StoreError unless `path` is absent, empty or starts with SQLite's header
    (and its folder is a folder). Reads 16 bytes; never writes."""
    check_home(path.parent)
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a SQLite database")
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise StoreError(
            f"{path} is not a SQLite database (its first bytes are {head[:8]!r}); "
            "leharness leaves it untouched: move it away or set LEHARNESS_HOME"
        )


def refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """A SQLite file another program made (tables, no leharness schema version) is not
    ours to add tables to: refuse it rather than migrate into it. Only reads."""
    if conn.execute("PRAGMA user_version").fetchone()[0] != 0:
        return
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name LIMIT 4"
        )
    ]
    if tables:
        conn.close()
        raise StoreError(
            f"{path} is a SQLite database but not a leharness one (it has tables "
            f"{', '.join(tables)}); leharness leaves it untouched: set LEHARNESS_HOME elsewhere"
        )


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with WAL, foreign keys and a busy timeout, in autocommit mode."""
    check_sqlite_version()
    path = Path(path)
    check_is_sqlite(path)
    try:
        created = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if created and path.parent.name == HOME_NAME:
            (path.parent / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    except OSError as error:
        raise StoreError(f"cannot create {path.parent}: {error.strerror}") from None
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        refuse_foreign(conn, path)  # before WAL mode, which rewrites the header
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"{path} is not a usable SQLite database ({error}); leharness leaves it untouched"
        ) from None
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.row_factory = sqlite3.Row
    # Used by fork's INSERT … SELECT to give every copied event a fresh id.
    conn.create_function("lh_ulid", 0, new_ulid)
    return conn


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """A `mode=ro` connection: queries through it can never change history."""
    check_sqlite_version()
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no database at {path}")
    check_is_sqlite(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    refuse_foreign(conn, path)
    conn.row_factory = sqlite3.Row
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def execute_script(conn: sqlite3.Connection, sql: str) -> None:
    """Run each statement of `sql` inside the caller's transaction.

    `sqlite3.executescript` would COMMIT first, breaking one-transaction migrations.
    """
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip() and not _only_comments(statement):
        raise StoreError(f"incomplete SQL statement: {statement.strip()[:80]}")


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def now_iso() -> str:
    """UTC ISO-8601 with milliseconds, the format of `events.ts`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, Crockford base32.

    Written here rather than imported: python-ulid costs ~55 ms of import time
    on this machine, paid by every `lh` command.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
