"""`lh replay SESSION`: re-run a session against the current harness and report
the first event where the new run differs from the recording (exit code 1)."""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path

import click

from .errors import UserError, user_errors


@click.command("replay")
@click.argument("session")
@click.option(
    "--sandbox-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy the session's working directory here (new or empty folder) and run the "
    "tools for real in it. Default: tools answer from the recording.",
)
@click.option("--keep", is_flag=True, help="Keep the scratch database holding the replay.")
@user_errors
def replay_command(session: str, sandbox_dir: Path | None, keep: bool) -> None:
    """Re-run SESSION with its recorded model outputs; exit 1 where it diverges."""
    from leharness import projections, store
    from leharness.loop import rerun
    from leharness.loop.divergence import describe

    with closing(store.open_store()) as conn:
        recording = rerun.load_recording(conn, projections.resolve_session_id(conn, session))
    try:
        done = rerun.replay(recording, source_home=store.home_dir(), sandbox=sandbox_dir)
    except rerun.ReplayError as error:
        raise UserError(str(error)) from None
    if keep:
        click.echo(
            f"replay: session {done.replay_session_id} in {store.db_path(done.scratch_home)}"
        )
    else:
        shutil.rmtree(done.scratch_home, ignore_errors=True)
    found = done.comparison.divergence
    if found is None:
        click.echo(f"no divergence ({done.comparison.compared} events)")
        return
    click.echo(f"diverged at event {found.position} after {done.comparison.compared} equal events")
    click.echo(f"  recorded: {describe(found.recorded)}")
    click.echo(f"  replayed: {describe(found.replayed, found.replayed_data)}")
    raise click.exceptions.Exit(1)
