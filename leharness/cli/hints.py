"""How to name programs in the commands lh suggests: `lh` when that finds this very
program on PATH, else the path it was started by (`.venv/bin/lh` right after the
README's set-up, before the virtual environment is activated), so every hint can be
pasted. Programs installed beside it (datasette) are named the same way."""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path


@cache
def lh(name: str = "lh") -> str:
    """`name` (default lh) as a command that works from this shell's PATH and folder."""
    started = Path(sys.argv[0])
    if started.name != "lh":  # python -m, tests: nothing better to say
        return name
    try:
        here = started.resolve().with_name(name)
        on_path = shutil.which(name)
        if on_path and Path(on_path).resolve() == here.resolve():
            return name
        relative = os.path.relpath(here)
    except (OSError, ValueError):
        return name
    return relative if not relative.startswith("..") else str(here)
