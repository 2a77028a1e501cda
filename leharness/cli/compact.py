"""`lh compact SESSION` and the REPL's `/compact`: run compaction tier T4 now."""

from __future__ import annotations

from typing import Any

import click

from .completion import session_ids
from .options import context_window_option


@click.command("compact")
@click.argument("session_ref", metavar="SESSION", shell_complete=session_ids)
@click.option("--provider", help="openai or ollama  [env LEHARNESS_PROVIDER]")
@click.option("--model", help="Model name  [env LEHARNESS_MODEL]")
@click.option("--base-url", help="OpenAI-compatible server URL  [env OPENAI_BASE_URL]")
@context_window_option
def compact_command(
    session_ref: str,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    context_window: int | None,
) -> None:
    """Summarise the oldest turns of SESSION now (compaction tier T4)."""
    import asyncio

    from leharness.app.settings import resolve_settings
    from leharness.loop import compaction

    from .session import open_session

    flags = dict(provider=provider, model=model, base_url=base_url, context_window=context_window)
    settings = resolve_settings(flags)
    # A summary calls no tool: no MCP server is started for it.
    options = {key: settings[key] for key in flags}
    active = open_session(session_ref, False, max_steps=1, mcp=False, **options)
    result = asyncio.run(compaction.compact_now(active.loop))
    click.echo(describe(result))
    if result.error is not None:
        raise click.exceptions.Exit(1)


def describe(result: Any) -> str:
    """One line saying what a manual compaction did."""
    if result.error is not None:
        return f"compaction failed, nothing changed: {result.error}"
    if result.summary is None:
        return "nothing to compact: the conversation is no longer than its two latest turns"
    head = (result.summary.text or "").splitlines()[0].strip("[]")
    return f"summarised events {result.summary.from_seq}–{result.summary.to_seq}: {head}"


async def compact_in_repl(active: Any, console: Any) -> None:
    """`/compact`: the same as `lh compact` on the REPL's session. The REPL runs it as it
    runs an answer, so Ctrl-C or Esc stops it (recorded as a failed summary)."""
    import asyncio

    from leharness.loop import compaction

    try:
        result = await compaction.compact_now(active.loop)
    except asyncio.CancelledError:
        console.print("(compaction cancelled)", style="yellow")
        return
    console.print(describe(result), style="red" if result.error else "dim")
