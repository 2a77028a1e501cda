"""The file tools: `read_file`, `write_file` and `edit_file`.

Relative paths are taken from the session's working directory, and every
path must resolve inside the folders the session may use (tools/paths.py),
which also opens it: through descriptors, without following a symlink, and
only when it is a regular file (a FIFO would block the read forever). Writes
are atomic (a temporary file in the same folder, then `os.replace`), so a
crash or a Ctrl-C never leaves half a file. Expected failures raise `ToolError`.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from leharness.tools import checkpoints
from leharness.tools.base import Tool, ToolContext, ToolError
from leharness.tools.paths import Confined, locate, open_for_reading, write_atomically

MAX_LINE_CHARS = 2000
MAX_READ_CHARS = 100_000  # a page stops early past this many characters
BINARY_SNIFF_BYTES = 8192
DIFF_CONTEXT = 3
MAX_DIFF_CHARS = 4000


def looks_binary(head: bytes) -> bool:
    return b"\0" in head


# -- read_file ----------------------------------------------------------------


class ReadFileArgs(BaseModel):
    """Read a text file, with line numbers, one page at a time.

    Each line is shown as `<number><TAB><text>`. The last line says which lines
    were shown and the `offset` to pass to read the next page. Lines longer than
    2000 characters are cut.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str = Field(description="File path, relative to the working directory or absolute.")
    offset: int = Field(1, ge=1, description="First line to show (1-based).")
    limit: int = Field(400, ge=1, le=2000, description="How many lines to show at most.")


def _physical_lines(handle: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(start of the line without its newline, whether it was cut) for each line.

    At most a little more than MAX_LINE_CHARS characters of a line are held in
    memory, however long the line is.
    """
    piece_bytes = 4 * MAX_LINE_CHARS + 4  # always decodes to more than MAX_LINE_CHARS chars
    while piece := handle.readline(piece_bytes):
        cut = not piece.endswith(b"\n")
        if cut:
            rest = piece
            while rest and not rest.endswith(b"\n"):
                rest = handle.readline(1024 * 1024)
            cut = len(piece) == piece_bytes
        yield piece.removesuffix(b"\n").removesuffix(b"\r"), cut


def _show(raw: bytes, cut: bool) -> tuple[str, bool]:
    """(the line as shown, whether it had bytes that are not UTF-8)."""
    text = raw.decode("utf-8", errors="replace")
    if cut or len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS]
        return f"{text} [... line cut at {MAX_LINE_CHARS} chars]", "\ufffd" in text
    return text, "\ufffd" in text and not _is_utf8(raw)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _open_for_reading(where: Confined) -> BinaryIO:
    handle = os.fdopen(open_for_reading(where), "rb")
    try:
        head = handle.read(BINARY_SNIFF_BYTES)
    except OSError as error:
        handle.close()
        raise ToolError(f"cannot read {where.argument}: {error.strerror}", "io_error") from None
    if looks_binary(head):
        handle.close()
        raise ToolError(
            f"{where.argument} looks binary (it has NUL bytes); inspect it with bash", "binary"
        )
    handle.seek(0)
    return handle


def _read_page(where: Confined, args: ReadFileArgs) -> str:
    shown: list[str] = []
    undecodable = False
    total = 0
    size = 0
    with _open_for_reading(where) as handle:
        for total, (raw, cut) in enumerate(_physical_lines(handle), start=1):
            if total < args.offset or len(shown) >= args.limit or size > MAX_READ_CHARS:
                continue
            text, bad = _show(raw, cut)
            undecodable = undecodable or bad
            shown.append(f"{total:6d}\t{text}")
            size += len(shown[-1]) + 1
    if total == 0:
        return f"{args.path} is empty (0 lines)"
    if args.offset > total:
        raise ToolError(
            f"offset {args.offset} is past the end of {args.path}, which has {total} lines",
            "past_end",
        )
    last = args.offset + len(shown) - 1
    footer = f"lines {args.offset}-{last} of {total}"
    footer += " (end of file)" if last >= total else f"; next offset: {last + 1}"
    if undecodable:
        footer += "\nnote: the file is not valid UTF-8; undecodable bytes are shown as \ufffd"
    return "\n".join([*shown, footer])


async def read_file(args: ReadFileArgs, ctx: ToolContext) -> str:
    return await asyncio.to_thread(_read_page, locate(ctx, args.path), args)


# -- write_file ---------------------------------------------------------------


class WriteFileArgs(BaseModel):
    """Create a file or replace its whole content; missing parent folders are created.

    To change part of an existing file, prefer edit_file.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str = Field(description="File path, relative to the working directory or absolute.")
    content: str = Field(description="The complete new content of the file.")


def _default_mode() -> int:
    """The mode a new file gets: 0o666 less the process umask (read without changing it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def _write(where: Confined, data: bytes) -> bool:
    """Write the file atomically; True if it was created."""
    try:
        return write_atomically(where, data, _default_mode())
    except OSError as error:
        reason = error.strerror or str(error)
        raise ToolError(f"cannot write {where.argument}: {reason}", "io_error") from None


async def write_file(args: WriteFileArgs, ctx: ToolContext) -> str:
    data = args.content.encode("utf-8", errors="surrogateescape")
    where = locate(ctx, args.path, write=True)
    before = checkpoints.before_change(ctx, where.target)
    created = _write(where, data)
    checkpoints.after_change(ctx, before, data, "write_file")
    return f"wrote {len(data)} bytes to {args.path} ({'created' if created else 'overwrote'})"


# -- edit_file ----------------------------------------------------------------


class EditFileArgs(BaseModel):
    """Replace one exact piece of text in an existing file.

    `old_string` must occur exactly once in the file (include a few lines of
    surrounding context to make it unique); it is matched literally, with its
    whitespace and indentation. `new_string` is inserted literally. Returns a
    diff of the change. To create a file or rewrite it whole, use write_file.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str = Field(description="File path, relative to the working directory or absolute.")
    old_string: str = Field(description="The exact text to replace; must occur exactly once.")
    new_string: str = Field(description="The text to put in its place.")


def _occurrences(text: str, old: str, stop: int = 1000) -> list[int]:
    """Start offsets of `old` in `text`, overlapping ones included (at most `stop`)."""
    found: list[int] = []
    start = text.find(old)
    while start != -1 and len(found) < stop:
        found.append(start)
        start = text.find(old, start + 1)
    return found


def _locate(text: str, args: EditFileArgs) -> tuple[int, str, str]:
    """(offset, old, new) of the one match; CRLF files also match LF-only strings."""
    old, new = args.old_string, args.new_string
    found = _occurrences(text, old)
    if not found and "\r\n" in text and "\n" in old and "\r\n" not in old:
        old, new = old.replace("\n", "\r\n"), new.replace("\r\n", "\n").replace("\n", "\r\n")
        found = _occurrences(text, old)
    if not found:
        raise ToolError(
            f"old_string was not found in {args.path}; read_file it and copy the text exactly "
            "(including whitespace and indentation)",
            "no_match",
        )
    if len(found) > 1:
        raise ToolError(
            f"old_string occurs {len(found)} times in {args.path}; include more surrounding "
            "context so that it matches exactly once",
            "ambiguous_match",
        )
    return found[0], old, new


def _diff(before: str, after: str, start: int, shown: str) -> str:
    """A unified diff of the lines around the change starting at character `start`."""
    old_lines = before.removesuffix("\n").split("\n")
    new_lines = after.removesuffix("\n").split("\n")
    first = max(before.count("\n", 0, start) - DIFF_CONTEXT, 0)
    tail = before.count("\n", start) - DIFF_CONTEXT  # unchanged lines kept out at the end
    old_window = old_lines[first : max(len(old_lines) - max(tail, 0), first)]
    new_window = new_lines[first : max(len(new_lines) - max(tail, 0), first)]
    diff = difflib.unified_diff(
        [line.removesuffix("\r") for line in old_window],
        [line.removesuffix("\r") for line in new_window],
        f"a/{shown}",
        f"b/{shown}",
        n=DIFF_CONTEXT,
        lineterm="",
    )
    text = "\n".join(_shift_hunk(line, first) for line in diff)
    if len(text) > MAX_DIFF_CHARS:
        text = text[:MAX_DIFF_CHARS] + "\n[... diff cut]"
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@$")


def _shift_hunk(line: str, offset: int) -> str:
    """Renumber a hunk header of a diff made on a window starting `offset` lines in."""
    match = _HUNK.match(line)
    if not match or not offset:
        return line
    old, old_len, new, new_len = match.groups()
    return f"@@ -{int(old) + offset}{old_len or ''} +{int(new) + offset}{new_len or ''} @@"


def _read_text(where: Confined) -> str:
    try:
        with os.fdopen(open_for_reading(where), "rb") as handle:
            return handle.read().decode("utf-8", errors="surrogateescape")
    except ToolError as error:
        if error.kind == "not_found":
            raise ToolError(
                f"file not found: {where.argument}; use write_file to create it", "not_found"
            ) from None
        raise
    except OSError as error:
        raise ToolError(f"cannot read {where.argument}: {error.strerror}", "io_error") from None


async def edit_file(args: EditFileArgs, ctx: ToolContext) -> str:
    if not args.old_string:
        raise ToolError("old_string is empty; use write_file to create or rewrite a file")
    if args.old_string == args.new_string:
        raise ToolError("old_string and new_string are the same; nothing would change")
    where = locate(ctx, args.path, write=True)
    before = _read_text(where)
    start, old, new = _locate(before, args)
    after = before[:start] + new + before[start + len(old) :]
    data = after.encode("utf-8", errors="surrogateescape")
    kept = checkpoints.before_change(ctx, where.target, before.encode("utf-8", "surrogateescape"))
    _write(where, data)
    checkpoints.after_change(ctx, kept, data, "edit_file")
    return f"edited {args.path}: replaced 1 occurrence\n{_diff(before, after, start, args.path)}"


READ_FILE = Tool(name="read_file", args=ReadFileArgs, run=read_file, read_only=True)
WRITE_FILE = Tool(name="write_file", args=WriteFileArgs, run=write_file, mutates=True)
EDIT_FILE = Tool(name="edit_file", args=EditFileArgs, run=edit_file, mutates=True)
