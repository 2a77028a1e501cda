"""`lh config`: the settings in effect and where each one comes from."""

from __future__ import annotations

import click

from .output import output_options, print_rows


@click.command("config")
@output_options
def config_command(as_json: bool, as_csv: bool) -> None:
    """Show the effective settings and where each comes from (flag, env, settings, default)."""
    from leharness.app.settings import resolve_settings

    settings = resolve_settings()
    rows = [(v.key, effective(settings, v), v.source, v.origin) for v in settings.values.values()]
    print_rows(("setting", "value", "source", "from"), rows, as_json=as_json, as_csv=as_csv)
    if not (as_json or as_csv):
        found = "" if settings.path.exists() else " (not found)"
        click.echo(f"\nsettings file: {settings.path}{found}")


OPENAI_URL = "https://api.openai.com/v1"  # the openai SDK's own default


def effective(settings, value) -> object:
    """What a run uses for this setting, also when the setting leaves it to the model or
    the provider (those are None in the settings themselves)."""
    if value.value is not None:
        return value.value
    if value.key == "context_window":
        from leharness.loop.compaction import context_window

        return context_window(settings["model"])
    if value.key == "base_url":
        return OPENAI_URL
    if value.key == "sandbox":  # what a run picks
        from leharness.app.session import sandbox_mode

        return sandbox_mode(None)
    return ""
