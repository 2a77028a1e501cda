"""Benchmarks: `python -m bench [NAME ...] [--quick]` rewrites BENCHMARKS.md.

Each module in BENCHMARKS exposes `run(quick: bool) -> list[Figure]`. Results
are kept per benchmark in bench/results.json so running one benchmark keeps
the others' figures; BENCHMARKS.md is rendered from that file.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

BENCHMARKS = (
    "store_append",
    "store_open",
    "rebuild",
    "loop_step",
    "cold_start",
    "oneshot",
    "connection",
    "peer_llm",
    "peers",
    "tasks",
    "skills",
    "mcp_call",
    "inspector",
    "history",
    "crash",
    "sweep",
    "compaction",
    "session_length",
    "redaction",
    "search",
    "parallel_tools",
    "merge",
    "fulltext",
)


@dataclass
class Figure:
    name: str
    unit: str
    samples: list[float]
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict:
        return {**asdict(self), "median": self.median}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock milliseconds of `fn`, `repeat` times."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


def measure_process(
    command: list[str], env: dict[str, str], cwd: str | os.PathLike
) -> tuple[float, float, int]:
    """(wall ms, peak RSS MB, exit code) of one process (see `measure`)."""
    done = measure(command, env, cwd)
    return done.wall_ms, done.peak_mb, done.code


@dataclass
class Measured:
    wall_ms: float
    peak_mb: float
    code: int
    cpu_ms: float  # user + system time of the process and the children it waited for


def measure(command: list[str], env: dict[str, str], cwd: str | os.PathLike) -> Measured:
    """Wall time, CPU time, peak RSS and exit code of one process.

    CPU time is what stays meaningful on a loaded machine: wall time also
    counts the time spent waiting for a core. The peak comes from GNU time
    when it is installed: a child forked straight from this (large) benchmark
    process inherits its resident-set high-water mark, which then hides the
    child's own figure.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        prefix = [GNU_TIME, "-f", "%M %U %S", "-o", report.name] if GNU_TIME else []
        started = time.perf_counter()
        process = subprocess.Popen(
            [*prefix, *command],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = (time.perf_counter() - started) * 1000
        # GNU time's last line is "%M %U %S" (a "Command exited with non-zero
        # status" line may come before it).
        last_line = report.read().strip().splitlines()[-1] if GNU_TIME else ""
        peak_kb = int(last_line.split()[0]) if GNU_TIME else usage.ru_maxrss
    cpu = (usage.ru_utime + usage.ru_stime) * 1000
    return Measured(wall, peak_kb / 1024, os.waitstatus_to_exitcode(status), cpu)


def ensure_bytecode() -> None:
    """Compile leharness to bytecode once, as a wheel install does: with
    PYTHONDONTWRITEBYTECODE set (it is on the development machines) every
    `lh` start would otherwise compile its own sources again (~160 ms)."""
    import compileall
    from pathlib import Path

    import leharness

    compileall.compile_dir(Path(leharness.__file__).parent, quiet=1, force=False)


def measure_process_usage(
    command: list[str], env: dict[str, str], cwd: str | os.PathLike
) -> tuple[float, float, int, float]:
    """(wall ms, peak RSS MB, exit code, CPU ms: user + sys) of one process."""
    done = measure(command, env, cwd)
    return done.wall_ms, done.peak_mb, done.code, done.cpu_ms
