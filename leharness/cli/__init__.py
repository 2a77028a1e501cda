"""The `lh` command. `main()` is the entry point; the click group is `cli`
(in `group.py`, imported on first use so that `lh --version` needs no click)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .group import cli as cli


def main() -> None:
    from . import process

    process.entered()
    if sys.argv[1:] == ["--version"]:  # as click's version_option prints it
        from leharness import __version__

        print(f"lh, version {__version__}")
        process.exit_now(0)
    if sys.argv[1:] in (["--help"], ["-h"]) and (text := stored_help()) is not None:
        sys.stdout.write(text)
        process.exit_now(0)
    from .group import cli

    try:
        cli()
    except SystemExit as done:
        code = done.code
        if code is None or isinstance(code, int):
            process.exit_now(code or 0)
        raise


def stored_help() -> str | None:
    """`lh --help` as click renders it (help.txt, see commands.py), when click would
    render it just so: the program is called `lh` and the terminal is 80 columns or
    wider (click wraps help at min(columns, 80) - 2). None: let click do it."""
    if os.path.basename(sys.argv[0]) != "lh" or _columns() < 80:
        return None
    try:
        with open(os.path.join(os.path.dirname(__file__), "help.txt"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size (which click asks) finds it."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def __getattr__(name: str) -> Any:
    if name == "cli":
        from .group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
