"""Old event shapes keep reading and projecting the same way (the frozen v1 fixture).

`tests/fixtures/events-v1.jsonl` holds sessions written by lh itself (made once with
`tests/fixtures/make_events_v1.py`): tools inline and in the background, a subagent,
a refused approval, MCP, a hook, a skill, checkpoints, compaction, a fork, a rewind,
model failure and cancellation, one event of every type there was. Its projection rows
are frozen beside it in `events-v1.projections.json`. Neither file is ever regenerated:
a new version of lh must import every line, validate every payload, and project exactly
these rows, or it has changed the meaning of an event (see DESIGN.md, "Events").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leharness import store
from leharness.store.events import EVENT_TYPES

from .util import snapshot

FIXTURES = Path(__file__).parent / "fixtures"
EVENTS = FIXTURES / "events-v1.jsonl"
EXPECTED = FIXTURES / "events-v1.projections.json"

#: The catalogue when the fixture was made: every type has at least one event in it.
V1_TYPES = {
    "session.created", "session.forked", "invocation.received", "invocation.auto",
    "step.started", "model.completed", "model.failed", "model.cancelled", "tool.started",
    "process.started", "tool.completed", "tool.failed", "approval.requested",
    "approval.decided", "task.started", "task.completed", "task.failed", "task.cancelled",
    "task.delivered", "artifact.created", "compaction.started", "compaction.summary",
    "compaction.summary.failed", "compaction.completed", "skill.loaded", "mcp.connected",
    "mcp.failed", "hook.ran", "checkpoint.file", "checkpoint.tree", "workspace.restored",
    "agent.finished",
}  # fmt: skip


def projected(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """The fixture imported the way `lh import` does, into a fresh file; every payload
    validated by today's models; the projection rows as JSON values."""
    loaded = store.read_import(EVENTS)
    assert not loaded.skipped
    conn = store.open_store(tmp_path / "sessions.db")
    done = store.import_records(conn, loaded.records)
    for session_id in done.sessions:
        list(store.read_events(conn, session_id))  # validates every payload
    return {
        table: [dict(row) for row in rows]
        for table, rows in json.loads(json.dumps(snapshot(conn))).items()
    }


def test_the_fixture_holds_every_v1_event_type_and_nothing_was_dropped() -> None:
    types = {json.loads(line)["type"] for line in EVENTS.read_text().splitlines()}
    assert types == V1_TYPES
    assert set(EVENT_TYPES) >= V1_TYPES  # a type may be added, never taken away


def test_v1_events_project_to_the_frozen_rows(tmp_path: Path) -> None:
    rows = projected(tmp_path)
    expected = json.loads(EXPECTED.read_text())
    # Projections may grow (a new table, a new column: "add freely"); what the fixture's
    # rows held must stay exactly as it was.
    for table, frozen in expected.items():
        assert table in rows, f"projection table {table} is gone"
        columns = set(frozen[0]) if frozen else set()
        now = [{k: v for k, v in row.items() if k in columns} for row in rows[table]]
        assert sorted(now, key=repr) == sorted(frozen, key=repr), table
