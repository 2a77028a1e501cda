"""WAL checkpoints on a second connection and thread, for a long run of writes (`lh merge`).

A checkpoint copies the WAL's pages into the database file and syncs both: done by
the writer's own autocheckpoint it costs the writer ~1 ms of every 1,000-event file.
Here the writer's autocheckpoint is off while a thread with its own connection runs
PASSIVE checkpoints (they never block the writer nor wait for readers; sqlite3
releases the GIL inside them) after each commit, on the machine's other core.

The rule kept: the WAL stays bounded. It restarts from its start only when a write
transaction begins with every frame already copied, which a checkpoint racing the
next file never achieves; so once the WAL holds `pages` frames the writer copies the
last file's few frames itself, between its transactions, and the next one restarts it.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

from .connection import BUSY_TIMEOUT_MS


class Checkpointer:
    """Checkpoints `conn`'s database in the background while `conn` writes."""

    def __init__(self, conn: sqlite3.Connection, pages: int, every: int) -> None:
        self.conn = conn
        self.pages = pages
        self.every = every
        self._commits = 0
        self._frames = 0  # frames in the WAL at the last checkpoint's start
        self._wake = threading.Condition()
        self._pending = False  # a checkpoint asked for and not yet started
        self._running = False
        self._stop = False
        path = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
        # sqlite3.connect, never our connect(): that reads the file's header with
        # open(), and closing it would drop this process's locks on the file.
        self._other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._other.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._saved = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._thread = threading.Thread(target=self._run, name="lh-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Call between transactions, after each commit."""
        with self._wake:
            while self._frames >= self.pages * 4 and (self._running or self._pending):
                self._wake.wait()  # a checkpoint slower than the writes: wait for it
            if self._frames >= self.pages and not (self._running or self._pending):
                self._frames = 0
                catch_up = True
            else:
                catch_up = False
                self._commits += 1
                if self._commits >= self.every:
                    self._commits = 0
                    self._pending = True
                    self._wake.notify_all()
        if catch_up:  # the other thread is idle: copy the tail so the WAL restarts
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Stop the thread, give `conn` its autocheckpoint back (its close, or the next
        commit, copies what is left)."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        self._thread.join()
        self._other.close()
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {self._saved}")

    def _run(self) -> None:
        with closing(self._other.cursor()) as cursor:
            while True:
                with self._wake:
                    while not (self._pending or self._stop):
                        self._wake.wait()
                    if self._stop:
                        return
                    self._pending, self._running = False, True
                try:
                    _busy, frames, _copied = cursor.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                except sqlite3.Error:  # e.g. busy: the writer's own checkpoints bound the WAL
                    frames = self.pages
                with self._wake:
                    self._running = False
                    self._frames = max(frames, 0)
                    self._wake.notify_all()
