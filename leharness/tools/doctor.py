"""Health checks of a sessions database for `lh doctor`: it reports, it never edits.

Checks: SQLite's own integrity check, projections against a rebuild (on a
scratch copy), tasks still marked running whose `lh` process is gone, and
artifact files that are missing or whose sha256 no longer matches. Lives with
the tools because tasks and artifacts are theirs (process liveness, hashing).
The one repair, `repair_projections`, rebuilds projections from the events.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from leharness import store
from leharness.projections import ArtifactRow, TaskRow
from leharness.store import health

from .artifacts import locate
from .tasks import file_sha256, process_alive


@dataclass
class Report:
    """What `lh doctor` found: `facts` describe the file, `problems` need attention."""

    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    drift: list[health.Drift] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def examine(conn: sqlite3.Connection) -> Report:
    """Run every check on an open (possibly read-only) connection."""
    report = Report()
    try:
        _examine(conn, report)
    except sqlite3.DatabaseError as error:
        if not health.is_corruption(error):
            raise
        report.problems.append(f"the file is damaged: {error}")
    return report


def _examine(conn: sqlite3.Connection, report: Report) -> None:
    damaged = health.integrity_problems(conn)
    if damaged:
        report.problems += [f"integrity_check: {line}" for line in damaged]
        return  # the other checks would read damaged pages
    report.facts.append("integrity_check: ok")
    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
        report.facts.append("no leharness schema yet: an empty database")
        return
    events, sessions = conn.execute(
        "SELECT count(*), count(DISTINCT session_id) FROM events"
    ).fetchone()
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    report.facts.append(f"{events:,} events in {sessions:,} sessions, schema version {version}")
    report.drift = health.rebuild_drift(conn)
    report.problems += [
        f"projection {d.table} differs from a rebuild of the events: {d.stale_rows} stale, "
        f"{d.missing_rows} missing rows (`lh doctor --repair` rebuilds it)"
        for d in report.drift
    ]
    if not report.drift:
        report.facts.append("projections match a rebuild from the events")
    report.problems += [_orphan(task) for task in orphaned_tasks(conn)]
    report.problems += artifact_problems(conn)


def orphaned_tasks(conn: sqlite3.Connection) -> list[TaskRow]:
    """Tasks the projection says are running whose `lh` process is no longer alive."""
    rows = conn.execute("SELECT * FROM tasks WHERE status = 'running' ORDER BY started_at")
    tasks = [TaskRow(**dict(row)) for row in rows]
    return [t for t in tasks if not t.harness_pid or not process_alive(t.harness_pid)]


def _orphan(task: TaskRow) -> str:
    owner = f"lh pid {task.harness_pid} is gone" if task.harness_pid else "no owner recorded"
    return (
        f"task {task.task_id} of session {task.session_id} is still marked running but "
        f"{owner}: `lh --session {task.session_id}` records it as cancelled"
    )


def artifact_problems(conn: sqlite3.Connection) -> list[str]:
    """Artifacts whose file is missing, or whose bytes no longer hash to the recorded sha256."""
    problems = []
    home = database_home(conn)
    for row in conn.execute("SELECT * FROM artifacts ORDER BY created_at, artifact_id"):
        artifact = ArtifactRow(**dict(row))
        path = locate(home, artifact.path)
        where = f"artifact {artifact.artifact_id} of session {artifact.session_id}"
        if not path.is_file():
            problems.append(f"{where}: file missing ({path})")
        elif artifact.sha256 and file_sha256(path) != artifact.sha256:
            problems.append(f"{where}: sha256 differs from the recorded one ({path})")
    return problems


def database_home(conn: sqlite3.Connection) -> Path:
    """The folder of the database `conn` has open: the home its artifact paths are under."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2]).parent
    return store.home_dir()


def repair_projections(conn: sqlite3.Connection) -> int:
    """Rebuild every projection from the events; returns the events replayed."""
    return store.rebuild(conn)
