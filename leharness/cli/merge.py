"""`lh merge`: bring other sessions.db files (a Harbor job's trials) into this home."""

from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path

import click

from .errors import UserError


@click.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def merge_command(paths: tuple[Path, ...]) -> None:
    """Copy every sessions.db under PATHS into this home, keeping session ids.

    PATHS are Harbor job folders, trial folders or loose database files. Each
    file goes in as one transaction; merging the same file again adds nothing.
    The trials' result.json files fill the `trials` table, and each file's
    artifacts folder is copied beside this home's.
    """
    from leharness import store
    from leharness.store import merge

    files = merge.find_databases(paths)
    refused: list[str] = []
    totals = merge.Merged(Path("."))
    with closing(store.open_store()) as conn:
        ours = store.db_path().resolve()
        files = [f for f in files if f != ours]
        with (
            merge.Merger(conn) as merger,
            click.progressbar(
                files, label="merging", file=sys.stderr, item_show_func=_label, show_pos=True
            ) as bar,
        ):
            merger.prefetch(files)
            for path in bar:
                try:
                    done = merger.merge(path)
                except store.StoreError as error:
                    refused.append(str(error))
                    continue
                copy_artifacts(path.parent, store.home_dir())
                totals.sessions_added += done.sessions_added
                totals.sessions_extended += done.sessions_extended
                totals.sessions_unchanged += done.sessions_unchanged
                totals.events_added += done.events_added
        trials = merge.merge_trials(conn, paths, merger.trial_files)
    click.echo(
        f"merged {len(files) - len(refused)} of {len(files)} databases: "
        f"{totals.sessions_added} sessions added, {totals.sessions_extended} extended, "
        f"{totals.sessions_unchanged} already here; {totals.events_added} events; "
        f"{trials} trials"
    )
    if refused:
        raise UserError("refused: " + "\nrefused: ".join(refused))


def copy_artifacts(source_home: Path, home: Path) -> None:
    """Bring the merged file's artifacts/<session>/ folders along: artifact.created
    records paths relative to the home, so they are found here once copied. An
    artifact never changes once written, so a file already here is kept."""
    import shutil

    folder = source_home / "artifacts"
    if not folder.is_dir() or folder.resolve() == (home / "artifacts").resolve():
        return
    for session in folder.iterdir():
        if session.is_dir():
            shutil.copytree(
                session,
                home / "artifacts" / session.name,
                dirs_exist_ok=True,
                copy_function=_copy_new,
            )


def _copy_new(source: str, target: str) -> None:
    import shutil

    if not Path(target).exists():
        shutil.copy2(source, target)


def _label(path: Path | None) -> str:
    return "" if path is None else f"{path.parent.name}/{path.name}"
