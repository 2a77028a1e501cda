"""Finding files and text: `list_files` (glob) and `grep` (regex), both run by ripgrep.

ripgrep (the `rg` binary the PyPI package `ripgrep` installs) streams files
instead of reading them whole, has no catastrophic backtracking, skips binary
files and respects `.gitignore` (also outside a git repository). It runs as a
child process: a search has a time limit (SEARCH_TIMEOUT_S) and a cancelled
call kills it. Both tools skip the folders nobody wants searched (.git,
virtualenvs, caches, the harness's own home) and say when they cut a long
list. Both stay inside the folders the session may use: the starting folder
is confined, and a match whose symlink leads outside is skipped. Names that
are not UTF-8 are shown escaped (tools/paths.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import subprocess
import sysconfig
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .base import Tool, ToolContext, ToolError
from .paths import Confined, allowed_roots, harness_home, inside, locate, shown
from .procs import which

SKIPPED = {".git", ".venv", "venv", "node_modules", "__pycache__", ".leharness", ".mypy_cache"}
MAX_FILES = 500
MAX_LINE = 300
SEARCH_TIMEOUT_S = 30.0
_PREVIEW_END = b" [... omitted end of long line]"
_STDERR_KEPT = 4096


class ListFilesArgs(BaseModel):
    """List files matching a glob pattern (e.g. "**/*.py"), relative to a folder.

    Files that .gitignore excludes are left out."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    pattern: str = Field("**/*", description="Glob pattern; ** matches any folders.")
    path: str = Field(".", description="Folder to search from, relative to the working directory.")


class GrepArgs(BaseModel):
    """Search file contents with a regular expression; results are file:line:text.

    The syntax is Python's (classes, groups, \\b, (?i)…) without look-around
    and backreferences. Files that .gitignore excludes and binary files are
    skipped."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    pattern: str = Field(description="Regular expression.")
    path: str = Field(".", description="File or folder to search.")
    glob: str | None = Field(None, description='Only files matching this glob, e.g. "*.py".')
    ignore_case: bool = False
    max_results: int = Field(200, ge=1, le=2000)


def rg_path() -> str:
    """The ripgrep binary: the one installed with leharness, else one on PATH."""
    found = _rg_beside() or which("rg")
    if found is None:
        raise ToolError(
            "ripgrep (rg) is not installed; reinstall leharness (it depends on the "
            "`ripgrep` package) or install rg",
            "missing_program",
        )
    return found


@functools.cache
def _rg_beside() -> str | None:
    """The rg installed with leharness (looked up once: sysconfig takes ~0.3 ms a call)."""
    beside = Path(sysconfig.get_path("scripts")) / "rg"
    return str(beside) if beside.exists() else None


def _root(ctx: ToolContext, path: str) -> Confined:
    where = locate(ctx, path)
    target = where.target
    if not target.exists():
        raise ToolError(f"{path} does not exist (relative to {shown(ctx.cwd)})")
    if not target.is_dir() and not target.is_file():
        kind = "a FIFO (named pipe)" if target.is_fifo() else "not a regular file or a folder"
        raise ToolError(f"{path} is {kind}; searching it could wait forever", "not_a_file")
    return where


def _common_args() -> list[str]:
    args = ["--no-config", "--hidden", "--follow", "--no-require-git", "--sort", "path"]
    for name in sorted(SKIPPED):
        args += ["--glob", f"!{name}"]
    return args


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as pathlib reads it (`*` stays in one folder, `**` is any folders), as a regex
    over `/`-separated relative paths. Not rg's --glob: a glob there overrides .gitignore."""
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    pieces = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            pieces.append(".*" if last else "(?:[^/]*/)*")
            continue
        pieces.append(_component(part) + ("" if last else "/"))
    return re.compile("".join(pieces) + r"\Z", re.DOTALL)


def _component(part: str) -> str:
    out, index = [], 0
    while index < len(part):
        char = part[index]
        closing = part.find("]", index + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif closing != -1:
            body = part[index + 1 : closing]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            index = closing
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def _run_in(where: Confined) -> tuple[Path, list[str]]:
    """(folder rg runs in, paths to give it): a folder is searched from inside itself."""
    if where.target.is_dir():
        return where.target, []
    return where.target.parent, [where.target.name]


class _Kept:
    """A filter for what rg found: inside the allowed folders, not in the harness's home."""

    def __init__(self, ctx: ToolContext, base: Path) -> None:
        self.base = base
        self.roots = allowed_roots(ctx)
        home = harness_home(ctx)
        # what rg prints (paths relative to base) starts with this when it is in the home
        self.home_prefix = (
            os.fsdecode(home.relative_to(base)) + "/"
            if home is not None and home != base and home.is_relative_to(base)
            else None
        )

    def in_home(self, name: str) -> bool:
        return self.home_prefix is not None and name.startswith(self.home_prefix)

    def __call__(self, name: str) -> bool:
        # resolving costs ~50 µs: only for what is shown, never for what is only counted
        return not self.in_home(name) and inside(self.base / name, self.roots)


def _shown(path: Path, ctx: ToolContext) -> str:
    try:
        return shown(path.relative_to(ctx.cwd.resolve()))
    except ValueError:
        return shown(path)


async def _records(
    argv: list[str], cwd: Path, separator: bytes, stop: Callable[[], bool]
) -> AsyncGenerator[bytes, None]:
    """rg's output records; rg is killed at the time limit, on a cancel, or once `stop()`."""
    proc = await asyncio.create_subprocess_exec(
        rg_path(),
        *argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(_head(proc.stderr))
    try:
        pending = b""
        while chunk := await proc.stdout.read(65536):
            *complete, pending = (pending + chunk).split(separator)
            for record in complete:
                yield record
                if stop():
                    return
        if pending:
            yield pending
        await proc.wait()
        message = (await errors).decode("utf-8", "replace").strip()
        if proc.returncode == 2 and "regex parse error" in message:
            detail = " ".join(line.strip() for line in message.splitlines()[1:])
            raise ToolError(f"invalid regular expression: {detail}", "bad_pattern")
    finally:
        errors.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _head(stream: asyncio.StreamReader) -> bytes:
    """The start of a stream, read to its end (so the writer never blocks on a full pipe)."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[:_STDERR_KEPT]
    return kept


async def _collect(records: AsyncGenerator[bytes, None], take: Callable[[bytes], None]) -> bool:
    """Feed every record to `take`; False if the time limit cut the search short."""
    try:
        async with asyncio.timeout(SEARCH_TIMEOUT_S):
            async for record in records:
                take(record)
    except TimeoutError:
        return False
    finally:
        await records.aclose()
    return True


async def list_files(args: ListFilesArgs, ctx: ToolContext) -> str:
    where = _root(ctx, args.path)
    base, paths = _run_in(where)
    kept = _Kept(ctx, base)
    argv = [*_common_args(), "--files", "--null"]
    wanted = glob_regex(args.pattern)
    found: list[str] = []
    more = 0

    def take(record: bytes) -> None:
        nonlocal more
        name = os.fsdecode(record)
        if not record or not (paths or wanted.match(name)):
            return
        if len(found) >= MAX_FILES:
            more += not kept.in_home(name)
        elif kept(name):
            found.append(_shown(base / name, ctx))

    complete = await _collect(_records([*argv, "--", *paths], base, b"\0", lambda: False), take)
    if not found:
        note = "" if complete else f" (the search stopped after {SEARCH_TIMEOUT_S:g} s)"
        return f"no files match {args.pattern!r} under {args.path}{note}"
    if more > 0:
        found.append(f"… {more} more files (narrow the pattern)")
    if not complete:
        found.append(f"… the search stopped after {SEARCH_TIMEOUT_S:g} s (narrow the path)")
    return "\n".join(found)


def _match_line(record: bytes) -> tuple[str, str, str] | None:
    """(file, line number, text) of one `path NUL number:text` line of rg's output."""
    name, nul, rest = record.partition(b"\0")
    number, colon, text = rest.partition(b":")
    if not nul or not colon or not number.isdigit():
        return None  # a note such as "binary file matches"
    cut = text.endswith(_PREVIEW_END)
    line = text.removesuffix(_PREVIEW_END).rstrip(b"\r").decode("utf-8", "replace")
    if cut or len(line) > MAX_LINE:
        line = line[:MAX_LINE] + "…"
    return os.fsdecode(name), number.decode(), line


async def grep(args: GrepArgs, ctx: ToolContext) -> str:
    where = _root(ctx, args.path)
    base, paths = _run_in(where)
    kept = _Kept(ctx, base)
    argv = [*_common_args(), "--line-number", "--with-filename", "--null", "--no-heading"]
    argv += ["--color", "never", "--max-columns", str(4 * MAX_LINE), "--max-columns-preview"]
    if args.ignore_case:
        argv.append("--ignore-case")
    wanted = glob_regex(f"**/{args.glob}") if args.glob else None
    results: list[str] = []

    def take(record: bytes) -> None:
        match = _match_line(record)
        if match is None or len(results) >= args.max_results:
            return
        name, number, text = match
        if (wanted is None or wanted.match(name)) and kept(name):
            results.append(f"{_shown(base / name, ctx)}:{number}:{text}")

    def full() -> bool:
        return len(results) >= args.max_results

    records = _records([*argv, "--regexp", args.pattern, "--", *paths], base, b"\n", full)
    complete = await _collect(records, take)
    if full():
        results.append(f"… stopped at {args.max_results} matches (narrow the search)")
    elif not complete:
        results.append(f"… the search stopped after {SEARCH_TIMEOUT_S:g} s (narrow the path)")
    return "\n".join(results) if results else f"no matches for {args.pattern!r}"


LIST_FILES = Tool(name="list_files", args=ListFilesArgs, run=list_files, read_only=True)
GREP = Tool(name="grep", args=GrepArgs, run=grep, read_only=True)
