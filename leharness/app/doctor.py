"""Health checks of a sessions database for `lh doctor`: it reports, it never edits.

Checks: SQLite's own integrity check, every event's payload against its
model (rows another program inserted), projections against a rebuild (on a
scratch copy), tasks still marked running whose `lh` process is gone, tool
calls without a result and subagent sessions that never finished in sessions
no `lh` process runs now, and artifact files that are missing or whose sha256
no longer matches. Lives in the app: it combines the store's file checks
(store/health.py) with what only the tools know (process liveness, artifact
hashing), and is no tool the model may call. The one repair, `repair_projections`, rebuilds
projections from the events.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from leharness import store
from leharness.projections import ArtifactRow, TaskRow
from leharness.store import health
from leharness.tools.artifacts import locate
from leharness.tools.tasks import file_sha256, process_alive

Live = Callable[[str], bool]


@dataclass
class Report:
    """What `lh doctor` found: `facts` describe the file, `problems` need attention."""

    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    drift: list[health.Drift] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # of an interrupted reinstall

    @property
    def healthy(self) -> bool:
        return not self.problems


def examine(conn: sqlite3.Connection, live: Live = lambda _session_id: False) -> Report:
    """Run every check on an open (possibly read-only) connection. `live` says whether an
    lh process is running a top-level session now (its calls may rightly be open)."""
    report = Report()
    live = functools.cache(live)  # one lock-file probe per session, however many rows name it
    try:
        _examine(conn, report, live)
    except sqlite3.DatabaseError as error:
        if not health.is_corruption(error):
            raise
        report.problems.append(f"the file is damaged: {error}")
    return report


def _examine(conn: sqlite3.Connection, report: Report, live: Live) -> None:
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
    foreign = foreign_event_problems(conn)
    report.problems += foreign
    if not foreign:
        report.facts.append("every event matches its type's model")
    undecodable = [
        f"{event.describe()}; another program wrote it: lh reads its bad bytes as U+FFFD"
        for event in itertools.islice(store.non_utf8_events(conn), SHOWN_FOREIGN)
    ]
    report.problems += undecodable
    report.drift = health.rebuild_drift(conn)
    report.problems += [
        f"projection {d.table} differs from a rebuild of the events: "
        f"{d.note or f'{d.stale_rows} stale, {d.missing_rows} missing rows'} "
        "(`lh doctor --repair` rebuilds it)"
        for d in report.drift
    ]
    if not report.drift:
        report.facts.append("projections match a rebuild from the events")
    from leharness.store.reinstall import leftovers

    report.leftovers = leftovers(conn)
    report.problems += [
        f"table {name} is left from an interrupted projection reinstall "
        "(`lh doctor --repair` removes it)"
        for name in report.leftovers
    ]
    report.problems += [_orphan(task) for task in orphaned_tasks(conn)]
    report.problems += unanswered_calls(conn, live)
    report.problems += unfinished_children(conn, live)
    report.problems += artifact_problems(conn)


# Each session with its top-level ancestor (the one an lh process locks and runs).
_ROOTS = """
WITH RECURSIVE up(id, root, depth) AS (
    SELECT id, id, 0 FROM sessions WHERE parent_session_id IS NULL
    UNION ALL
    SELECT s.id, up.root, up.depth + 1 FROM sessions AS s JOIN up ON s.parent_session_id = up.id
    WHERE up.depth < 50
)
"""


def unanswered_calls(conn: sqlite3.Connection, live: Live) -> list[str]:
    """Tool calls without a result in sessions that no lh process is running."""
    rows = conn.execute(
        _ROOTS + "SELECT c.session_id, c.call_id, c.name, up.root FROM tool_calls AS c "
        "JOIN up ON up.id = c.session_id WHERE c.status IN ('requested', 'running') "
        "ORDER BY c.session_id, c.model_seq, c.position"
    )
    return [
        f"tool call {call_id} ({name}) of session {session_id} has no result: "
        f"`lh --session {root}` records it as interrupted"
        for session_id, call_id, name, root in rows
        if not live(root)
    ]


def unfinished_children(conn: sqlite3.Connection, live: Live) -> list[str]:
    """Subagent sessions still marked running whose top-level session no lh process runs."""
    rows = conn.execute(
        _ROOTS + "SELECT s.id, s.parent_session_id, up.root FROM sessions AS s "
        "JOIN up ON up.id = s.id WHERE s.parent_session_id IS NOT NULL "
        "AND s.status IN ('new', 'running') ORDER BY s.created_at, s.id"
    )
    return [
        f"subagent session {session_id} of {parent} never finished its run: "
        f"`lh --session {root}` recovers and finishes it"
        for session_id, parent, root in rows
        if not live(root)
    ]


SHOWN_FOREIGN = 10  # events listed one by one; the rest are counted


def foreign_event_problems(conn: sqlite3.Connection) -> list[str]:
    """Rows of `events` no leharness wrote: an unknown type or a payload its model refuses."""
    found = list(store.foreign_events(conn))
    problems = [
        f"{foreign.describe()}; another program wrote it, and as events are append-only "
        "it cannot be deleted: lh skips it when reading the history"
        for foreign in found[:SHOWN_FOREIGN]
    ]
    if len(found) > SHOWN_FOREIGN:
        problems.append(f"… and {len(found) - SHOWN_FOREIGN:,} more such events")
    return problems


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
    from leharness.store.backup import database_file

    path = database_file(conn)
    return path.parent if path else store.home_dir()


def repair_projections(conn: sqlite3.Connection) -> int:
    """Rebuild every projection from the events; returns the events replayed. On a big
    file the new tables are built beside the old ones in short transactions, so that
    other `lh` processes keep writing meanwhile."""
    from leharness.store.backup import database_file
    from leharness.store.reinstall import drop_leftovers, reinstall_in_chunks
    from leharness.store.schema import CHUNKED_FROM_EVENTS

    path = database_file(conn)
    (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    if path is None or last <= CHUNKED_FROM_EVENTS:
        replayed = store.rebuild(conn)
    else:
        replayed = reinstall_in_chunks(path, force=True).events
    if path is not None:
        drop_leftovers(path)
    return replayed
