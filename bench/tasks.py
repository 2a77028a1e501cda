"""Background work: a command printing 200 MB run as a background task by the
real `lh` (peak RSS growth over a trivial run, and throughput to disk), and 20
concurrent background commands plus 4 concurrent subagents in one one-shot run
against the scripted server (all complete, none delivered twice, wall time)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import Figure, measure_process

LH = str(Path(sys.executable).with_name("lh"))
BIG = "head -c 200000000 /dev/zero | tr '\\0' 'a'"


def run_lh(responder, prompt: str = "go") -> tuple[float, float, Path]:
    """(wall ms, peak RSS MB, home) of one `lh "prompt"` process."""
    home = Path(tempfile.mkdtemp())
    with ScriptedServer(responder=responder) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
        env.update(
            LEHARNESS_HOME=str(home),
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_APPROVAL="auto",  # no terminal: the default (ask) would refuse tools
        )
        wall, peak, code = measure_process([LH, prompt], env, home)
    if code != 0:
        raise RuntimeError("lh failed")
    return wall, peak, home


def one_command(command: str):
    def respond(body: dict):
        tools = sum(1 for m in body["messages"] if m["role"] == "tool")
        notes = sum(1 for m in body["messages"] if m["role"] == "user") - 1
        if tools == 0:
            return ToolCalls(Call("bash", {"command": command, "inline_ms": 0, "timeout_s": 600}))
        return Text("started" if notes == 0 else "done")

    return respond


def fan_out(body: dict):
    first_user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if first_user.startswith("child"):
        return Text(f"answer from {first_user}")
    if not any(m["role"] == "tool" for m in body["messages"]):
        calls = [
            Call("bash", {"command": f"sleep 0.5; echo task {i}", "inline_ms": 0})
            for i in range(20)
        ]
        calls += [Call("spawn_agent", {"prompt": f"child {i}"}) for i in range(4)]
        return ToolCalls(*calls)
    return Text("ok")


def run(quick: bool) -> list[Figure]:
    repeat = 5
    big_rss, base_rss, throughput, fan_wall, complete, delivered_once = [], [], [], [], [], []
    for _ in range(repeat):
        _, rss0, _ = run_lh(one_command("echo small"))
        wall, rss, home = run_lh(one_command(BIG))
        log = next((home / "artifacts").glob("*/*.log"))
        base_rss.append(rss0)
        big_rss.append(rss - rss0)
        throughput.append(log.stat().st_size / 1e6 / (wall / 1000))
        wall, _, home = run_lh(fan_out)
        fan_wall.append(wall)
        with sqlite3.connect(home / "sessions.db") as conn:
            rows = conn.execute(
                "SELECT status FROM tasks WHERE session_id IN "
                "(SELECT id FROM sessions WHERE parent_session_id IS NULL)"
            ).fetchall()
            ids = [
                tid
                for (data,) in conn.execute("SELECT data FROM events WHERE type = 'task.delivered'")
                for tid in json.loads(data)["task_ids"]
            ]
        complete.append(sum(1 for (status,) in rows if status == "completed"))
        delivered_once.append(float(len(ids) == len(set(ids)) == 24))
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return [
        Figure(
            "200 MB output: peak RSS growth over a small run",
            "MB",
            big_rss,
            "< 64 MB",
            median(big_rss) < 64,
            f"baseline peak RSS {median(base_rss):.0f} MB",
        ),
        Figure("200 MB output: throughput to disk (whole run)", "MB/s", throughput),
        Figure(
            "20 tasks + 4 subagents: completed",
            "tasks",
            [float(c) for c in complete],
            "24",
            min(complete) == 24,
        ),
        Figure(
            "20 tasks + 4 subagents: each delivered exactly once",
            "runs ok",
            delivered_once,
            "1.0",
            min(delivered_once) == 1.0,
        ),
        Figure("20 tasks + 4 subagents: wall", "ms", fan_wall),
    ]
