"""Cold start: `lh --help` and `lh --version` as fresh processes, with
`python -c pass` measured in the same run as the floor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from . import Figure, timed

LH = str(Path(sys.executable).with_name("lh"))


def run(quick: bool) -> list[Figure]:
    repeat = 5 if quick else 15

    def command(*args: str):
        return lambda: subprocess.run(args, check=True, capture_output=True)

    floor = timed(command(sys.executable, "-c", "pass"), repeat)
    help_ = timed(command(LH, "--help"), repeat)
    version = timed(command(LH, "--version"), repeat)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return [
        Figure("lh --help", "ms", help_, "< 150 ms", median(help_) < 150),
        Figure("lh --version", "ms", version, "< 150 ms", median(version) < 150),
        Figure("python -c pass (floor)", "ms", floor),
    ]
