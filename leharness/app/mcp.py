"""The MCP servers a run connects to, for every session the process opens.

The servers are connected once per process, the first time a session opens
(no mcp.json: nothing is imported or started), and closed at exit. Each
session opened in the run records one `mcp.connected` / `mcp.failed` event
per configured server before its first invocation; problems also go to the
caller's `warn` (the CLI prints them on stderr), and the session goes on
without those tools. `lh mcp list` and `/mcp` (cli/mcp.py) show the same rows.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

from leharness.errors import UserError

Warn = Callable[[str], None]  # where a problem is told (one line, no "warning: " prefix)

_HUBS: dict[tuple[str, str], Any] = {}  # (mcp.json path, content hash) -> connected Hub
_ATTACHED: list[Any] = []  # the hub the latest session was given, for /mcp


def connect_timeout_s() -> float:
    value = os.environ.get("LEHARNESS_MCP_TIMEOUT_S", "30")
    try:
        return float(value)
    except ValueError:
        raise UserError(
            f"LEHARNESS_MCP_TIMEOUT_S must be a number of seconds, not {value!r}"
        ) from None


def current_hub(warn: Warn | None = None) -> Any:
    """This process's connected Hub for $LEHARNESS_HOME/mcp.json (None without the file)."""
    import hashlib

    from leharness import store

    path = store.home_dir() / "mcp.json"  # as tools.mcp.config_path: no import without one
    if not path.exists():
        return None
    from leharness.tools.mcp import ConfigFileError, Hub, load_config

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = (str(path.resolve()), digest)
        if key in _HUBS:
            return _HUBS[key]
        config = load_config(path)
    except (OSError, ConfigFileError) as error:
        if warn is not None:
            warn(f"MCP servers not loaded: {error}")
        return None
    hub = Hub(config).start(connect_timeout_s())
    _HUBS[key] = hub
    if warn is not None:
        for line in problems(hub):
            warn(line)
    return hub


def problems(hub: Any) -> list[str]:
    lines = [f"mcp.json: server {p.server!r} skipped: {p.error}" for p in hub.config.problems]
    lines += [c.down_message() for c in hub.connections if c.status == "failed"]
    return lines


def attach(loop_session: Any, warn: Warn | None = None) -> None:
    """Offer the MCP tools to this session and record the servers' status in it."""
    hub = current_hub(warn)
    _ATTACHED[:] = [hub] if hub is not None else []
    if hub is None:
        return
    from leharness.tools.mcp import mcp_tools, status_events

    loop_session.tools = loop_session.tools.extended(mcp_tools(hub))
    for payload in status_events(hub):
        loop_session.record(payload)


@atexit.register
def close_all() -> None:
    """Stop every server this process started."""
    _ATTACHED.clear()
    while _HUBS:
        _, hub = _HUBS.popitem()
        hub.close()


def status_rows(hub: Any) -> list[dict[str, Any]]:
    from leharness.tools.mcp import offered_name

    rows = [
        {"server": p.server, "transport": "", "status": "invalid", "tools": [], "error": p.error}
        for p in hub.config.problems
    ]
    for c in hub.connections:
        tools = [offered_name(c.name, t.name) for t in c.tools] if c.status == "connected" else []
        error = c.down_message() if c.status == "failed" else ""
        rows.append(
            {
                "server": c.name,
                "transport": c.config.transport,
                "status": c.status,
                "tools": tools,
                "error": error,
            }
        )
    return rows


def describe_servers(hub: Any) -> str:
    """Plain text for `/mcp`: each server, its status and its tools."""
    if hub is None:
        return "no MCP servers: add them to $LEHARNESS_HOME/mcp.json"
    lines = []
    for row in status_rows(hub):
        lines.append(f"{row['server']}  {row['transport'] or '-'}  {row['status']}")
        lines += [f"  {name}" for name in row["tools"]]
        lines += [f"  {line}" for line in row["error"].splitlines()]
    return "\n".join(lines)


def attached_hub() -> Any:
    """The hub the latest session opened in this process was given (None: no servers)."""
    return _ATTACHED[0] if _ATTACHED else None
