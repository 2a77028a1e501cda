"""One loop per session: an flock on `$LEHARNESS_HOME/locks/<session_id>.lock`.

The app takes it when it opens a session to run (one-shot and interactive)
and the kernel drops it when the process ends, even by SIGKILL, so a crash
never leaves a stale lock. A second `lh` on the same session refuses at once
with the holder's pid (exit 2) instead of interleaving two loops, which would
also let its crash recovery mark the first one's running tool calls as
interrupted. A subagent's session is run by its parent's process, so resuming
it while that parent runs is refused too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from leharness.errors import UserError


class SessionLock:
    """A held lock; released by `release()` or when the process ends."""

    def __init__(self, handle: IO[str], session_id: str) -> None:
        self.handle = handle
        self.session_id = session_id

    def release(self) -> None:
        _HELD.pop(self.handle.name, None)
        if not self.handle.closed:
            self.handle.close()


# Locks this process holds, by lock file. The interactive session keeps the
# lock of every session it opened (their background tasks may still run here),
# and opening one of them again (/resume) gets the same lock back: a second
# flock from this process would refuse it as "in use by another lh".
_HELD: dict[str, SessionLock] = {}


def release_all() -> None:
    """Let go of every session this process holds (the interactive session ends)."""
    for lock in list(_HELD.values()):
        lock.release()


def lock_path(home: Path, session_id: str) -> Path:
    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{session_id}.lock"


def acquire(home: Path, session_id: str, ancestors: Sequence[str] = ()) -> SessionLock:
    """Lock `session_id` for this process, or raise UserError naming who holds it."""
    for parent in ancestors:
        holder = holder_pid(home, parent)
        if holder is not None:
            raise UserError(
                f"session {session_id} is a subagent of {parent}, which another lh process "
                f"(pid {holder}) is running: wait for it to finish"
            )
    path = lock_path(home, session_id)
    if str(path) in _HELD:
        return _HELD[str(path)]
    handle = open(path, "a+")  # noqa: SIM115 (held for the run)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise UserError(
            f"session {session_id} is in use by another lh process (pid {holder}): wait for "
            f"it to finish, or branch it with `lh fork {session_id}`"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    lock = _HELD[str(path)] = SessionLock(handle, session_id)
    return lock


def holder_pid(home: Path, session_id: str) -> str | None:
    """The pid holding `session_id`'s lock, or None when nobody does."""
    path = home / "locks" / f"{session_id}.lock"
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "unknown"
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
    return None
