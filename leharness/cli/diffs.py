"""Diffs the terminal shows: of a write_file call, of an edit_file call before it runs, and
the +/- line counts that summarise them (so a summary always matches its diff)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

MAX_PREVIEW_BYTES = 1 << 20  # files larger than this get no diff, only a summary


def write_diff(path: str, before: str | None, after: str) -> list[str]:
    """The unified diff write_file makes, from the old content and its `content` argument."""
    lines = difflib.unified_diff(
        (before or "").splitlines(),
        after.splitlines(),
        "/dev/null" if before is None else f"a/{path}",
        f"b/{path}",
        lineterm="",
    )
    return list(lines)


def read_before(file: Path) -> str | Literal[False] | None:
    """The file's text (None: it does not exist; False: too large or unreadable)."""
    try:
        if file.stat().st_size > MAX_PREVIEW_BYTES:
            return False
        return file.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return False


def planned_diff(name: str, arguments: dict, cwd: Path) -> list[str]:
    """The diff a write_file / edit_file call would make if it ran now ([] when unknown:
    the tool itself will say what is wrong)."""
    path = arguments.get("path")
    if not isinstance(path, str) or name not in ("write_file", "edit_file"):
        return []
    before = read_before(cwd / Path(path).expanduser())
    if before is False:
        return []
    if name == "write_file":
        content = arguments.get("content")
        return write_diff(path, before, content) if isinstance(content, str) else []
    old, new = arguments.get("old_string"), arguments.get("new_string")
    if not isinstance(before, str) or not isinstance(old, str) or not isinstance(new, str):
        return []
    if not old or before.count(old) != 1:
        return []
    return write_diff(path, before, before.replace(old, new, 1))


def diff_counts(lines: list[str]) -> tuple[int, int]:
    """(added, removed) lines of a unified diff; the ---/+++ headers before a hunk are not
    lines of the file (a changed line reading `++x` is)."""
    added = removed = 0
    in_hunk = False
    for line in lines:
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            added += 1
        elif in_hunk and line.startswith("-"):
            removed += 1
        elif not line.startswith((" ", "\\")):
            in_hunk = False  # the header of the next file
    return added, removed


def counts_summary(lines: list[str]) -> str:
    """`+3 -1 lines`: what a diff changes, in its own counting."""
    added, removed = diff_counts(lines)
    return f"+{added} -{removed} line{'s' if added + removed != 1 else ''}"
