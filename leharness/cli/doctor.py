"""`lh doctor [--repair]`: check sessions.db and say what was found."""

from __future__ import annotations

from contextlib import closing

import click

from .errors import UserError


@click.command("doctor")
@click.option("--repair", is_flag=True, help="Rebuild projections that differ from the events.")
def doctor_command(repair: bool) -> None:
    """Check sessions.db: integrity, event payloads, projections against a rebuild,
    orphaned tasks, tool calls without a result, unfinished subagent sessions and artifact
    files; and say whether bash can run in the sandbox here. Exit 0 healthy, 1 problems
    found. It never edits the file unless --repair is given, and then only rebuilds
    projections from the events."""
    from leharness import store
    from leharness.app import doctor

    path = store.db_path()
    click.echo(sandbox_status())  # about this machine: said even without a database
    store.check_is_sqlite(path)
    if not path.exists():
        raise UserError(f"no database at {path}: nothing to check (is LEHARNESS_HOME right?)")
    with closing(store.connect_readonly(path)) as conn:
        report = doctor.examine(conn, _live)
    click.echo(str(path))
    _print(report)
    if repair and (report.drift or report.leftovers):
        with closing(store.open_store(path)) as conn:
            replayed = doctor.repair_projections(conn)
        click.echo(f"repaired: rebuilt every projection from {replayed:,} events")
        with closing(store.connect_readonly(path)) as conn:
            report = doctor.examine(conn, _live)
        _print(report)
    raise click.exceptions.Exit(0 if report.healthy else 1)


def sandbox_status() -> str:
    """One line: can bash commands run in the sandbox here, and in which mode by default."""
    from leharness.tools import sandbox

    reason = sandbox.unavailable(fresh=True)  # not a success remembered from an earlier run
    if reason:
        return f"! sandbox: off: {reason}; bash commands run unconfined"
    return (
        f"✓ sandbox: {sandbox.version() or 'bubblewrap'} works; bash commands run in "
        f"{sandbox.DEFAULT} unless --sandbox / LEHARNESS_SANDBOX / settings say otherwise"
    )


def _live(session_id: str) -> bool:
    """Whether an lh process runs this top-level session now (it holds its lock)."""
    from leharness import store
    from leharness.app.locks import holder_pid

    return holder_pid(store.home_dir(), session_id) is not None


def _print(report) -> None:
    for fact in report.facts:
        click.echo(f"✓ {fact}")
    for problem in report.problems:
        click.echo(f"✗ {problem}")
    found = len(report.problems)
    click.echo("healthy" if not found else f"{found} problem{'s' if found > 1 else ''} found")
