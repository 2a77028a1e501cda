"""Going back: the workspace files as they were at an event of a session, from its checkpoints.

`plan` works out, for every file the session changed after event N, what it
held at N (`target`), what lh last left in it (`left`) and what it holds now;
a file whose content is neither what lh left nor the target was changed
outside lh since, and `apply` leaves it alone. `unified_diff` shows a plan as
`git diff` would. Reading is separate from writing: `plan` changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from leharness.store import StoreError

from . import checkpoints
from .paths import Confined, from_argument, write_atomically


@dataclass(frozen=True)
class FileState:
    """One file's content at a point (None: the file does not exist)."""

    data: bytes | None

    @property
    def sha256(self) -> str | None:
        return None if self.data is None else hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class FileChange:
    path: Path
    target: FileState  # what it held at event N
    left: FileState  # what the session's last change left in it
    current: FileState  # what it holds now

    @property
    def outside(self) -> bool:
        """Changed since by something other than lh (and not already back at the target)."""
        return self.current.sha256 not in (self.left.sha256, self.target.sha256)

    @property
    def needed(self) -> bool:
        return self.current.sha256 != self.target.sha256


def plan(conn: sqlite3.Connection, home: Path, session_id: str, at: int) -> list[FileChange]:
    """Every file the session changed after event `at`, with its content then, as lh
    left it, and now. Changes nothing."""
    first: dict[Path, FileState] = {}  # content before the earliest change after `at`
    last: dict[Path, FileState] = {}  # content after the latest one
    rows = conn.execute(
        "SELECT kind, path, before, after, git_dir FROM checkpoints "
        "WHERE session_id = ? AND session_seq > ? ORDER BY session_seq",
        (session_id, at),
    ).fetchall()
    for kind, path, before, after, git_dir in rows:
        for name, old, new in _changes(home, kind, path, before, after, git_dir):
            first.setdefault(name, old)
            last[name] = new
    return [FileChange(p, first[p], last[p], _current(p)) for p in sorted(first)]


def _changes(home: Path, kind: str, path: str, before: str | None, after: str, git_dir: str | None):
    if kind == "file":
        old = FileState(_blob(home, before, path) if before else None)
        yield Path(from_argument(path)), old, FileState(_blob(home, after, path))
        return
    repo, top = Path(git_dir or ""), Path(path)
    for name in checkpoints.changed_paths(repo, before or "", after):
        yield (
            top / name,
            FileState(checkpoints.tree_blob(repo, before or "", name)),
            FileState(checkpoints.tree_blob(repo, after, name)),
        )


def _blob(home: Path, sha256: str, path: str) -> bytes:
    try:
        return checkpoints.read_blob(home, sha256)
    except OSError:
        where = checkpoints.blob_path(home, sha256)
        raise StoreError(
            f"the checkpoint of {path} ({where}) is missing: cannot rewind it"
        ) from None


def _current(path: Path) -> FileState:
    try:
        return FileState(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return FileState(None)


@dataclass
class Applied:
    restored: list[Path]
    skipped: list[Path]  # changed outside lh since: left as they are


def apply(changes: list[FileChange]) -> Applied:
    """Put every file back to its target, except those changed outside lh."""
    done = Applied([], [])
    for change in changes:
        if change.outside:
            done.skipped.append(change.path)
        elif change.needed:
            if change.target.data is None:
                change.path.unlink(missing_ok=True)
            else:
                _write(change.path, change.target.data)
            done.restored.append(change.path)
    return done


def _write(path: Path, data: bytes) -> None:
    """Replace `path` as write_file does (a temporary file in its folder, fsynced, the
    file's mode kept; a file that is gone comes back with the default mode)."""
    from .files import _default_mode

    path = path.resolve() if path.is_symlink() else path  # write through a link, keep it
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(Confined(path.parent, path, str(path)), data, _default_mode())


def unified_diff(path: Path, old: FileState, new: FileState, root: Path | None = None) -> str:
    """`git diff`-style text from `old` to `new` (a line for binary files)."""
    name = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
    if old.data is not None and new.data is not None and old.data == new.data:
        return ""
    before, after = _lines(old.data), _lines(new.data)
    if before is None or after is None:
        return f"Binary files a/{name} and b/{name} differ\n"
    head_a = f"a/{name}" if old.data is not None else "/dev/null"
    head_b = f"b/{name}" if new.data is not None else "/dev/null"
    lines = difflib.unified_diff(before, after, head_a, head_b)
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)  # fmt: skip
    return f"diff --lh a/{name} b/{name}\n{text}"


def _lines(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


def session_diff(
    conn: sqlite3.Connection, home: Path, session_id: str, at: int = 0, root: Path | None = None
) -> str:
    """What the session changed in the workspace after event `at` (0: everything)."""
    return "".join(unified_diff(c.path, c.target, c.left, root) for c in plan(
        conn, home, session_id, at))  # fmt: skip
