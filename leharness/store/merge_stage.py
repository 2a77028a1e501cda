"""Reading the next file of `lh merge` on another thread while the merge writes this one.

A stager thread reads the next file whole (while no connection has it open: no WAL, no
hot journal, unchanged from before the read to after it, so the bytes are one
consistent state of the file) and, on an in-memory connection of its own, what the
merge needs to know of it: its version, its schema as `read_schema` compares it with
ours, and its sessions and seq range (`count_source`). The merge then deserializes the
same bytes as its `src` (~0.2 ms) and copies from them as from the file.

Both connections keep their schema from one file to the next. Deserializing a file
keeps the schema SQLite parsed for the last one (the ~50 triggers of an lh file: ~1.4 ms
a file on each side), which is right for the new file only when its schema is laid out
exactly like the last one's: the same objects, SQL and root pages (`layout`) and the
same schema format in its header. When it is not, the stager reads the file on a new
connection and the merge attaches `src` afresh, each parsing the file's own schema.

The rule kept: staging only ever saves time. A file it cannot stage (in use, too big,
not SQLite, text not in UTF-8, any SQLite error) comes out as None and the merge
attaches the file as before, which gives the same clear errors. At most one staged file
waits ahead of the merge (and files over STAGE_LIMIT bytes are not staged), so memory
stays flat.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .connection import SQLITE_HEADER, FileStamp, StoreError, file_stamp
from .merge_copy import FileSchema, SourceCounts, count_source, read_schema
from .trials import TrialRow, trial_of

STAGE_LIMIT = 16 * 1024 * 1024  # bytes of one source file; bigger ones are attached
_UTF8 = (1).to_bytes(4, "big")  # the header's text encoding (bytes 56-59): 1 is UTF-8


@dataclass(frozen=True)
class Staged:
    """One file's pages, ready to deserialize, and what the stager read of them."""

    data: bytearray
    version: int  # PRAGMA user_version
    schema: FileSchema  # as read_schema found it
    counts: SourceCounts  # its sessions, seq range and filled tables, for the plan


@dataclass(frozen=True)
class Ready:
    """What the stager prepared for one file: its trial (if in a trial's folder) and its
    staged copy (None: attach the file itself)."""

    path: Path
    trial: tuple[Path, TrialRow] | None
    staged: Staged | None


class Stager:
    """Prepares `paths` in order, one file ahead of the merge, on a thread of its own."""

    def __init__(self, paths: Sequence[Path], limit: int, target: Path) -> None:
        self._paths = list(paths)
        self._target = _inode(target)
        self._next = 0  # index in _paths of the next file take() expects
        self._limit = limit
        self._queue: queue.Queue[Ready | Exception] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lh-merge-stage", daemon=True)
        self._thread.start()

    def take(self, path: Path) -> Ready | None:
        """The prepared file, when `path` is the next one of the list given (else None)."""
        if self._next >= len(self._paths) or self._paths[self._next] != path:
            return None
        self._next += 1
        item = self._queue.get()
        if isinstance(item, Exception):  # a bug in the stager: show it here
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a put waiting for room
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _run(self) -> None:
        reader = _Reader(self._limit)
        try:
            for path in self._paths:
                try:
                    staged = None if _inode(path) == self._target else reader.stage(path)
                    item: Ready | Exception = Ready(path, trial_of(path), staged)
                except Exception as error:  # a bug: handed to the merge's thread, raised there
                    item = error
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set() or isinstance(item, Exception):
                    return
        finally:
            reader.close()


def layout(conn: sqlite3.Connection, schema: str, data: bytearray) -> tuple[bytes, str]:
    """The layout of the file `data` deserialized as `schema`: its header's schema format
    and its objects with their SQL and root pages. Statements, and the schema SQLite
    parsed, for one file read another file of the same layout as they read the first:
    SQLite parses a schema again only when its cookie differs."""
    (objects,) = conn.execute(
        "SELECT group_concat(type || char(31) || name || char(31) || rootpage || char(31) "
        f"|| coalesce(sql, ''), char(30)) FROM {schema}.sqlite_master"
    ).fetchone()
    return bytes(data[44:48]), objects


class _Reader:
    """Stages files one after the other on one in-memory connection (see the module)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._conn: sqlite3.Connection | None = None
        self._layout: tuple[bytes, str] | None = None  # that of the last file (`layout`)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn, self._layout = None, None

    def stage(self, path: Path) -> Staged | None:
        """The file's pages and what the merge needs to know of them, or None."""
        data = _read_at_rest(path, self._limit)
        if data is None or data[56:60] != _UTF8:  # ATTACH refuses another text encoding
            return None
        data[18] = data[19] = 1  # a WAL-mode file's header: read it as a rollback-mode one
        try:
            conn = self._kept_for(data) or self._new_for(data)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            return Staged(data, version, read_schema(conn, "main"), count_source(conn, "main"))
        except (sqlite3.Error, StoreError, MemoryError):
            self.close()
            return None

    def _kept_for(self, data: bytearray) -> sqlite3.Connection | None:
        """The kept connection with `data` deserialized on it, when the file is laid out
        like the last one (the schema parsed then holds for it); else None."""
        conn = self._conn
        if conn is None:
            return None
        conn.deserialize(data)
        return conn if layout(conn, "main", data) == self._layout else None

    def _new_for(self, data: bytearray) -> sqlite3.Connection:
        """A new connection (kept from now on) with `data` deserialized on it."""
        self.close()
        conn = self._conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.deserialize(data)
        self._layout = layout(conn, "main", data)
        return conn


def _read_at_rest(path: Path, limit: int) -> bytearray | None:
    """The whole file, when no connection has it open and it is at most `limit` bytes
    and unchanged while read; else None."""
    before = _at_rest(path)
    if before is None or before.size > limit:
        return None
    data = bytearray(before.size)
    try:
        with path.open("rb") as file:
            if file.readinto(data) != len(data):
                return None
    except OSError:
        return None
    if not data.startswith(SQLITE_HEADER) or _at_rest(path) != before:
        return None
    return data


def _inode(path: Path) -> tuple[int, int] | None:
    """(device, inode): another name of the database this process writes (a hard link)
    is never read by open(), whose close would drop this process's locks on it."""
    stamp = file_stamp(path)
    return (stamp.dev, stamp.ino) if stamp else None


def _at_rest(path: Path) -> FileStamp | None:
    """The stamp of a database file that no connection has open: none has a WAL beside it
    (a WAL-mode file has one from its first open to its last close) nor a hot journal.
    None otherwise. Only stat(), never open()."""
    for suffix in ("-wal", "-journal"):
        if os.path.exists(f"{path}{suffix}"):
            return None
    return file_stamp(path)
