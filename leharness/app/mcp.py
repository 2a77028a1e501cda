"""MCP at the CLI: `lh mcp list`, `/mcp`, and the servers a run connects to.

The servers are connected once per `lh` process, the first time a session
opens (no mcp.json: nothing is imported or started), and closed at exit. Each
session opened in the run records one `mcp.connected` / `mcp.failed` event
per configured server before its first invocation; problems are also printed
on stderr as warnings, and the session goes on without those tools.
"""

from __future__ import annotations

import atexit
import json
import os
from typing import Any

import click

from .errors import UserError
from .output import output_options, print_rows

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


def current_hub(warn: bool = True) -> Any:
    """This process's connected Hub for $LEHARNESS_HOME/mcp.json (None without the file)."""
    import hashlib

    from leharness import store
    from leharness.tools.mcp import ConfigFileError, Hub, config_path, load_config

    path = config_path(store.home_dir())
    if not path.exists():
        return None
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = (str(path.resolve()), digest)
        if key in _HUBS:
            return _HUBS[key]
        config = load_config(path)
    except (OSError, ConfigFileError) as error:
        if warn:
            click.echo(f"warning: MCP servers not loaded: {error}", err=True)
        return None
    hub = Hub(config).start(connect_timeout_s())
    _HUBS[key] = hub
    if warn:
        for line in problems(hub):
            click.echo(f"warning: {line}", err=True)
    return hub


def problems(hub: Any) -> list[str]:
    lines = [f"mcp.json: server {p.server!r} skipped: {p.error}" for p in hub.config.problems]
    lines += [c.down_message() for c in hub.connections if c.status == "failed"]
    return lines


def attach(loop_session: Any) -> None:
    """Offer the MCP tools to this session and record the servers' status in it."""
    from leharness.tools.mcp import mcp_tools, status_events

    hub = current_hub()
    _ATTACHED[:] = [hub] if hub is not None else []
    if hub is None:
        return
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


def show_servers(console: Any) -> None:
    """`/mcp` in the interactive session: the servers this session was given."""
    hub = _ATTACHED[0] if _ATTACHED else None
    console.print(describe_servers(hub), markup=False, highlight=False)


@click.group("mcp")
def mcp_group() -> None:
    """MCP servers configured in $LEHARNESS_HOME/mcp.json."""


@mcp_group.command("list")
@output_options
def list_command(as_json: bool, as_csv: bool) -> None:
    """Connect to each configured server and show its status and tools."""
    from leharness import store
    from leharness.tools.mcp import ConfigFileError, Hub, config_path, load_config

    path = config_path(store.home_dir())
    try:
        config = load_config(path)
    except ConfigFileError as error:
        raise UserError(str(error)) from None
    if not config.servers and not config.problems:
        click.echo("[]" if as_json else f"no MCP servers configured in {path}")
        return
    hub = Hub(config).start(connect_timeout_s())
    try:
        rows = status_rows(hub)
    finally:
        hub.close()
    failed = [row for row in rows if row["status"] != "connected"]
    if as_json or as_csv:
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        else:
            columns = ("server", "transport", "status", "tools", "error")
            values = [[r[c] if c != "tools" else ", ".join(r[c]) for c in columns] for r in rows]
            print_rows(columns, values, as_json=False, as_csv=True)
    else:
        print_table(rows)
    if failed:
        raise click.exceptions.Exit(1)


def print_table(rows: list[dict[str, Any]]) -> None:
    """A table that fits the terminal (tools wrap), then each failed server's error and the
    last lines it wrote to stderr."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("server", no_wrap=True)
    table.add_column("transport", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tools", overflow="fold", ratio=1)
    styles = {"connected": "green", "failed": "red", "invalid": "red"}
    for row in rows:
        status = Text(row["status"], style=styles.get(row["status"], ""))
        table.add_row(row["server"], row["transport"] or "-", status, ", ".join(row["tools"]))
    console.print(table)
    for row in rows:
        if row["error"]:
            console.print(Text(f"\n{row['server']}: ", style="bold red"), end="")
            console.print(Text(row["error"]), soft_wrap=True)
