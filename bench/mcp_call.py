"""MCP: how long a stdio server takes to be ready (spawn, initialize, tools/list)
and one tool call's round trip from the session's event loop through the
background MCP loop to the server and back, with the real echo server of the
tests (tests/mcp_servers/echo.py, the official SDK)."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from leharness.tools.mcp import Hub, McpConfig
from leharness.tools.mcp.config import StdioServer

from . import Figure, timed

ECHO = Path(__file__).resolve().parent.parent / "tests" / "mcp_servers" / "echo.py"


def config() -> McpConfig:
    return McpConfig(servers=[StdioServer(name="echo", command=sys.executable, args=[str(ECHO)])])


def run(quick: bool) -> list[Figure]:
    def connect() -> None:
        hub = Hub(config()).start(60)
        assert hub.connections[0].status == "connected", hub.connections[0].error
        hub.close()

    ready = timed(connect, 3 if quick else 8)
    hub = Hub(config()).start(60)
    calls = 50 if quick else 300

    async def round_trips() -> list[float]:
        samples = []
        for i in range(calls):
            started = time.perf_counter()
            result = await hub.call("echo", "echo", {"text": f"n{i}"}, 30)
            samples.append((time.perf_counter() - started) * 1000)
            assert result.content[0].text == f"n{i}"
        return samples

    try:
        per_call = asyncio.run(round_trips())
    finally:
        hub.close()
    return [
        Figure(
            "stdio server ready (spawn + initialize + tools/list)",
            "ms",
            ready,
            "< 3000 ms",
            max(ready) < 3000,
        ),
        Figure(
            "tool call round trip",
            "ms",
            per_call,
            "< 10 ms median",
            statistics.median(per_call) < 10,
        ),
    ]
