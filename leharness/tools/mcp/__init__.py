"""MCP servers' tools as leharness tools: `<server>__<tool>`, schemas and arguments untouched.

The schema a server lists goes to the model as is; the JSON object the model
sends goes to the server as is (no validation or coercion here: the server
checks its own arguments). An `isError` result is a tool error. A server that
dies mid-session fails that call with its stderr tail, records `mcp.failed`
through the session's recorder, and its tools are withdrawn from later steps.
The SDK is imported only when a server is configured.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from leharness.store import Payload
from leharness.store import events as ev

from ..base import Tool, ToolContext, ToolError
from ..redact import redact
from .client import CallFailed, Connection, Hub, ServerDown
from .config import ConfigFileError, ConfigProblem, McpConfig, config_path, load_config

__all__ = [
    "ConfigFileError",
    "ConfigProblem",
    "Hub",
    "McpConfig",
    "config_path",
    "load_config",
    "mcp_tools",
    "offered_name",
    "render_result",
    "status_events",
]

SEPARATOR = "__"


def offered_name(server: str, tool: str) -> str:
    """`<server>__<tool>`, with characters a model API refuses replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}{SEPARATOR}{tool}")[:64]


def call_timeout_s() -> float:
    return float(os.environ.get("LEHARNESS_MCP_CALL_TIMEOUT_S", "600"))


def mcp_tools(hub: Hub) -> list[Tool]:
    """A Tool for every tool of every connected server (first wins on a name clash)."""
    tools: dict[str, Tool] = {}
    for connection in hub.connections:
        if connection.status != "connected":
            continue
        for listed in connection.tools:
            name = offered_name(connection.name, listed.name)
            if name not in tools:
                tools[name] = _adapt(hub, connection, listed, name)
    return list(tools.values())


def _adapt(hub: Hub, connection: Connection, listed: Any, name: str) -> Tool:
    async def run(arguments: dict[str, Any], ctx: ToolContext) -> str:
        try:
            result = await hub.call(connection.name, listed.name, arguments, call_timeout_s())
        except ServerDown as down:
            if down.first:
                _record(ctx, failed_event(connection))
            raise ToolError(
                f"{down}\nIts tools are withdrawn for this run.", "mcp_crashed"
            ) from None
        except CallFailed as failed:
            raise ToolError(f"MCP server {connection.name!r}: {failed}", failed.kind) from None
        text = render_result(result, lambda block: _save_image(ctx, block))
        if result.is_error:
            raise ToolError(text or f"{name} reported an error (no details)", "tool_error")
        return text

    return Tool(
        name=name,
        args=None,
        run=run,
        schema=listed.input_schema,
        about=listed.description or listed.title or listed.name,
        available=lambda: connection.status == "connected",
        mutates=not _read_only_hint(listed),  # a server's tool may do anything: ask first
    )


def _read_only_hint(listed: Any) -> bool:
    """Whether the server says the tool only reads (MCP's annotations.readOnlyHint)."""
    return getattr(getattr(listed, "annotations", None), "readOnlyHint", None) is True


def _record(ctx: ToolContext, payload: Payload) -> None:
    """Record through the session's recorder, which the loop hands every tool."""
    record = ctx.record
    if record is not None:
        record(payload)


def _save_image(ctx: ToolContext, block: Any) -> str:
    """Keep an image a tool returned as an artifact (never in an event: it can be MBs) and
    return the marker the prompt builder turns into an image part for models that take
    images: `[image: MIME, N bytes, artifact ID at PATH]`."""
    from leharness import store
    from leharness.tools import artifacts

    data = base64.b64decode(block.data or "", validate=False)
    saved = artifacts.save(ctx.home or store.home_dir(), ctx.session_id, data)
    _record(ctx, saved.created("mcp_image", call_id=ctx.call_id))
    where = f"artifact {saved.artifact_id} at {saved.path}"
    return f"[image: {block.mime_type}, {len(data):,} bytes, {where}]"


def render_result(result: Any, save_image: Any = None) -> str:
    """The text the model sees: text blocks as is, other blocks described in one line; an
    image is saved by `save_image` (block -> marker) when one is given."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "image" and save_image is not None:
            parts.append(save_image(block))
        elif kind in ("image", "audio"):
            size = len(base64.b64decode(block.data or "", validate=False))
            parts.append(f"[{kind}: {block.mime_type}, {size:,} bytes]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {block.uri}]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource: {resource.uri}]")
        else:
            parts.append(json.dumps(block.model_dump(mode="json", exclude_none=True)))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


def failed_event(connection: Connection) -> ev.McpFailed:
    return ev.McpFailed(
        server=connection.name,
        error=redact(connection.error),
        stderr_tail=redact(connection.stderr_tail()),  # a server may print its own token
        kind=connection.failed_during,
    )


def status_events(hub: Hub) -> list[Payload]:
    """What a session records about the servers when it opens: one event per server."""
    events: list[Payload] = [
        ev.McpFailed(server=problem.server, error=problem.error, kind="config")
        for problem in hub.config.problems
    ]
    for connection in hub.connections:
        if connection.status == "connected":
            names = [offered_name(connection.name, t.name) for t in connection.tools]
            events.append(
                ev.McpConnected(
                    server=connection.name, transport=connection.config.transport, tools=names
                )
            )
        elif connection.status == "failed":
            events.append(failed_event(connection))
    return events
