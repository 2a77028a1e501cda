"""Path confinement: file tools touch only the session's working tree and allowed folders.

A path argument is resolved (relative to the session's cwd, `~` expanded,
symlinks followed) and must then lie inside the cwd or one of the folders the
user allowed with `--allow-path`. Reading may also reach this harness's
artifacts and skills (the model is told to page through large outputs there);
nothing else of the harness's home (its database, locks, history, settings)
is reachable, and writing never reaches any of it.

What is checked is what is opened: the file is opened by walking from the
allowed folder one component at a time (`openat` with `O_NOFOLLOW`), so a
folder swapped for a symlink between the check and the open is an error,
never an escape. Names that are not UTF-8 are shown escaped (`\\xff`), as
Python's `backslashreplace` writes them, and such an escape in a path argument
names the raw byte again. bash is not confined here: the sandbox governs it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from leharness.store import home_dir

from .base import ToolContext, ToolError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")  # what backslashreplace writes
HOME_READABLE = ("artifacts", "skills")  # the parts of the home a tool may read


def shown(path: Path | str) -> str:
    """A path as text that is always valid UTF-8: undecodable bytes become `\\xNN`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def from_argument(text: str) -> str:
    """The path a tool argument names: `\\xNN` (NN >= 80) is the raw byte a listing showed."""
    if not _ESCAPED_BYTE.search(text):
        return text
    return _ESCAPED_BYTE.sub(lambda match: chr(0xDC00 + int(match.group(1), 16)), text)


def working_dir(ctx: ToolContext) -> Path:
    """The session's cwd, resolved; a clear ToolError when it was deleted."""
    if not ctx.cwd.is_dir():
        raise ToolError(
            f"the working directory {shown(ctx.cwd)} does not exist (was it deleted or "
            "moved?); tools cannot work there until it is back",
            "bad_cwd",
        )
    return ctx.cwd.resolve()


def harness_home(ctx: ToolContext) -> Path | None:
    try:
        return (ctx.home or home_dir()).resolve()
    except OSError:  # the process's own cwd is gone and no LEHARNESS_HOME is set
        return None


def allowed_roots(ctx: ToolContext, write: bool = False) -> list[Path]:
    roots = [working_dir(ctx), *(Path(p).expanduser().resolve() for p in ctx.allowed_paths)]
    home = harness_home(ctx)
    if not write and home is not None:
        roots += [home / name for name in HOME_READABLE]
    return roots


@dataclass(frozen=True)
class Confined:
    """A path a tool may use: the allowed folder it lies in and the path below it."""

    root: Path  # resolved, one of allowed_roots()
    target: Path  # resolved, absolute
    argument: str  # as the model wrote it (for messages)

    @property
    def parts(self) -> tuple[str, ...]:
        return self.target.relative_to(self.root).parts


def locate(ctx: ToolContext, path: str, write: bool = False) -> Confined:
    """Where `path` leads, if the session may touch it (else a ToolError saying why)."""
    raw = Path(ctx.cwd, Path(path).expanduser())
    if not os.path.lexists(raw):
        raw = Path(ctx.cwd, Path(from_argument(path)).expanduser())
    try:
        target = raw.resolve()
    except (RuntimeError, OSError) as error:  # a symlink loop, say
        raise ToolError(f"cannot resolve {path}: {error}", "bad_path") from None
    roots = [root for root in allowed_roots(ctx, write) if target.is_relative_to(root)]
    if not roots:
        allowed = ", ".join(shown(root) for root in allowed_roots(ctx, write))
        raise ToolError(
            f"{path} is outside the folders this session may use"
            + (f" (it resolves to {shown(target)})" if shown(target) != path else "")
            + f"; allowed: {allowed}. Work inside the working directory; the user can "
            "widen this with `lh --allow-path DIR`",
            "outside_workspace",
        )
    home = harness_home(ctx)
    if home is not None and _harness_data(target, home, roots, write):
        raise ToolError(
            f"{path} is inside lh's own folder {shown(home)} (its database, locks and "
            "artifacts); tools may not " + ("write there" if write else "read that"),
            "outside_workspace",
        )
    return Confined(max(roots, key=lambda root: len(root.parts)), target, path)


def _harness_data(target: Path, home: Path, roots: list[Path], write: bool) -> bool:
    """Inside the home, unless inside a folder of the session's own there (`lh demo`'s);
    reading may reach the artifacts and skills."""
    if not target.is_relative_to(home):
        return False
    readable = [home / name for name in HOME_READABLE]
    if any(root.is_relative_to(home) and root not in (home, *readable) for root in roots):
        return False
    return write or not any(target.is_relative_to(folder) for folder in readable)


def inside(path: Path, roots: list[Path]) -> bool:
    """Whether an already-found path (e.g. a glob match) resolves inside one of `roots`."""
    try:
        target = path.resolve()
    except (RuntimeError, OSError):  # a symlink loop: not followed
        return False
    return any(target.is_relative_to(root) for root in roots)


# -- opening what was checked --------------------------------------------------


def _changed(where: Confined) -> ToolError:
    return ToolError(
        f"{where.argument} changed while it was being opened (a folder on the way became a "
        "symlink); nothing was read or written, try again",
        "bad_path",
    )


def _open_parent(where: Confined, create: bool = False) -> int:
    """A descriptor of the target's folder, reached without following any symlink."""
    fd = os.open(where.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in where.parts[:-1]:
            try:
                step = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
                step = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = step
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link_race(where):
            raise _changed(where) from None
        raise
    return fd


def _is_link_race(where: Confined) -> bool:
    """An ELOOP/ENOTDIR on a resolved path means it changed; a file on the way is not that."""
    return not any(parent.is_file() for parent in where.target.parents)


def open_for_reading(where: Confined) -> int:
    """A blocking descriptor of the regular file `where` names (never a FIFO or a device)."""
    if not where.parts:
        raise ToolError(f"{where.argument} is a directory; use list_files to see its files")
    try:
        parent = _open_parent(where)
        try:
            fd = os.open(
                where.parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent
            )
        finally:
            os.close(parent)
    except FileNotFoundError:
        raise ToolError(f"file not found: {where.argument}", "not_found") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _changed(where) from None
        raise ToolError(f"cannot read {where.argument}: {error.strerror}", "io_error") from None
    try:
        _check_regular(os.fstat(fd).st_mode, where)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_regular(mode: int, where: Confined) -> None:
    if stat.S_ISDIR(mode):
        raise ToolError(
            f"{where.argument} is a directory; use list_files to see its files", "not_a_file"
        )
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise ToolError(
            f"{where.argument} is {kind}; the file tools use regular files only "
            "(reading it could wait forever)",
            "not_a_file",
        )


def write_atomically(where: Confined, data: bytes, default_mode: int) -> bool:
    """Replace the file through a temporary file in its folder; True if it was created.

    Missing folders are created. The file keeps its mode; a symlink inside the
    tree was resolved already, so the link itself stays.
    """
    if not where.parts:
        raise ToolError(f"{where.argument} is a directory", "not_a_file")
    name = where.parts[-1]
    parent = _open_parent(where, create=True)
    try:
        try:
            existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISLNK(existing.st_mode):
                raise _changed(where)
            _check_regular(existing.st_mode, where)
        mode = stat.S_IMODE(existing.st_mode) if existing else default_mode
        temp = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), mode)
            os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            raise
    finally:
        os.close(parent)
    return existing is None
