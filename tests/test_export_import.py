"""Export -> import round trip gives identical projections (ids remapped)."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from leharness import projections, store
from leharness.cli import cli
from leharness.loop import runner
from leharness.tools import default_registry

from .loop_helpers import make_session
from .test_subagents import RoutingModel, answer, tool
from .util import snapshot


def test_export_then_import_reproduces_the_projections(isolated_home, tmp_path):
    model = RoutingModel(
        {
            "parent task": [
                tool("bash", "t1", command="echo hi"),
                tool("spawn_agent", "t2", prompt="child: help"),
                answer("waiting"),
                answer("done"),
            ],
            "child: help": [answer("helped")],
        }
    )
    session = make_session(model, tools=default_registry())
    asyncio.run(runner.run_until_settled(session, "parent task", 30.0, True))
    (task,) = projections.tasks(session.conn, session.session_id)
    child = task.child_session_id

    exported = CliRunner().invoke(cli, ["export", session.session_id, "--with-children"])
    assert exported.exit_code == 0
    lines = exported.output.splitlines()
    assert {json.loads(line)["session_id"] for line in lines} == {session.session_id, child}

    dump = tmp_path / "session.jsonl"
    dump.write_text(exported.output)
    imported = CliRunner().invoke(cli, ["import", str(dump)])
    assert imported.exit_code == 0, imported.output
    new_parent, new_child = imported.output.split()
    before = snapshot(session.conn, rename={session.session_id: "P", child: "C"})
    after = snapshot(session.conn, rename={new_parent: "P", new_child: "C"})
    for table in ("messages", "tool_calls", "artifacts"):
        assert ours(after[table]) == ours(before[table]), table
    new_child_row = projections.get_session(session.conn, new_child)
    assert new_child_row.parent_session_id == new_parent  # the reference was remapped
    new_task = projections.tasks(session.conn, new_parent)[0]
    assert new_task.child_session_id == new_child and new_task.output == "helped"


def ours(rows: list) -> list:
    return [r for r in rows if ("session_id", "P") in r or ("session_id", "C") in r]


def test_importing_a_broken_file_is_a_clear_error_and_writes_nothing(isolated_home, tmp_path):
    conn = store.open_store()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"session_id": "s", "session_seq": 1, "ts": "t", "type": "nope", "data": {}}\n')
    result = CliRunner().invoke(cli, ["import", str(bad)])
    assert result.exit_code == 2 and "unknown event type 'nope'" in result.output
    gap = tmp_path / "gap.jsonl"
    gap.write_text(
        '{"session_id": "s", "session_seq": 2, "ts": "t", "type": "session.created", "data": {}}\n'
    )
    result = CliRunner().invoke(cli, ["import", str(gap)])
    assert result.exit_code == 2 and "not a whole, ordered log" in result.output
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
