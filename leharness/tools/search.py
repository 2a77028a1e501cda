"""Finding files and text: `list_files` (glob) and `grep` (regex), both bounded.

Both skip the folders nobody wants searched (.git, virtualenvs, caches and
the harness's own home) and binary files, and say when they cut a long list.
Both stay inside the folders the session may use: the starting folder is
confined, and a match whose symlink leads outside is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .base import Tool, ToolContext, ToolError
from .paths import allowed_roots, confine, inside

SKIPPED = {".git", ".venv", "venv", "node_modules", "__pycache__", ".leharness", ".mypy_cache"}
MAX_FILES = 500
MAX_LINE = 300


class ListFilesArgs(BaseModel):
    """List files matching a glob pattern (e.g. "**/*.py"), relative to a folder."""

    model_config = ConfigDict(extra="forbid")
    pattern: str = Field("**/*", description="Glob pattern; ** matches any folders.")
    path: str = Field(".", description="Folder to search from, relative to the working directory.")


class GrepArgs(BaseModel):
    """Search file contents with a Python regular expression; results are file:line:text."""

    model_config = ConfigDict(extra="forbid")
    pattern: str = Field(description="Python regular expression.")
    path: str = Field(".", description="File or folder to search.")
    glob: str | None = Field(None, description='Only files matching this glob, e.g. "*.py".')
    ignore_case: bool = False
    max_results: int = Field(200, ge=1, le=2000)


def _root(ctx: ToolContext, path: str) -> Path:
    root = confine(ctx, path)
    if not root.exists():
        raise ToolError(f"{path} does not exist (relative to {ctx.cwd})")
    return root


def _walk(ctx: ToolContext, root: Path, pattern: str) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    roots = allowed_roots(ctx)
    for candidate in sorted(root.glob(pattern)):
        relative = candidate.relative_to(root).parts
        if SKIPPED.intersection(relative) or not candidate.is_file():
            continue
        if inside(candidate, roots):  # else a symlink leads out of the allowed folders
            yield candidate


def _shown(path: Path, ctx: ToolContext) -> str:
    try:
        return str(path.relative_to(ctx.cwd.resolve()))
    except ValueError:
        return str(path)


async def list_files(args: ListFilesArgs, ctx: ToolContext) -> str:
    root = _root(ctx, args.path)
    found = [_shown(path, ctx) for path in _walk(ctx, root, args.pattern)]
    if not found:
        return f"no files match {args.pattern!r} under {args.path}"
    more = len(found) - MAX_FILES
    lines = found[:MAX_FILES]
    if more > 0:
        lines.append(f"… {more} more files (narrow the pattern)")
    return "\n".join(lines)


async def grep(args: GrepArgs, ctx: ToolContext) -> str:
    try:
        regex = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
    except re.error as error:
        raise ToolError(f"invalid regular expression {args.pattern!r}: {error}") from None
    root = _root(ctx, args.path)
    results: list[str] = []
    for path in _walk(ctx, root, f"**/{args.glob}" if args.glob else "**/*"):
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if regex.search(line):
                text = line if len(line) <= MAX_LINE else line[:MAX_LINE] + "…"
                results.append(f"{_shown(path, ctx)}:{number}:{text}")
                if len(results) >= args.max_results:
                    results.append(f"… stopped at {args.max_results} matches (narrow the search)")
                    return "\n".join(results)
    return "\n".join(results) if results else f"no matches for {args.pattern!r}"


LIST_FILES = Tool(name="list_files", args=ListFilesArgs, run=list_files, read_only=True)
GREP = Tool(name="grep", args=GrepArgs, run=grep, read_only=True)
