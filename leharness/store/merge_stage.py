"""Reading the next file of `lh merge` on another thread while the merge writes this one.

Attaching a source file costs the merge connection ~1.4 ms of its ~10 a file, most of
it SQLite parsing the file's ~50 triggers. A stager thread reads the next file whole
(while no connection has it open: no WAL, no hot journal, unchanged from before the
read to after it, so the bytes are one consistent state of the file) into its own
in-memory connection, reads its schema there, and serializes it again without its
triggers, views and virtual tables. The merge then deserializes those bytes as its
`src` (tables, indexes and rows only: ~0.2 ms) and copies from them as from the file.

The rule kept: staging only ever saves time. A file it cannot stage (in use, too big,
not SQLite, any SQLite error) comes out as None and the merge attaches the file as
before, which gives the same clear errors. At most one staged file waits ahead of the
merge (and files over STAGE_LIMIT bytes are not staged), so memory stays flat.
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

from .connection import FileStamp, StoreError, file_stamp
from .merge_copy import FileSchema, SourceCounts, count_source, read_schema
from .trials import TrialRow, trial_of

STAGE_LIMIT = 16 * 1024 * 1024  # bytes of one source file; bigger ones are attached
_HEADER = b"SQLite format 3\x00"
_STRIP = (
    "DELETE FROM sqlite_master WHERE type IN ('trigger', 'view') "
    "OR sql LIKE 'CREATE VIRTUAL TABLE%'"
)


@dataclass(frozen=True)
class Staged:
    """One file's pages, ready to deserialize, and what its schema told the stager."""

    data: bytes
    version: int  # PRAGMA user_version
    schema: FileSchema  # read before its triggers were left out
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
        for path in self._paths:
            try:
                staged = None if _inode(path) == self._target else stage(path, self._limit)
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


def stage(path: Path, limit: int) -> Staged | None:
    """The file's pages without its triggers, views and virtual tables, or None."""
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
    if not data.startswith(_HEADER) or _at_rest(path) != before:
        return None
    data[18] = data[19] = 1  # a WAL-mode file's header: read it as a rollback-mode one
    try:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            conn.deserialize(data)
            del data
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            schema = read_schema(conn, "main")
            counts = count_source(conn, "main")
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute(_STRIP)
            conn.execute("PRAGMA writable_schema = OFF")
            return Staged(conn.serialize(), version, schema, counts)
        finally:
            conn.close()
    except (sqlite3.Error, StoreError, MemoryError):
        return None


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
