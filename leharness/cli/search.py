"""`lh search QUERY`: full-text search over the conversation of every session."""

from __future__ import annotations

import re
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta

import click

from .errors import UserError

ROLES = ("user", "assistant", "tool")
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@click.command("search")
@click.argument("query")
@click.option("--session", "session_ref", metavar="ID", help="Only this session (id or prefix).")
@click.option("--since", metavar="WHEN", help="Only since WHEN: 2h, 3d, 1w or a date (UTC).")
@click.option("--role", type=click.Choice(ROLES), help="Only messages of this role.")
@click.option("--tool", metavar="NAME", help="Only calls of this tool and their results.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Output the hits as JSON.")
def search_command(
    query: str,
    session_ref: str | None,
    since: str | None,
    role: str | None,
    tool: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Search every session's prompts, answers, tool calls and results for QUERY.

    QUERY is FTS5 syntax: words (all must match), "a phrase", prefix*, NEAR(a b),
    OR, NOT. Hits are ranked best first.
    """
    from leharness import store
    from leharness.projections import records
    from leharness.projections.search import SearchFilters, search

    with closing(store.open_existing()) as conn:
        session_id = records.resolve_session_id(conn, session_ref) if session_ref else None
        filters = SearchFilters(session_id, parse_since(since), role, tool)
        hits = search(conn, query, filters, limit)
    if as_json:
        _print_json(hits)
    elif not hits:
        click.echo("no matches", err=True)
    for hit in [] if as_json else hits:
        _print_hit(hit)
    if not hits:
        raise click.exceptions.Exit(1)


def parse_since(text: str | None, now: datetime | None = None) -> str | None:
    """An ISO-8601 UTC timestamp from `2h`/`3d`/`1w`/`30m` or a date or date-time."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        when = now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UserError(
                f"--since {text!r}: give 30m, 2h, 3d, 1w or a date such as 2026-01-31"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def age(ts: str, now: datetime | None = None) -> str:
    """`5m ago`, `3h ago`, `2d ago` for an events.ts timestamp."""
    then = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def _print_hit(hit) -> None:
    from leharness.projections.search import plain_snippet

    who = hit.role + (f" ({hit.tool})" if hit.tool else "")
    head = click.style(hit.session_id, fg="yellow")
    click.echo(f"{head}  #{hit.session_seq}  {age(hit.ts)}  {who}  {hit.title or ''}".rstrip())
    on, off = "\x1b[1;31m", "\x1b[0m"
    snippet = " ".join(hit.snippet.split())
    if not sys.stdout.isatty():
        on = off = ""
    click.echo("    " + plain_snippet(snippet, on, off) + "\n")


def _print_json(hits) -> None:
    import json

    from leharness.projections.search import plain_snippet

    rows = [
        {**{k: hit[k] for k in hit if k != "snippet"}, "snippet": plain_snippet(hit.snippet)}
        | {"highlighted": plain_snippet(hit.snippet, "[", "]")}
        for hit in hits
    ]
    click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
