"""WAL checkpoints on a second connection and thread, for a long run of writes (`lh merge`).

A checkpoint copies the WAL's pages into the database file and syncs both: done by
the writer's own autocheckpoint it costs the writer ~1 ms of every 1,000-event file.
Here the writer's autocheckpoint is off while a thread with its own connection runs
PASSIVE checkpoints (they never block the writer nor wait for readers; sqlite3
releases the GIL inside them) after each commit, on the machine's other core.

The rule kept: the WAL stays bounded. It restarts from its start only when a write
transaction begins with every frame already copied, which a checkpoint racing the
next file never achieves; so once the thread finds `pages` frames in the WAL, it
checkpoints after every commit, and the writer copies the one file's frames the
thread's last checkpoint missed when the thread is idle, between its transactions;
the next one restarts the WAL. Past 4 × `pages` frames (the thread fell
behind on a busy machine, or never ran) the writer waits for the thread and copies
the rest: a bound that does not depend on how the threads are scheduled. The WAL
file's size is read with stat() (never open()); journal_size_limit cuts the file
back to 4 × `pages` frames at a restart, so it grows past that only with the WAL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from contextlib import closing

from .connection import BUSY_TIMEOUT_MS, main_file


class Checkpointer:
    """Checkpoints `conn`'s database in the background while `conn` writes."""

    def __init__(self, conn: sqlite3.Connection, pages: int, every: int) -> None:
        self.conn = conn
        self.every = every
        self._commits = 0  # since the last checkpoint asked for
        self._count = 0  # commits in all
        self._began = 0  # _count when the thread's last checkpoint began
        self._frames = 0  # frames in the WAL when the thread's last checkpoint began
        self._pages = pages
        self._wake = threading.Condition()
        self._pending = False  # a checkpoint asked for and not yet started
        self._running = False
        self._stop = False
        path = main_file(conn)
        frame = conn.execute("PRAGMA page_size").fetchone()[0] + 24
        self._wal = f"{path}-wal"
        self._hard = 4 * pages * frame  # bytes of WAL
        # sqlite3.connect, never our connect(): that reads the file's header with
        # open(), and closing it would drop this process's locks on the file.
        self._other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._other.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._saved = [
            (name, conn.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("wal_autocheckpoint", "journal_size_limit")
        ]
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # The first commit after a restart truncates a WAL file longer than that: the
        # file grows past it only when the WAL holds more (it never shrinks otherwise;
        # 0 here would cost ~0.35 ms of CPU a file growing the file again).
        conn.execute(f"PRAGMA journal_size_limit = {self._hard}")
        self._thread = threading.Thread(target=self._run, name="lh-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Call between transactions, after each commit."""
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            size = 0
        with self._wake:
            self._count += 1
            outgrown = size > self._hard
            if outgrown:  # the thread fell behind: wait for it, then copy the rest
                while self._busy():
                    self._wake.wait(0.1)
            due = outgrown or self._frames >= self._pages
            # The writer copies what the thread has not only when the thread is idle and
            # began its last checkpoint after the previous commit: one file's frames.
            # (Copying whatever the last `every` files left cost the writer ~2,000 frames
            # at each restart, 0.7 ms of every file's time.)
            catch_up = due and not self._busy() and (outgrown or self._count - self._began <= 1)
            if catch_up:
                self._frames = 0
            else:
                self._commits += 1
                if due or self._commits >= self.every:  # due: after every commit until then
                    self._commits = 0
                    self._pending = True
                    self._wake.notify_all()
        if catch_up:  # the other thread is idle: copy the tail so the WAL restarts
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _busy(self) -> bool:
        return (self._running or self._pending) and self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread, give `conn` its settings back (its close, or the next
        commit, copies what is left)."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        self._thread.join()
        self._other.close()
        for name, value in self._saved:
            self.conn.execute(f"PRAGMA {name} = {value}")

    def _run(self) -> None:
        with closing(self._other.cursor()) as cursor:
            while True:
                with self._wake:
                    while not (self._pending or self._stop):
                        self._wake.wait()
                    if self._stop:
                        return
                    self._pending, self._running = False, True
                    self._began = self._count
                frames = self._pages  # busy (another checkpointer): the writer copies
                with contextlib.suppress(sqlite3.Error):
                    _busy, frames, _copied = cursor.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                with self._wake:
                    self._running = False
                    self._frames = frames
                    self._wake.notify_all()
