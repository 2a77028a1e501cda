"""What a project says about itself: its root folder and its instruction files.

The repository root is the nearest folder, from the working directory up, that
holds `.git` (no git subprocess; none found: the working directory stands
alone). Project instructions are the `AGENTS.md` of every folder from that root
down to the working directory (`CLAUDE.md` where a folder has no AGENTS.md),
root first so that the nearest file speaks last. Nothing here writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")  # per folder, the first one present is used
MAX_INSTRUCTION_CHARS = 32_000  # all files together; the rest is cut with a note


def repo_root(cwd: Path) -> Path | None:
    """The nearest folder from `cwd` up that holds `.git` (a folder or a worktree's file)."""
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder
    return None


def project_folders(cwd: Path) -> list[Path]:
    """The repository root, the folders below it, down to `cwd` (just `cwd` outside a repo)."""
    cwd = cwd.resolve()
    root = repo_root(cwd)
    if root is None:
        return [cwd]
    below = [cwd, *cwd.parents]
    return list(reversed(below[: below.index(root) + 1]))


@dataclass(frozen=True)
class Instructions:
    """The project instructions as they enter the system prompt, and their sha256."""

    text: str = ""
    paths: tuple[Path, ...] = ()

    @property
    def hash(self) -> str | None:
        return hashlib.sha256(self.text.encode()).hexdigest() if self.text else None


def project_instructions(cwd: Path) -> Instructions:
    """Read AGENTS.md (or CLAUDE.md) from the repository root down to `cwd`."""
    parts: list[str] = []
    paths: list[Path] = []
    for folder in project_folders(cwd):
        path = _instruction_file(folder)
        if path is None:
            continue
        try:
            body = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue  # unreadable (permissions, a dangling link): as if absent
        if body:
            parts.append(f"## {path}\n\n{body}")
            paths.append(path)
    text = "\n\n".join(parts)
    if len(text) > MAX_INSTRUCTION_CHARS:
        text = text[:MAX_INSTRUCTION_CHARS] + f"\n[… cut at {MAX_INSTRUCTION_CHARS:,} characters]"
    return Instructions(text, tuple(paths))


def _instruction_file(folder: Path) -> Path | None:
    for name in INSTRUCTION_FILES:
        path = folder / name
        if path.is_file():
            return path
    return None
