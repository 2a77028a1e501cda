"""`lh rewind SESSION --at N`, `lh diff SESSION [--at N]` and `/rewind` in the REPL.

Rewinding forks the conversation at event N and puts the workspace files the
session changed after N back as they were then (from the checkpoints), after
showing the diff and asking. A file changed outside lh since is reported and
left as it is: nothing the user wrote is overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .errors import UserError


@dataclass
class RewindResult:
    new_session_id: str | None = None
    restored: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    cancelled: bool = False


def rewind(
    conn: Any,
    session_id: str,
    at: int,
    *,
    files: bool = True,
    conversation: bool = True,
    confirm: Callable[[str], bool],
    echo: Callable[[str], None],
) -> RewindResult:
    """Show what rewinding to event `at` changes, ask, then fork and/or restore files."""
    from leharness import store
    from leharness.store import events as ev
    from leharness.tools import rewind as rw

    last = store.last_seq(conn, session_id)
    if not 1 <= at <= last:
        raise UserError(f"--at must be between 1 and {last} for session {session_id}")
    changes = rw.plan(conn, store.home_dir(), session_id, at) if files else []
    outside = [c for c in changes if c.outside]
    needed = [c for c in changes if c.needed and not c.outside]
    for change in outside:
        echo(f"changed outside lh since event {at}, left as it is: {change.path}")
    for change in needed:
        echo(rw.unified_diff(change.path, change.current, change.target).rstrip("\n"))
    what = []
    if needed:
        what.append(f"restore {len(needed)} file{'s' if len(needed) != 1 else ''}")
    if conversation:
        what.append(f"fork the conversation at event {at}")
    if not what:
        echo(f"no file to restore: the workspace is as it was at event {at}")
        return RewindResult(skipped=[c.path for c in outside])
    if not confirm(" and ".join(what).capitalize() + "?"):
        return RewindResult(cancelled=True)
    applied = rw.apply(needed)
    result = RewindResult(restored=applied.restored, skipped=[c.path for c in outside])
    target = session_id
    if conversation:
        result.new_session_id = target = store.fork(conn, session_id, at)
    if applied.restored or outside:
        store.append(
            conn,
            target,
            ev.WorkspaceRestored(
                source_session_id=session_id,
                at_session_seq=at,
                restored=[str(p) for p in applied.restored],
                skipped=[str(c.path) for c in outside],
            ),
        )
    return result


@click.command("rewind")
@click.argument("session")
@click.option("--at", "at", type=int, required=True, help="The event to go back to.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before changing anything.")
@click.option("--files-only", is_flag=True, help="Restore the files; keep the conversation.")
@click.option("--conversation-only", is_flag=True, help="Fork the conversation; leave files.")
def rewind_command(
    session: str, at: int, yes: bool, files_only: bool, conversation_only: bool
) -> None:
    """Go back to event AT of SESSION: fork the conversation there and put the files the
    session changed after AT back as they were (shows the diff and asks first).

    A file changed outside lh since AT is reported and left as it is."""
    from leharness import projections, store

    if files_only and conversation_only:
        raise UserError("--files-only and --conversation-only exclude each other")
    with closing(store.open_store()) as conn:
        session_id = projections.resolve_session_id(conn, session)
        result = rewind(
            conn,
            session_id,
            at,
            files=not conversation_only,
            conversation=not files_only,
            confirm=(lambda question: True) if yes else _ask,
            echo=click.echo,
        )
    if result.cancelled:
        click.echo("nothing changed", err=True)
        raise click.exceptions.Exit(1)
    for path in result.restored:
        click.echo(f"restored {path}", err=True)
    if result.new_session_id:
        click.echo(result.new_session_id)
        click.echo(f"resume: lh --session {result.new_session_id}", err=True)


def _ask(question: str) -> bool:
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        return False


@click.command("diff")
@click.argument("session")
@click.option("--at", "at", type=int, default=0, help="Only what changed after event AT.")
def diff_command(session: str, at: int) -> None:
    """Show what SESSION changed in the workspace (from its checkpoints), like git diff.

    With --at: only the changes after event AT (what `lh rewind --at AT` undoes)."""
    from leharness import projections, store
    from leharness.tools import rewind as rw

    with closing(store.open_existing()) as conn:
        session_id = projections.resolve_session_id(conn, session)
        row = projections.get_session(conn, session_id)
        root = Path(row.cwd) if row and row.cwd else None
        click.echo(rw.session_diff(conn, store.home_dir(), session_id, at, root), nl=False)


# -- /rewind in the interactive session ----------------------------------------------


def turns(conn: Any, session_id: str) -> list[tuple[int, str]]:
    """(session_seq, prompt) of each turn the user typed, oldest first."""
    rows = conn.execute(
        "SELECT session_seq, content FROM messages WHERE session_id = ? AND kind = 'prompt' "
        "ORDER BY session_seq",
        (session_id,),
    ).fetchall()
    return [(seq, " ".join(text.split())[:70]) for seq, text in rows]


def rewind_in_repl(repl: Any, arg: str) -> None:
    """`/rewind`: list the turns; `/rewind K`: show what going back to before turn K
    changes; `/rewind K yes`: do it and switch to the forked session."""
    from .session import open_session

    conn, session_id = repl.active.loop.conn, repl.active.session_id
    listed = turns(conn, session_id)
    parts = arg.split()
    print_ = lambda text: repl.console.print(text, markup=False, highlight=False)  # noqa: E731
    if not parts or not parts[0].isdigit() or not 1 <= int(parts[0]) <= len(listed):
        for number, (seq, text) in enumerate(listed, start=1):
            print_(f"{number:3}  (event {seq})  {text}")
        print_("/rewind K goes back to before turn K (it shows the changes and asks)")
        return
    seq, _ = listed[int(parts[0]) - 1]
    confirmed = parts[1:] == ["yes"]

    def confirm(question: str) -> bool:
        if not confirmed:
            print_(f"{question} Type /rewind {parts[0]} yes to do it.")
        return confirmed

    from leharness import store

    with closing(store.open_store()) as writer:  # the REPL's own connection writes only events
        result = rewind(writer, session_id, seq - 1, confirm=confirm, echo=print_)
    if result.new_session_id:
        repl.active = open_session(
            result.new_session_id, False, channel=repl.active.loop.channel, **repl.options
        )
        print_(f"rewound to before turn {parts[0]}: now in session {result.new_session_id}")


def turn_choices(repl: Any):
    listed = turns(repl.active.loop.conn, repl.active.session_id)
    return [(str(n), text) for n, (_, text) in enumerate(listed, start=1)]
