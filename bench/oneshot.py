"""One-shot runs of the real `lh` process against the instant scripted server:
a prompt that makes 1 and 50 tool turns of a shell `echo`. Wall time, peak RSS
of the `lh` process, and the per-turn overhead (T50 - T1) / 49."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import Figure, measure_process

LH = str(Path(sys.executable).with_name("lh"))


def echo_turns(turns: int):
    def respond(body: dict):
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < turns:
            return ToolCalls(Call("bash", {"command": f"echo turn {done}"}))
        return Text("done")

    return respond


def one_run(turns: int) -> tuple[float, float]:
    """(wall ms, peak RSS MB) of one `lh "prompt"` process."""
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=echo_turns(turns)) as server,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
        env.update(
            LEHARNESS_HOME=home,
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_MAX_STEPS=str(turns + 5),
            LEHARNESS_APPROVAL="auto",  # no terminal: the default (ask) would refuse tools
        )
        wall, peak, code = measure_process([LH, "run the echoes"], env, home)
        if code != 0:
            raise RuntimeError(f"lh exited {code}")
        return wall, peak


def run(quick: bool) -> list[Figure]:
    repeat = 5 if quick else 7
    t1, t50, rss1, rss50 = [], [], [], []
    for _ in range(repeat):
        wall, rss = one_run(1)
        t1.append(wall)
        rss1.append(rss)
        wall, rss = one_run(50)
        t50.append(wall)
        rss50.append(rss)
    per_turn = [(b - a) / 49 for a, b in zip(t1, t50, strict=True)]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return [
        Figure("1 tool turn: wall", "ms", t1),
        Figure("50 tool turns: wall", "ms", t50, "< 1,500 ms", median(t50) < 1500),
        Figure(
            "per-turn overhead (T50 - T1) / 49",
            "ms",
            per_turn,
            "< 10 ms",
            median(per_turn) < 10,
            "includes spawning bash for each echo and one HTTP round trip to the scripted server",
        ),
        Figure("peak RSS, 1 turn", "MB", rss1, "<= 77 MB", median(rss1) <= 77),
        Figure("peak RSS, 50 turns", "MB", rss50, "<= 77 MB", median(rss50) <= 77),
    ]
