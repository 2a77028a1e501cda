"""Crash-proof resume: the real `lh` is killed with SIGKILL at each crash point
(model stream, after model.completed, foreground tool, background task,
subagent, compaction, between the halves of a multi-tool reply) and its session
resumed with `lh --session ID`. A point resumes cleanly when no event is lost
or duplicated, every session_seq stays contiguous, projections equal a rebuild,
each tool call has exactly one result in the resumed request and the resumed
run exits 0 (`leharness.testing.crash`, the same points the tests run)."""

from __future__ import annotations

import time

from leharness.testing import crash

from . import Figure


def run(quick: bool) -> list[Figure]:
    rounds = 1 if quick else 3
    points = crash.POINTS
    clean, walls, problems = [], [], []
    for _ in range(rounds):
        ok = 0
        for point in points:
            started = time.perf_counter()
            outcome = crash.run_point(point)
            walls.append((time.perf_counter() - started) * 1000)
            ok += outcome.ok
            problems += [f"{point.name}: {p}" for p in outcome.problems]
        clean.append(float(ok))
    k = len(points)
    worst = int(min(clean))
    note = f"{worst} of {k} crash points resume cleanly (worst of {rounds} rounds)"
    if problems:
        note += "; problems: " + " | ".join(sorted(set(problems)))[:400]
    return [
        Figure(
            "crash points that resume cleanly", "points", clean, f"{k} of {k}", worst == k, note
        ),
        Figure("kill + resume, one point (two lh processes)", "ms", walls),
    ]
