"""Flat in the length of the session: a 500-turn session built as a user builds
one, by 50 resumes (`lh --session ID "…"`) of 10 tool turns each (a shell
`echo` and the scripted server's instant answer), then the per-turn overhead of
10 more turns on it, (T10 - T1) / 9 from an `lh --session` run of 10 turns
against one of 1, against the same on a fresh 10-turn session, in one run.
Measured without compaction (a context window far above the session) and with
it (an 8,000-token window, so compaction has changed older messages). CPU
time of the `lh` process (and its bash children): the machine is loaded."""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import Figure, ensure_bytecode, measure

LH = str(Path(sys.executable).with_name("lh"))
TARGET = 1.2


def respond(body: dict):
    """Echo until the prompt's number of tool turns since the last user message."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    wanted = int(str(messages[last_user]["content"]).split()[0])
    done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
    if done < wanted:
        return ToolCalls(Call("bash", {"command": f"echo turn {done}"}))
    return Text("done")


class Session:
    def __init__(self, home: str, server: ScriptedServer, window: int | None) -> None:
        self.home = home
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))
        }
        self.env.update(
            LEHARNESS_HOME=home,
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_MAX_STEPS="20",
        )
        if window:
            self.env["LEHARNESS_CONTEXT_WINDOW"] = str(window)
        self.id: str | None = None

    def turns(self, n: int) -> float:
        """Run one `lh` invocation of `n` tool turns on this session; its CPU ms."""
        args = [LH] + (["--session", self.id] if self.id else []) + [f"{n} echoes, please"]
        done = measure(args, self.env, self.home)
        if done.code != 0:
            raise RuntimeError(f"lh exited {done.code}")
        if self.id is None:
            with sqlite3.connect(Path(self.home, "sessions.db")) as conn:
                (self.id,) = conn.execute("SELECT id FROM sessions").fetchone()
        return done.cpu_ms


def per_turn(session: Session, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        one = session.turns(1)
        ten = session.turns(10)
        samples.append((ten - one) / 9)
    return samples


def run(quick: bool) -> list[Figure]:
    ensure_bytecode()
    repeat = 5 if quick else 9
    figures = []
    for label, window in (("no compaction", 10_000_000), ("with compaction", 8_000)):
        with (
            tempfile.TemporaryDirectory() as long_home,
            tempfile.TemporaryDirectory() as short_home,
            ScriptedServer(responder=respond) as server,
        ):
            long, short = Session(long_home, server, window), Session(short_home, server, window)
            for _ in range(50):
                long.turns(10)
            short.turns(10)
            at_500, at_10 = [], []
            for _ in range(repeat):  # interleaved
                at_500 += per_turn(long, 1)
                at_10 += per_turn(short, 1)
            with sqlite3.connect(Path(long_home, "sessions.db")) as conn:
                events, compactions = conn.execute(
                    "SELECT count(*), sum(type = 'compaction.completed') FROM events"
                ).fetchone()
        # One (T10 - T1) / 9 sample carries the noise of two start-ups: the
        # ratio is of the medians, its samples each at-500 sample over that median.
        at_10_median = statistics.median(at_10)
        ratio = [a / at_10_median for a in at_500]
        median = statistics.median(at_500) / at_10_median
        figures += [
            Figure(f"{label}: per-turn CPU at turn 500+", "ms", at_500),
            Figure(f"{label}: per-turn CPU at turn 10+", "ms", at_10),
            Figure(
                f"{label}: per-turn at 500 ÷ at 10",
                "×",
                ratio,
                f"<= {TARGET}",
                median <= TARGET,
                f"the long session: {events:,} events, {compactions or 0} compactions",
            ),
        ]
    return figures
