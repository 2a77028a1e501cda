"""Searching and sandboxing: `grep` on one 100 MB file (ripgrep streams it: peak RSS of the
harness process and of rg, each measured in a fresh process), and what the bash sandbox
(bubblewrap, workspace-write) adds to a trivial command compared with no sandbox."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from leharness.tools import ToolContext, default_registry
from leharness.tools.sandbox import unavailable

from . import Figure, timed

GREP_ONCE = r"""
import asyncio, json, resource, sys, time
from pathlib import Path
from leharness.tools import ToolContext, default_registry
ctx = ToolContext(cwd=Path(sys.argv[1]))
started = time.perf_counter()
out = asyncio.run(default_registry().invoke("grep", json.dumps({"pattern": "needle"}), ctx))
ms = (time.perf_counter() - started) * 1000
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rg = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"ms": ms, "own": own, "rg": rg, "hits": len(out.splitlines())}))
"""


def grep_big_file(folder: Path, megabytes: int) -> dict:
    line = b"ordinary line of a big log file, nothing to see here at all\n"
    with open(folder / "big.log", "wb") as handle:
        for _ in range(megabytes):
            handle.write(line * (1024 * 1024 // len(line)))
        handle.write(b"the needle\n")
    done = subprocess.run(
        [sys.executable, "-c", GREP_ONCE, str(folder)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def bash_ms(folder: Path, mode: str, repeat: int) -> list[float]:
    ctx = ToolContext(cwd=folder, home=folder / ".leharness", sandbox=mode)
    registry = default_registry()
    return timed(lambda: asyncio.run(registry.invoke("bash", '{"command": "true"}', ctx)), repeat)


def run(quick: bool) -> list[Figure]:
    megabytes = 20 if quick else 100
    with tempfile.TemporaryDirectory() as tmp:
        runs = [grep_big_file(Path(tmp), megabytes) for _ in range(1 if quick else 3)]
        figures = [
            Figure(
                f"grep one {megabytes} MB file: peak RSS of lh's process",
                "MB",
                [r["own"] for r in runs],
                target="< 100 MB (was 357 MB with Python's re reading the file whole)",
                met=max(r["own"] for r in runs) < 100,
            ),
            Figure(f"grep one {megabytes} MB file: peak RSS of rg", "MB", [r["rg"] for r in runs]),
            Figure(f"grep one {megabytes} MB file: wall time", "ms", [r["ms"] for r in runs]),
        ]
        repeat = 10 if quick else 30
        figures.append(Figure("bash `true`, sandbox off", "ms", bash_ms(Path(tmp), "off", repeat)))
        if unavailable() is None:
            sandboxed = bash_ms(Path(tmp), "workspace-write", repeat)
            figures.append(
                Figure(
                    "bash `true`, sandbox workspace-write (bwrap)",
                    "ms",
                    sandboxed,
                    target="< 50 ms more than off",
                    met=sorted(sandboxed)[len(sandboxed) // 2]
                    < sorted(figures[-1].samples)[repeat // 2] + 50,
                )
            )
    return figures
