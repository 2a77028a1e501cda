"""Parallel tool calls: one reply asking for two `sleep 1` bash calls, run by the real
`lh` one-shot process (approval auto) against the scripted server. Run together they
cost about one second, not two; the figure is the tool phase as the events record it,
from the first `tool.started` to the last `tool.completed`."""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import Figure, measure_process

LH = str(Path(sys.executable).with_name("lh"))


def two_sleeps(seconds: float):
    def respond(body: dict):
        if not any(m["role"] == "tool" for m in body["messages"]):
            command = f"sleep {seconds}"
            return ToolCalls(Call("bash", {"command": command}), Call("bash", {"command": command}))
        return Text("done")

    return respond


def one_run(seconds: float) -> float:
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=two_sleeps(seconds)) as server,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
        env.update(
            LEHARNESS_HOME=home,
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_APPROVAL="auto",
        )
        _wall, _peak, code = measure_process([LH, "sleep twice"], env, home)
        if code != 0:
            raise RuntimeError(f"lh exited {code}")
        with sqlite3.connect(Path(home, "sessions.db")) as conn:
            first, last = conn.execute(
                "SELECT min(ts) FILTER (WHERE type = 'tool.started'), "
                "max(ts) FILTER (WHERE type = 'tool.completed') FROM events"
            ).fetchone()
        conn.close()
        return (parse(last) - parse(first)).total_seconds() * 1000


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def run(quick: bool) -> list[Figure]:
    repeat = 3 if quick else 5
    phase = [one_run(1.0) for _ in range(repeat)]
    median = sorted(phase)[len(phase) // 2]
    return [
        Figure(
            "two `sleep 1` calls of one reply: tool phase",
            "ms",
            phase,
            "< 1,500 ms (one after the other: 2,000)",
            median < 1500,
        )
    ]
