"""`lh config`: the settings in effect and where each one comes from."""

from __future__ import annotations

import click

from .errors import user_errors
from .output import output_options, print_rows


@click.command("config")
@output_options
@user_errors
def config_command(as_json: bool, as_csv: bool) -> None:
    """Show the effective settings and where each comes from (flag, env, settings, default)."""
    from .settings import resolve_settings

    settings = resolve_settings()
    rows = [(v.key, v.value, v.source, v.origin) for v in settings.values.values()]
    if not (as_json or as_csv):
        rows = [(k, "" if value is None else value, s, o) for k, value, s, o in rows]
    print_rows(("setting", "value", "source", "from"), rows, as_json=as_json, as_csv=as_csv)
    if not (as_json or as_csv):
        found = "" if settings.path.exists() else " (not found)"
        click.echo(f"\nsettings file: {settings.path}{found}")
