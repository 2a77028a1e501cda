"""Commands over the stored history: `lh sessions`, `lh sql`, `lh fork`."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import click

from .completion import session_ids
from .errors import UserError
from .output import output_options, print_rows


@click.command("sessions")
@click.option("-n", "--limit", type=int, default=None, help="Show at most this many.")
@output_options
def sessions_command(limit: int | None, as_json: bool, as_csv: bool) -> None:
    """List sessions, newest first."""
    from leharness import store
    from leharness.projections import records

    with closing(store.open_existing()) as conn:
        rows = records.sessions(conn, limit)
    tokens = {row.id: row.completion_tokens for row in rows}
    if as_json or as_csv:
        columns = (
            "id", "title", "created_at", "event_count", "status", "parent_session_id",
            "steps", "prompt_tokens", "completion_tokens",
        )  # fmt: skip
        values = ([getattr(row, c) for c in columns] for row in rows)
        print_rows(columns, values, as_json=as_json, as_csv=as_csv)
        return
    from .usage import tokens_cell

    headers = ("id", "title", "created_at", "steps", "tokens in/out", "status")
    nested = _nested(rows, ("id", "title", "created_at", "steps", "prompt_tokens", "status"))
    shown = [
        [
            v[0],
            " ".join(str(v[1] or "").splitlines()),
            *v[2:4],
            tokens_cell(v[4], tokens[v[0]]),
            v[5],
        ]
        for v in nested
    ]  # a title from piped text has newlines: one line per session
    print_rows(headers, shown, as_json=False, as_csv=False)


def _nested(rows: list, columns: tuple[str, ...]) -> list[list]:
    """Top-level sessions newest first, each followed by its subagents, indented."""
    children: dict[str, list] = {}
    for row in rows:
        if row.parent_session_id:
            children.setdefault(row.parent_session_id, []).append(row)
    shown_ids = {row.id for row in rows}
    out: list[list] = []

    def add(row, depth: int) -> None:
        values = [getattr(row, c) for c in columns]
        if depth:
            values[1] = "  " * (depth - 1) + f"└ [{row.agent_type or 'agent'}] {values[1] or ''}"
        out.append(values)
        for child in reversed(children.get(row.id, [])):
            add(child, depth + 1)

    for row in rows:
        if not row.parent_session_id or row.parent_session_id not in shown_ids:
            add(row, 0)
    return out


@click.command("sql")
@click.argument("query")
@output_options
def sql_command(query: str, as_json: bool, as_csv: bool) -> None:
    """Run a read-only SQL QUERY against sessions.db.

    Example: lh sql "select type, count(*) from events group by type"
    """
    import sqlite3

    from leharness import store

    store.open_existing().close()  # migrate it if an older lh made it; never create it
    conn = store.connect_query(store.db_path())
    try:
        cursor = conn.execute(query)
        columns = [d[0] for d in cursor.description or ()]
        rows = [tuple(row) for row in cursor.fetchall()]
    except sqlite3.DatabaseError as error:
        if "readonly" in str(error):
            raise UserError("lh sql is read-only: history is not edited by a query") from None
        if "not authorized" in str(error) or "authorization denied" in str(error):
            raise UserError(store.QUERY_REFUSED) from None
        raise UserError(f"SQL error: {error}") from None
    finally:
        conn.close()
    print_rows(columns, rows, as_json=as_json, as_csv=as_csv)


@click.command("fork")
@click.argument("session", shell_complete=session_ids)
@click.option("--at", "at", type=int, default=None, help="Copy events 1..AT (default: all).")
def fork_command(session: str, at: int | None) -> None:
    """Branch SESSION into a new session; print the new session's id.

    The fork holds copies of SESSION's own events 1..AT. Its subagent sessions are not
    copied: their tasks show in the fork as the source's (forked_from), and `lh show`
    points at the source's children. Running background tasks are not inherited either:
    they go on in SESSION, and the fork records them as cancelled (reason "forked"), which
    its model is told at its next step."""
    from leharness import projections, store

    with closing(store.open_existing()) as conn:
        source = projections.resolve_session_id(conn, session)
        click.echo(store.fork(conn, source, at))


@click.command("show")
@click.argument("session", shell_complete=session_ids)
@click.option("--json", "as_json", is_flag=True, help="Output the messages as JSON.")
@click.option("--full", is_flag=True, help="Show tool results in full.")
@click.option("--at", "at", type=int, default=None, help="As it stood after event AT.")
def show_command(session: str, as_json: bool, full: bool, at: int | None) -> None:
    """Show the transcript of SESSION (id or prefix) from the projections."""
    import json

    from leharness import store
    from leharness.projections import records

    # Plain records, not the typed models: pydantic would double the start-up time.
    with closing(store.open_existing()) as live:
        session_id = records.resolve_session_id(live, session)
        conn, note = live, ""
        if at is not None:  # time travel: events 1..AT projected in a scratch database
            from leharness.store.timetravel import session_at

            last = records.session_row(live, session_id).event_count  # its last session_seq
            conn = session_at(live, session_id, at, records.TRANSCRIPT_PROJECTIONS)
            note = f"(as it stood after event {at} of {last})\n"
        row = records.session_row(conn, session_id)
        messages = records.all_messages(conn, session_id)
        tasks = records.tasks(conn, session_id)
    if as_json:
        from leharness.projections import Message, SessionRow

        payload = {
            "session": SessionRow(**row).model_dump(),
            "messages": [Message(**m).model_dump() for m in messages],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    from .transcript import format_transcript

    click.echo(note + format_transcript(row, messages, full=full))
    for task in tasks:
        child = task.child_session_id
        if child and task.forked_from:  # copied by a fork: the source's subagent, not this one's
            click.echo(f"\nsubagent {child} of session {task.forked_from}: lh show {child}")
        elif child:
            click.echo(f"\nsubagent {child} ({task.status}): lh show {child}")


def _export_jsonl(conn, session_id: str, with_children: bool, output) -> None:
    from leharness import store

    for line in store.export_lines(conn, store.session_tree(conn, session_id, with_children)):
        output.write(line + "\n")


def _export_atif(conn, session_id: str, with_children: bool, output) -> None:
    import json

    from leharness.projections.atif import trajectory

    if with_children:
        raise UserError("--with-children is for jsonl: an ATIF file names its subagents' sessions")
    output.write(json.dumps(trajectory(conn, session_id), indent=2, ensure_ascii=False) + "\n")


def _export_readable(fmt: str):
    def write(conn, session_id: str, with_children: bool, output) -> None:
        from .export import READABLE

        output.writelines(READABLE[fmt](conn, session_id))

    return write


#: `lh export --format NAME`: each writes one session (id resolved) to `output`.
EXPORT_FORMATS = {
    "jsonl": _export_jsonl,
    "atif": _export_atif,
    "md": _export_readable("md"),  # subagents always nested
    "html": _export_readable("html"),
}


@click.command("export")
@click.argument("session", shell_complete=session_ids)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(EXPORT_FORMATS)),
    default="jsonl",
    show_default=True,
    help="jsonl: the events (lh import loads them back); atif: Harbor's trajectory format; "
    "md: a readable transcript; html: one self-contained page. md and html nest subagents.",
)
@click.option("--with-children", is_flag=True, help="jsonl: include its subagents' sessions.")
@click.option("-o", "--output", type=click.File("w"), default="-", help="File (default stdout).")
def export_command(session: str, fmt: str, with_children: bool, output) -> None:
    """Write SESSION's events as JSON lines (lh import loads them back), or another format:
    a Markdown transcript, one HTML page, Harbor's ATIF. Secrets stay redacted."""
    from leharness import projections, store

    with closing(store.open_existing()) as conn:
        session_id = projections.resolve_session_id(conn, session)
        EXPORT_FORMATS[fmt](conn, session_id, with_children, output)


@click.command("import")
@click.argument("source", type=click.Path(exists=True, allow_dash=True, path_type=Path))
@click.option(
    "--as-new", is_flag=True, help="Import as new sessions with fresh ids, even if already here."
)
def import_command(source: Path, as_new: bool) -> None:
    """Load exported events from SOURCE; print the ids of the sessions that got events.

    Events keep their ids, so importing the same file again adds nothing (and a later
    export of a session that grew adds only its new events); --as-new makes a copy.
    SOURCE may also be a session of the original TypeScript leharness: its
    sessions/<id>/ folder, that folder's events.jsonl, or a sessions/ folder.
    """
    from leharness import store

    # click.open_file("-"): get_text_stream is deprecated (gone in Click 9)
    lines = click.open_file("-") if str(source) == "-" else None
    loaded = store.read_import(source, lines)
    with closing(store.open_store()) as conn:
        done = store.import_records(conn, loaded.records, as_new=as_new)
    for new_id in done.sessions.values():
        click.echo(new_id)
    if done.already:
        what = "nothing imported: " if not done.sessions else ""
        click.echo(
            f"{what}{len(done.already)} of the file's sessions are here already with all "
            f"their events ({', '.join(done.already[:3])}{', …' if len(done.already) > 3 else ''})"
            "; --as-new imports a copy",
            err=True,
        )
    if loaded.skipped:
        kinds = ", ".join(f"{name} ({n})" for name, n in sorted(loaded.skipped.items()))
        total = sum(loaded.skipped.values())
        click.echo(f"skipped {total} events of types leharness does not know: {kinds}", err=True)
