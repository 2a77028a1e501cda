"""Compaction over a long session: 500 turns against the scripted server, each a
prompt, one tool call returning 6 KB (every tenth 24 KB, which becomes an
artifact) and an answer, in a 16,000-token context window (budget 13,600). The
server counts every request's tokens at 4 characters a token; the loop's
compaction tiers keep each under the budget. Per-turn wall time (two model
calls, the tool, every event and compaction) in the first 50 turns against the
last 50 shows whether the overhead stays flat; summariser calls are counted."""

from __future__ import annotations

import asyncio
import json
import os
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

WINDOW = 16_000
TURNS = 500
BLOCK = 50


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
        os.environ["LEHARNESS_HOME"] = folder
        conn = store.open_events_only(Path(folder) / "sessions.db")
        model = OpenAICompatibleModel("openai", "bench", server.base_url, "k", RetryPolicy(0))
        session_id = runner.new_session(conn, Path(folder), "openai", "bench")
        session = runner.Session(
            conn,
            session_id,
            model,
            ToolRegistry((Tool("blob", BlobArgs, blob, read_only=True),)),
            Path(folder),
            home=Path(folder),
            context_window=WINDOW,
        )

        async def all_turns() -> list[float]:
            samples = []
            for turn in range(turns):
                started = time.perf_counter()
                result = await runner.run_invocation(session, f"turn {turn}: run blob")
                samples.append((time.perf_counter() - started) * 1000)
                assert result.reason == "no_tool_calls", result
            return samples

        samples = asyncio.run(all_turns())
        pressures = [len(json.dumps(r.messages)) // 4 / budget for r in server.requests]
        summaries = sum(1 for r in server.requests if "tools" not in r.body)
        compactions = conn.execute(
            "SELECT count(*) FROM events WHERE session_id = ? AND type = 'compaction.completed'",
            (session_id,),
        ).fetchone()[0]
        conn.close()
    return samples, pressures, summaries, compactions


def run(quick: bool) -> list[Figure]:
    turns = 150 if quick else TURNS
    samples, pressures, summaries, compactions = measure(turns)
    first, last = samples[:BLOCK], samples[-BLOCK:]
    ratio = statistics.median(last) / statistics.median(first)
    return [
        Figure(f"turn, first {BLOCK} of {turns}", "ms", first),
        Figure(f"turn, last {BLOCK} of {turns}", "ms", last),
        Figure(
            "median last / median first",
            "×",
            [ratio],
            "<= 1.2",
            ratio <= 1.2,
            note="each turn: prompt, tool call, 6–24 KB result, answer, compaction phase",
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
