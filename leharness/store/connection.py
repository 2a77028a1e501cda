"""Opening `sessions.db`: where it lives, the pragmas every connection needs,
write transactions that start with BEGIN IMMEDIATE, and the loop's
events-only connection.

The rule kept here: every write transaction is `BEGIN IMMEDIATE` on a
connection opened with `isolation_level=None` (a plain BEGIN produced
thousands of "database is locked" errors with four writers, see DESIGN.md).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from leharness.errors import StoreError

MIN_SQLITE_VERSION = (3, 35, 0)  # json_each in triggers, RETURNING, DROP COLUMN
BUSY_TIMEOUT_MS = 10_000
DB_FILENAME = "sessions.db"
HOME_NAME = ".leharness"
# Written into a `.leharness` folder lh creates, so that git ignores the history in it.
GITIGNORE = "# created by lh: the session history stays out of git\n*\n"
SQLITE_HEADER = b"SQLite format 3\x00"


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


class FileStamp(NamedTuple):
    """What stat() says of a file that changes whenever it is written or replaced."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


def file_stamp(path: Path | str) -> FileStamp | None:
    """The file's stamp (None: it is not there); equal stamps, the same bytes."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return FileStamp(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def replace_file(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write a file of the home whole or not at all: into a partial file beside it, then
    renamed over it (`sync`: flushed to disk first). A failure leaves no partial file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


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


# Database files this process has opened with SQLite. Once a file is here it is never
# opened with open() again: closing any descriptor of a file drops every POSIX lock
# the process holds on it, and another process then deletes the WAL under the live
# connection (seen: a lost session and a corrupt index). SQLite itself reads the
# header of a file in this set, and says so if it is not a database.
_CONNECTED: set[str] = set()


def _key(path: Path) -> str:
    return os.path.realpath(path)


def check_is_sqlite(path: Path) -> None:
    """Raise StoreError unless `path` is absent, empty or starts with SQLite's header
    (and its folder is a folder). Reads 16 bytes, and only before this process's first
    connection to the file (SQLite checks it after that); never writes."""
    check_home(path.parent)
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a SQLite database")
    if _key(path) in _CONNECTED:
        return
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise StoreError(
            f"{path} is not a SQLite database (its first bytes are {head[:8]!r}); "
            "leharness leaves it untouched: move it away or set LEHARNESS_HOME"
        )


_STORAGE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}
_STORAGE_WORDS = ("unable to open", "disk I/O", "readonly", "full")


def storage_problem(path: Path, error: BaseException) -> str | None:
    """One line naming the file and why it cannot be written (a read-only file system, a
    full disk, no permission), or None when `error` is about something else. SQLite
    reports these as "unable to open database file", "disk I/O error", "database or
    disk is full" or "attempt to write a readonly database": say what is really wrong."""
    code = getattr(error, "errno", None)
    text = str(error)
    if isinstance(error, OSError):
        if code not in _STORAGE_ERRNOS:
            return None
        path = Path(error.filename) if error.filename else path
    elif not any(words in text for words in _STORAGE_WORDS):
        return None
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY or code == errno.EROFS:
        return (
            f"cannot write {path}: {folder} is on a read-only file system (lh writes the "
            "database and its -wal and -shm files there: set LEHARNESS_HOME to a writable folder)"
        )
    free = stats.f_bavail * stats.f_frsize
    if code == errno.ENOSPC or "full" in text or (free < 256 * 1024 and "I/O" in text):
        return (
            f"cannot write {path}: the disk is full ({free // 1024:,} KiB free on {folder}); "
            "what was written before is kept: free some space and run lh again"
        )
    sqlite_says = "readonly" in text or "unable to open" in text
    if code in (errno.EACCES, errno.EPERM) or (sqlite_says and not os.access(folder, os.W_OK)):
        return f"cannot write {path}: permission denied ({text})"
    return None


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


class SqliteWrites:
    """The tables SQLite itself writes for virtual tables (the shadow tables of an FTS
    index, say), which the loop's authorizer must let through. Refreshed by `refresh`
    inside each append's write transaction, where the schema cannot change."""

    def __init__(self) -> None:
        self.tables: frozenset[str] = frozenset()
        self.schema_version = -1

    def refresh(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA schema_version").fetchone()
        if version != self.schema_version:
            rows = conn.execute("PRAGMA main.table_list").fetchall()
            self.tables = frozenset(row[1] for row in rows if row[2] == "shadow")
            self.schema_version = version


class StoreConnection(sqlite3.Connection):
    """A connection to sessions.db; the loop's also carries `sqlite_writes`."""

    sqlite_writes: SqliteWrites | None = None
    db_file: str | None = None  # its real path, for the log's per-file bookkeeping


def text_of(value: bytes) -> str:
    """A TEXT value as str. SQLite keeps whatever bytes a program wrote, and sqlite3's own
    decoding stops the whole query at the first value that is not UTF-8 (OperationalError
    "Could not decode to UTF-8"): one such row written by another program made `lh show`,
    the exports, a resume and `lh doctor` end in a traceback. Its bad bytes read as U+FFFD;
    the row itself stays as written (~0.16 µs more per value than sqlite3's default)."""
    return value.decode("utf-8", "replace")


def connect(path: Path | str) -> StoreConnection:
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
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=StoreConnection
        )
        conn.db_file = _key(path)
        _CONNECTED.add(conn.db_file)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        refuse_foreign(conn, path)  # before WAL mode, which rewrites the header
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.DatabaseError as error:
        problem = storage_problem(path, error)
        raise StoreError(
            problem
            or f"{path} is not a usable SQLite database ({error}); leharness leaves it untouched"
        ) from None
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.row_factory = sqlite3.Row
    conn.text_factory = text_of
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
    _CONNECTED.add(_key(path))
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        refuse_foreign(conn, path)
    except sqlite3.OperationalError as error:  # a WAL file needs its -shm, even to read
        conn.close()
        problem = storage_problem(path, error)
        if problem is None:
            raise
        raise StoreError(problem) from None
    conn.row_factory = sqlite3.Row
    conn.text_factory = text_of
    return conn


QUERY_REFUSED = (
    "lh sql refuses ATTACH and VACUUM INTO: a query may read the history, "
    "not open or write other files (`lh export` copies a session)"
)


def _no_other_files(action: int, *_args: object) -> int:
    # VACUUM INTO reports itself as an ATTACH of its target file.
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def connect_query(path: Path | str) -> sqlite3.Connection:
    """A read-only connection for users' own SQL (`lh sql`): besides `mode=ro`, its
    authorizer refuses ATTACH and VACUUM INTO, which would create or write other files.
    A refused statement raises sqlite3.DatabaseError "not authorized" or "authorization
    denied" (see QUERY_REFUSED)."""
    conn = connect_readonly(path)
    conn.set_authorizer(_no_other_files)
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def execute_script(conn: sqlite3.Connection, sql: str) -> None:
    """Run each statement of `sql` inside the caller's transaction.

    `sqlite3.executescript` would COMMIT first, breaking one-transaction migrations.
    """
    for statement in sql_statements(sql):
        conn.execute(statement)


def main_file(conn: sqlite3.Connection) -> str:
    """The file behind `conn`'s main database, as SQLite names it ("" for an in-memory one)."""
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return file or ""
    return ""


def sql_statements(sql: str) -> Iterator[str]:
    """Each complete statement of `sql` (with the comments before it), in order; raises
    StoreError for a statement left incomplete at the end."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
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
