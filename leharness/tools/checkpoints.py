"""Checkpoints: what a file looked like before lh changed it, so a session can be rewound.

- write_file and edit_file: the file's bytes before and after are kept
  content-addressed (by sha256, so each distinct content is stored once) in
  `$LEHARNESS_HOME/artifacts/checkpoints/`, and `checkpoint.file` records both hashes.
- bash, in a git work tree: the tracked and untracked-not-ignored files are
  snapshotted before and after the command into a git directory of lh's own
  (`$LEHARNESS_HOME/snapshots/<work tree hash>`), never the project's `.git`;
  when the command changed anything, `checkpoint.tree` records both tree ids.

A checkpoint that cannot be taken (disk full, no git) never fails the tool:
the tool's own work matters more than the ability to undo it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from leharness.store import home_dir, replace_file
from leharness.store.connection import FileStamp, file_stamp
from leharness.store.events import FileCheckpoint, TreeCheckpoint

from .base import Tool, ToolContext
from .paths import shown
from .procs import which

GIT_TIMEOUT_S = 60


def blobs_dir(home: Path) -> Path:
    return home / "artifacts" / "checkpoints"


def blob_path(home: Path, sha256: str) -> Path:
    return blobs_dir(home) / sha256[:2] / sha256


def keep(home: Path, data: bytes) -> str:
    """Store `data` once under its sha256; return the hash."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(home, digest)
    if path.exists():
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)
    return digest


def read_blob(home: Path, sha256: str) -> bytes:
    return blob_path(home, sha256).read_bytes()


# -- write_file and edit_file ---------------------------------------------------


@dataclass(frozen=True)
class Before:
    """A file as it was before a tool changed it (sha256 None: it did not exist)."""

    path: Path
    sha256: str | None
    home: Path


def before_change(ctx: ToolContext, path: Path, data: bytes | None = None) -> Before | None:
    """Keep `path`'s current content (`data`, when the tool already read it); call right
    before a file tool writes it. None outside a recorded session."""
    if ctx.record is None:
        return None
    home = ctx.home or home_dir()
    try:
        if data is None and path.is_file():
            data = path.read_bytes()
        return Before(path, keep(home, data) if data is not None else None, home)
    except OSError:
        return None


def after_change(ctx: ToolContext, before: Before | None, data: bytes, tool: str) -> None:
    """Record `checkpoint.file` once the file holds `data`."""
    record = ctx.record
    if before is None or record is None:
        return
    try:
        after = keep(before.home, data)
    except OSError:
        return
    if after == before.sha256:
        return
    record(
        FileCheckpoint(
            path=shown(before.path),  # a name that is not UTF-8 as `\xNN`: events hold UTF-8
            before_sha256=before.sha256,
            after_sha256=after,
            call_id=ctx.call_id or None,
            tool=tool,
        )
    )


# -- bash in a git work tree ------------------------------------------------------


def git_available() -> bool:
    """Whether git is on PATH (every bash call asks: procs.which looks once per PATH)."""
    return which("git") is not None


def _git(*args: str, cwd: Path | None = None, stdin: bytes | None = None, **env: str) -> bytes:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        env={**clean, **env},
        check=True,
    )
    return result.stdout


def worktree_of(cwd: Path) -> Path | None:
    """The top of the git work tree holding `cwd`, or None (not one, or no git).

    git finds a repository at the first folder from `cwd` up that holds `.git` (lh runs
    git without GIT_* variables). With no such folder there is no work tree: no git is
    run (it cost ~4 ms on every bash call). With one, git's answer is kept while that
    `.git` is the same (inode and mtime: a `git init` over a broken one changes both)."""
    return _worktree_at(cwd, _first_git(Path(os.path.abspath(cwd))))


def _worktree_at(cwd: Path, found: Path | None) -> Path | None:
    """worktree_of(cwd), given the first folder from `cwd` up that holds `.git`."""
    if found is None or not git_available():
        return None
    try:
        dot_git = os.lstat(found / ".git")
    except OSError:
        return None
    key = (str(cwd), str(found), dot_git.st_ino, dot_git.st_mtime_ns)
    if key in _tops:
        return _tops[key]
    try:
        top = _git("rev-parse", "--show-toplevel", cwd=cwd).decode().strip()
    except (subprocess.SubprocessError, OSError):
        return None  # not kept: a broken `.git` may be mended
    _tops[key] = Path(top) if top else None
    return _tops[key]


_tops: dict[tuple[str, str, int, int], Path | None] = {}  # (cwd, .git's folder, ino, mtime)


def _first_git(folder: Path) -> Path | None:
    """The first folder from `folder` up that holds a `.git` (a folder or a file)."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


def snapshot_dir(home: Path, worktree: Path) -> Path:
    digest = hashlib.sha256(str(worktree).encode()).hexdigest()[:16]
    return home / "snapshots" / digest


def snapshot(git_dir: Path, worktree: Path, home: Path | None = None) -> str:
    """A tree id of the work tree's tracked and untracked-not-ignored files, written into
    `git_dir` (created on first use). The project's own repository is only read; lh's
    home, when it lies inside the work tree (`.leharness/`), is left out.

    Every bash call takes two, so each git run counts (~4 ms). What lh's own index held
    after the last snapshot in this process, and that index's tree, are kept with the
    index file's identity (inode, times, size: git replaces the file whenever it writes
    it). While the file is the same, that list stands in for `git ls-files` and, when
    `update-index` found nothing to change (it then leaves the file alone), that tree for
    `git write-tree`: a call that changed nothing runs two git processes, not four."""
    if not (git_dir / "HEAD").exists():
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", str(git_dir))
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=worktree)
    wanted = {name for name in listed.split(b"\0") if name}
    if home is not None and home.is_relative_to(worktree):
        inside = os.fsencode(home.relative_to(worktree)) + b"/"
        wanted = {name for name in wanted if not name.startswith(inside)}

    def ours(*args: str, stdin: bytes | None = None) -> bytes:
        """git on lh's own index of the work tree, in `git_dir`."""
        return _git(*args, cwd=worktree, stdin=stdin,
                    GIT_DIR=str(git_dir), GIT_WORK_TREE=str(worktree))  # fmt: skip

    index = git_dir / "index"
    kept = _kept.get(str(git_dir))
    if kept is not None and kept.index == file_stamp(index):
        indexed = kept.names  # it holds at most these: --remove dropped any that vanished
    else:
        kept = None
        indexed = {name for name in ours("ls-files", "-z").split(b"\0") if name}
    gone = indexed - wanted
    if gone:
        ours("update-index", "-z", "--force-remove", "--stdin",
             stdin=b"\0".join(sorted(gone)) + b"\0")  # fmt: skip
    if wanted:
        ours("update-index", "-z", "--add", "--remove", "--stdin",
             stdin=b"\0".join(sorted(wanted)) + b"\0")  # fmt: skip
    identity = file_stamp(index)
    if kept is not None and identity == kept.index and not gone:
        return kept.tree  # the index file was not rewritten: its tree is the same
    tree = ours("write-tree").decode().strip()
    identity = file_stamp(index)  # write-tree writes the index too (its cached trees)
    _kept.pop(str(git_dir), None)
    if identity is not None and len(wanted) <= KEPT_NAMES:
        _kept[str(git_dir)] = _Kept(identity, wanted, tree)
    return tree


KEPT_NAMES = 50_000  # a larger work tree's list is not kept in memory (ls-files asks again)


@dataclass(frozen=True)
class _Kept:
    index: FileStamp | None  # the index file's stamp right after the snapshot
    names: set[bytes]  # every path the index can hold
    tree: str


_kept: dict[str, _Kept] = {}  # per git_dir


def changed_paths(git_dir: Path, before: str, after: str) -> list[str]:
    """Paths (relative to the work tree) whose content differs between two trees."""
    out = _git("diff-tree", "-r", "-z", "--name-only", "--no-renames", before, after,
               GIT_DIR=str(git_dir))  # fmt: skip
    return [name.decode("utf-8", "surrogateescape") for name in out.split(b"\0") if name]


def tree_blob(git_dir: Path, tree: str, path: str) -> bytes | None:
    """The content of `path` in `tree`, or None when the tree has no such file."""
    try:
        return _git("cat-file", "blob", f"{tree}:{path}", GIT_DIR=str(git_dir))
    except subprocess.CalledProcessError:
        return None


def checkpointed(tool: Tool) -> Tool:
    """`tool` (bash) with a work-tree snapshot before and after each call; a change
    between the two is recorded as `checkpoint.tree`."""

    async def run(args: Any, ctx: ToolContext) -> str:
        record = ctx.record
        # no `.git` from the folder up (a stat per folder, on the loop): no work tree, and
        # no thread hop (~0.7 ms) to ask git
        found = _first_git(Path(os.path.abspath(ctx.cwd))) if record is not None else None
        worktree = await asyncio.to_thread(_worktree_at, ctx.cwd, found) if found else None
        if record is None or worktree is None:
            return await tool.run(args, ctx)
        home = (ctx.home or home_dir()).resolve()
        git_dir = snapshot_dir(home, worktree)
        before = await _try_snapshot(git_dir, worktree, home)
        try:
            return await tool.run(args, ctx)
        finally:
            after = await _try_snapshot(git_dir, worktree, home) if before else None
            if before and after and after != before:
                record(
                    TreeCheckpoint(
                        worktree=str(worktree),
                        git_dir=str(git_dir),
                        before_tree=before,
                        after_tree=after,
                        call_id=ctx.call_id or None,
                        tool=tool.name,
                    )
                )

    return replace(tool, run=run)


async def _try_snapshot(git_dir: Path, worktree: Path, home: Path) -> str | None:
    try:
        return await asyncio.to_thread(snapshot, git_dir, worktree, home)
    except (subprocess.SubprocessError, OSError):
        return None
