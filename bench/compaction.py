"""Compaction over a long session: 500 turns against the scripted server, each a
prompt, one tool call returning 6 KB (every tenth 24 KB, which becomes an
artifact) and an answer, in an 8,000-token context window (budget 6,800). The
server counts every request's tokens at 4 characters a token; the loop's
compaction tiers keep each under the budget. Per-turn time (two model calls,
the tool, every event and the compaction phase) in the first 50 turns against
the last 50 shows whether the overhead stays flat; summariser calls are
counted."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from leharness import store
from leharness.loop import runner
from leharness.loop.compaction import Budget
from leharness.loop.model import OpenAICompatibleModel, RetryPolicy
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools.base import Tool, ToolContext, ToolRegistry

from . import Figure

WINDOW = 8_000
TURNS = 500
BLOCK = 50
RUNS = 3


class BlobArgs(BaseModel):
    """Print a large block of text."""

    size: int


async def blob(args: BlobArgs, ctx: ToolContext) -> str:
    line = "0123456789abcdef " * 4 + "\n"
    return (line * (args.size // len(line) + 1))[: args.size]


def respond(body: dict[str, Any]) -> Text | ToolCalls:
    """Summaries for requests without tools; otherwise a tool call, then an answer."""
    messages = body["messages"]
    if "tools" not in body:
        return Text(f"Summary: {len(messages[-1]['content']):,} characters of blob turns.")
    if messages[-1]["role"] == "tool":
        return Text("Noted the output.")
    turn = sum(1 for m in messages if m["role"] == "user")
    size = 24_000 if turn % 10 == 0 else 6_000
    return ToolCalls(Call("blob", {"size": size}))


def measure(turns: int) -> tuple[list[float], list[float], int, int]:
    """(per-turn ms, every request's tokens ÷ budget, summariser calls, compaction events)."""
    budget = Budget(WINDOW).tokens
    with tempfile.TemporaryDirectory() as folder, ScriptedServer(responder=respond) as server:
        conn = store.open_events_only(Path(folder) / "sessions.db")
        model = OpenAICompatibleModel("openai", "bench", server.base_url, "k", RetryPolicy(0))
        session_id = runner.new_session(conn, Path(folder), "openai", "bench")
        session = runner.LoopSession(
            conn,
            session_id,
            model,
            ToolRegistry((Tool("blob", BlobArgs, blob, read_only=True),)),
            Path(folder),
            home=Path(folder),
            context_window=WINDOW,
        )

        async def all_turns() -> tuple[list[float], list[float]]:
            wall, cpu = [], []
            for turn in range(turns):
                started, started_cpu = time.perf_counter(), time.process_time()
                result = await runner.run_invocation(session, f"turn {turn}: run blob")
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                assert result.reason == "no_tool_calls", result
            return wall, cpu

        wall, cpu = asyncio.run(all_turns())
        pressures = [len(json.dumps(r.messages)) // 4 / budget for r in server.requests]
        summaries = sum(1 for r in server.requests if "tools" not in r.body)
        compactions = conn.execute(
            "SELECT count(*) FROM events WHERE session_id = ? AND type = 'compaction.completed'",
            (session_id,),
        ).fetchone()[0]
        conn.close()
    return wall, cpu, pressures, summaries, compactions


def run(quick: bool) -> list[Figure]:
    turns = 150 if quick else TURNS
    ratios, wall_ratios = [], []
    for _ in range(1 if quick else RUNS):  # the ratio of each whole run: noisy alone
        wall, cpu, pressures, summaries, compactions = measure(turns)
        ratios.append(statistics.median(cpu[-BLOCK:]) / statistics.median(cpu[:BLOCK]))
        wall_ratios.append(statistics.median(wall[-BLOCK:]) / statistics.median(wall[:BLOCK]))
    ratio, wall_ratio = statistics.median(ratios), statistics.median(wall_ratios)
    return [
        Figure(f"turn wall time, first {BLOCK} of {turns}", "ms", wall[:BLOCK]),
        Figure(f"turn wall time, last {BLOCK} of {turns}", "ms", wall[-BLOCK:]),
        Figure(f"turn CPU time, first {BLOCK} of {turns}", "ms", cpu[:BLOCK]),
        Figure(f"turn CPU time, last {BLOCK} of {turns}", "ms", cpu[-BLOCK:]),
        Figure(
            "per-turn overhead, median last / median first",
            "×",
            ratios,
            "<= 1.2",
            ratio <= 1.2,
            note="one sample per whole run; CPU time of this process (the in-process scripted "
            "server included), which other processes on the machine do not inflate; wall-time "
            f"ratio {wall_ratio:.2f} (median of the runs); the turn figures are the last run's",
        ),
        Figure(
            "largest request ÷ budget",
            "×",
            [max(pressures)],
            "<= 1.0",
            max(pressures) <= 1.0,
            note=f"over all {len(pressures)} requests (median {statistics.median(pressures):.2f}); "
            "tokens = characters / 4, as the scripted server counts them",
        ),
        Figure(
            "summariser calls",
            "calls",
            [float(summaries)],
            "reported",
            note=f"{compactions} compaction.completed events in {turns} turns",
        ),
    ]
