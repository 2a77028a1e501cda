"""Random-kill sweep: a scripted session (bash, a file write, two background
tasks, a subagent running a command, an artifact, and a slow foreground command
that ends by its time limit) is SIGKILLed at a uniformly random time within how
long an unkilled run takes, and resumed, 20 times (quick) or 200 (full). After
every kill: gap-free session_seq, unique ids, nothing committed lost, every
request valid (each tool call answered at once, exactly once), `lh doctor`
clean, projections equal a rebuild, no side-effecting call run twice, no process
of the run left (`leharness.testing.crash.sweep`)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from leharness.testing.crash import sweep
from leharness.tools.base import ToolContext
from leharness.tools.bash import BASH, BashArgs

from . import Figure


def bash_round_trip(repeat: int) -> list[float]:
    """Milliseconds of one `true` through the bash tool (spawn, supervisor, status file)."""

    async def measure() -> list[float]:
        folder = Path(tempfile.mkdtemp())
        ctx = ToolContext(cwd=folder, session_id="bench", home=folder, call_id="c")
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            await BASH.run(BashArgs(command="true"), ctx)
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    return asyncio.run(measure())


def run(quick: bool) -> list[Figure]:
    kills = 20 if quick else 200
    result = sweep.run_sweep(kills, seed=2026)
    landed = sum(kill.killed for kill in result.kills)
    figures = []
    for name in sweep.INVARIANTS:
        held = result.held(name)
        problems = sorted({p for kill in result.kills for p in kill.problems.get(name, [])})
        note = f"{held} of {kills} kills"
        if problems:
            note += "; " + " | ".join(problems)[:300]
        figures.append(
            Figure(
                f"kills where '{name}' held",
                "kills",
                [float(held)],
                f"{kills} of {kills}",
                held == kills,
                note,
            )
        )
    figures.append(
        Figure(
            "kill window (an unkilled run)",
            "s",
            [result.run_s],
            note=f"{landed} of {kills} runs were still going when the SIGKILL came",
        )
    )
    figures.append(
        Figure(
            "bash tool round trip of `true` (under its supervisor)",
            "ms",
            bash_round_trip(30),
            note="each command's supervisor (forked by lh's supervisor server) holds the "
            "time limit and writes the exit status even when lh is killed",
        )
    )
    return figures
