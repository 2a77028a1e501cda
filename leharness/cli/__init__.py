"""The `lh` command. `main()` is the entry point; the click group is `cli`
(in `group.py`, imported on first use so that `lh --version` needs no click)."""

from __future__ import annotations

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
    from .group import cli

    try:
        cli()
    except SystemExit as done:
        code = done.code
        if code is None or isinstance(code, int):
            process.exit_now(code or 0)
        raise


def __getattr__(name: str) -> Any:
    if name == "cli":
        from .group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
