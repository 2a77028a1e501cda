"""Benchmarks: `python -m bench [NAME ...] [--quick]` rewrites BENCHMARKS.md.

Each module in BENCHMARKS exposes `run(quick: bool) -> list[Figure]`. Results
are kept per benchmark in bench/results.json so running one benchmark keeps
the others' figures; BENCHMARKS.md is rendered from that file.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

BENCHMARKS = ("store_append", "store_open", "loop_step", "cold_start", "oneshot", "tasks")


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
