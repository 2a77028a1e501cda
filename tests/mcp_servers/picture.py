"""A real MCP server (stdio) whose one tool, `picture`, returns a caption and a PNG."""

from __future__ import annotations

import base64

from mcp.server.mcpserver import Image, MCPServer

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

server = MCPServer("picture")


@server.tool()
def picture() -> list:
    """A caption and a tiny PNG."""
    return ["a red dot", Image(data=PNG, format="png")]


if __name__ == "__main__":
    server.run()
