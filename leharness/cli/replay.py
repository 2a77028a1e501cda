"""`lh replay SESSION`: re-run a session against the current harness and report
the first event where the new run differs from the recording (exit code 1)."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import click

from .completion import session_ids
from .options import context_window_option


@click.command("replay")
@click.argument("session", shell_complete=session_ids)
@click.option(
    "--sandbox-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy the session's working directory here (new or empty folder) and run the "
    "tools for real in it. Default: tools answer from the recording.",
)
@click.option("--keep", is_flag=True, help="Keep the scratch database holding the replay.")
@click.option("--json", "as_json", is_flag=True, help="Output the outcome as JSON.")
@context_window_option
def replay_command(
    session: str, sandbox_dir: Path | None, keep: bool, as_json: bool, context_window: int | None
) -> None:
    """Re-run SESSION with its recorded model outputs; exit 1 where it diverges.

    The context window is --context-window (or its variable or settings.toml), else the
    one the recording was compacted under."""
    from leharness import projections, store
    from leharness.app.settings import resolve_settings
    from leharness.replay import rerun

    window = resolve_settings({"context_window": context_window})["context_window"]

    with closing(store.open_existing()) as conn:
        recording = rerun.load_recording(conn, projections.resolve_session_id(conn, session))
    done = rerun.replay(
        recording, source_home=store.home_dir(), sandbox=sandbox_dir, context_window=window
    )
    kept = str(store.db_path(done.scratch_home)) if keep else None
    if not keep:
        import shutil

        shutil.rmtree(done.scratch_home, ignore_errors=True)
    click.echo(report_json(done, kept) if as_json else report_text(done, kept))
    if done.comparison.divergence is not None:
        raise click.exceptions.Exit(1)


def report_text(done, kept: str | None) -> str:
    from leharness.replay.divergence import describe

    lines = [f"replay: session {done.replay_session_id} in {kept}"] if kept else []
    found, compared = done.comparison.divergence, done.comparison.compared
    if found is None:
        return "\n".join([*lines, f"no divergence ({compared} events)"])
    return "\n".join(
        [
            *lines,
            f"diverged at event {found.position} after {compared} equal events",
            f"  recorded: {describe(found.recorded)}",
            f"  replayed: {describe(found.replayed, found.replayed_data)}",
        ]
    )


def report_json(done, kept: str | None) -> str:
    found = done.comparison.divergence
    replayed = found.replayed.as_record() if found and found.replayed else None
    if replayed is not None:
        replayed["data"] = found.replayed_data  # in the recording's terms
    return json.dumps(
        {
            "session_id": done.recording.session_id,
            "diverged": found is not None,
            "compared": done.comparison.compared,
            "position": found.position if found else None,
            "recorded": found.recorded.as_record() if found and found.recorded else None,
            "replayed": replayed,
            "replay_session_id": done.replay_session_id,
            "replay_database": kept,
        },
        indent=2,
        ensure_ascii=False,
    )
