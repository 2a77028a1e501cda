"""Random-kill sweep: a scripted session (bash, a file write, two background
tasks, a subagent running a command, an artifact, and a slow foreground command
that ends by its time limit) is SIGKILLed at a uniformly random time within how
long an unkilled run takes, and resumed, 20 times (quick) or 200 (full). After
every kill: gap-free session_seq, unique ids, nothing committed lost, every
request valid (each tool call answered at once, exactly once), `lh doctor`
clean, projections equal a rebuild, no side-effecting call run twice, no process
of the run left (`leharness.testing.sweep`)."""

from __future__ import annotations

from leharness.testing import sweep

from . import Figure


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
    return figures
