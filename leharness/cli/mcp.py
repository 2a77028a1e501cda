"""MCP at the CLI: `lh mcp list` and `/mcp`. Connecting the servers is the app's
(app/mcp.py); this module only shows them."""

from __future__ import annotations

import json
from typing import Any

import click

from leharness.app.mcp import attached_hub, connect_timeout_s, describe_servers, status_rows

from .output import output_options, print_rows


def warn(line: str) -> None:
    """How the CLI tells an MCP problem: a warning line on stderr."""
    click.echo(f"warning: {line}", err=True)


def show_servers(console: Any) -> None:
    """`/mcp` in the interactive session: the servers this session was given."""
    console.print(describe_servers(attached_hub()), markup=False, highlight=False)


@click.group("mcp")
def mcp_group() -> None:
    """MCP servers configured in $LEHARNESS_HOME/mcp.json."""


@mcp_group.command("list")
@output_options
def list_command(as_json: bool, as_csv: bool) -> None:
    """Connect to each configured server and show its status and tools."""
    from leharness import store
    from leharness.tools.mcp import Hub, config_path, load_config

    path = config_path(store.home_dir())
    config = load_config(path)  # a ConfigFileError is a UserError: one line, exit code 2
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
