"""A real MCP server for the tests, written with the official SDK (MCPServer, once FastMCP).

Run over stdio by default, or `--http PORT` for streamable HTTP on 127.0.0.1.
Tools: `echo` (nested, non-trivial schema), `dump` (its argument back as
JSON, to see what arrived), `fail` (an isError result),
`crash` (the process dies mid-call), `sleep` (answers late), `env` (reads one
environment variable).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field


class Style(BaseModel):
    """How to decorate the echo."""

    case: Literal["upper", "lower", "keep"] = "keep"
    repeat: int = Field(1, ge=1, le=5, description="How many times to say it.")


server = MCPServer("echo")


@server.tool()
def echo(text: str, style: Style | None = None, tags: list[str] | None = None) -> str:
    """Say TEXT back, styled."""
    style = style or Style()
    said = {"upper": text.upper(), "lower": text.lower(), "keep": text}[style.case]
    suffix = f" [{', '.join(tags)}]" if tags else ""
    return " ".join([said] * style.repeat) + suffix


@server.tool()
def dump(payload: dict[str, Any]) -> str:
    """PAYLOAD back as JSON text, in the order it arrived."""
    return json.dumps(payload, ensure_ascii=False)


@server.tool()
def fail(reason: str) -> str:
    """Always fails with REASON."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def crash() -> str:
    """Kill this server process."""
    print("about to crash: goodbye", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait SECONDS, then answer."""
    await anyio.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def env(name: str) -> str:
    """The value of environment variable NAME."""
    return os.environ.get(name, "<unset>")


if __name__ == "__main__":
    print("echo server starting", file=sys.stderr, flush=True)
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
