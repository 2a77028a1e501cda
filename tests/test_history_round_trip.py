"""Export from one database, import into another: every projection row comes back."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from leharness import projections, store
from leharness.cli import cli
from leharness.loop import runner
from leharness.tools import default_registry

from .loop_helpers import make_session
from .test_subagents import RoutingModel, answer, tool

#: Columns holding a session id, renamed to stable names before comparing.
SESSION_COLUMNS = ("id", "session_id", "parent_session_id", "child_session_id", "forked_from")


def rows(conn, names: dict[str, str]) -> dict[str, list]:
    """Every projection row, session ids renamed through `names`, sorted."""
    out = {}
    for table in store.projection_tables(conn):
        found = []
        for row in conn.execute(f'SELECT * FROM "{table}"'):
            values = dict(row)
            if table == "conversation":  # its key is the event's global seq, file-specific
                values.pop("seq")
            for column in SESSION_COLUMNS:
                if column in values and values[column] is not None:
                    values[column] = names.get(values[column], values[column])
            found.append(sorted(values.items()))
        out[table] = sorted(found, key=repr)
    return out


def test_export_then_import_into_a_fresh_database_gives_identical_projections(
    isolated_home, tmp_path, monkeypatch
):
    model = RoutingModel(
        {
            "parent task": [
                tool("bash", "t1", command="echo hi; head -c 9000 /dev/zero | tr '\\0' x"),
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
    names = {session.session_id: "PARENT", task.child_session_id: "CHILD"}
    before = rows(session.conn, names)
    assert before["artifacts"] and before["tasks"] and len(before["sessions"]) == 2

    dump = tmp_path / "dump.jsonl"
    exported = CliRunner().invoke(
        cli, ["export", session.session_id, "--with-children", "-o", str(dump)]
    )
    assert exported.exit_code == 0, exported.output

    monkeypatch.setenv("LEHARNESS_HOME", str(tmp_path / "elsewhere"))
    imported = CliRunner().invoke(cli, ["import", str(dump)])
    assert imported.exit_code == 0, imported.output
    new_parent, new_child = imported.stdout.split()
    fresh = store.open_store()
    after = rows(fresh, {new_parent: "PARENT", new_child: "CHILD"})
    assert after == before
