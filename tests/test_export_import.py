"""Export -> import: --as-new gives identical projections under new ids; a plain import
keeps the ids, so the same events are never imported twice."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from click.testing import CliRunner

from leharness import projections, store
from leharness.cli import cli
from leharness.loop import runner
from leharness.tools import default_registry

from .loop_helpers import make_session
from .test_subagents import RoutingModel, answer, tool
from .util import snapshot, tool_round


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
    imported = CliRunner().invoke(cli, ["import", "--as-new", str(dump)])
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


@pytest.mark.parametrize(
    ("change", "said"),
    [
        # sqlite3 could not bind it: OverflowError and a traceback
        ({"session_seq": 10**30}, "line 2: not an exported event (session_seq 1000000"),
        ({"ts": {"at": 1}}, "line 2: not an exported event (ts {'at': 1})"),
        # the payload's JSON could not hold it: PydanticSerializationError, a traceback
        ({"data": {"text": "x\ud800y"}}, 'line 2: "x\\ud800y" holds a lone surrogate'),
        ({"session_id": "s\ud800"}, 'line 2: "s\\ud800" holds a lone surrogate'),
    ],
)
def test_an_exported_line_no_event_can_hold_is_refused_by_line(db, tmp_path, change, said):
    """Values no export of ours holds, edited into one, are refused with the line named,
    --as-new or not, and nothing is written."""
    session = store.create_session(db)
    tool_round(db, session, "first")
    lines = list(store.export_lines(db, [session]))
    second = {**json.loads(lines[1]), "id": "01HXXXXXXXXXXXXXXXXXXXXXXX", **change}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(second), *lines[2:]]) + "\n")
    before = event_count(db)
    for extra in ([], ["--as-new"]):
        result = lh("import", *extra, str(bad))
        assert result.exit_code == 2, result.output
        assert said in result.output
    assert event_count(db) == before


def lh(*args: str):
    return CliRunner().invoke(cli, list(args))


def event_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def exported(conn, session_id: str, path) -> None:
    path.write_text("".join(line + "\n" for line in store.export_lines(conn, [session_id])))


def test_importing_the_same_file_twice_imports_nothing_the_second_time(db, tmp_path):
    session = store.create_session(db)
    tool_round(db, session, "first")
    exported(db, session, tmp_path / "one.jsonl")
    other = tmp_path / "other" / "home"
    other.mkdir(parents=True)
    conn = store.open_store(other / "sessions.db")
    os.environ["LEHARNESS_HOME"] = str(other)  # isolated_home's monkeypatch restores it

    first = lh("import", str(tmp_path / "one.jsonl"))
    assert first.exit_code == 0, first.output
    assert first.stdout.split() == [session]  # the session keeps its id
    count = event_count(conn)
    assert count == store.last_seq(db, session) > 0

    again = lh("import", str(tmp_path / "one.jsonl"))
    assert again.exit_code == 0, again.output
    assert again.stdout == ""
    assert again.stderr.startswith("nothing imported: 1 of the file's sessions are here already")
    assert session in again.stderr and "--as-new" in again.stderr
    assert event_count(conn) == count

    # The session went on in the first home: a new export adds only the new events.
    tool_round(db, session, "second")
    exported(db, session, tmp_path / "two.jsonl")
    grown = lh("import", str(tmp_path / "two.jsonl"))
    assert grown.exit_code == 0 and grown.stdout.split() == [session]
    assert event_count(conn) == store.last_seq(db, session) == store.last_seq(conn, session)
    assert snapshot(conn)["messages"] == snapshot(db)["messages"]

    # --as-new keeps today's behaviour: a copy under new ids, every time.
    for _ in range(2):
        copy = lh("import", "--as-new", str(tmp_path / "two.jsonl"))
        assert copy.exit_code == 0 and copy.stdout.split() != [session]
    assert event_count(conn) == 3 * store.last_seq(db, session)


def test_importing_into_the_database_it_came_from_imports_nothing(db, tmp_path):
    session = store.create_session(db)
    tool_round(db, session)
    exported(db, session, tmp_path / "s.jsonl")
    count = event_count(db)
    result = lh("import", str(tmp_path / "s.jsonl"))
    assert result.exit_code == 0 and "nothing imported" in result.stderr
    assert event_count(db) == count


def test_a_session_that_went_another_way_here_is_a_clear_error(db, tmp_path):
    session = store.create_session(db)
    tool_round(db, session, "first")
    exported(db, session, tmp_path / "s.jsonl")
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    forked = [json.loads(line) for line in lines]
    forked[-1]["id"] = "01JZZZZZZZZZZZZZZZZZZZZZZZ"  # the last event is a different one
    (tmp_path / "forked.jsonl").write_text("\n".join(json.dumps(r) for r in forked) + "\n")
    count = event_count(db)
    result = lh("import", str(tmp_path / "forked.jsonl"))
    assert result.exit_code == 2
    assert f"session {session} is here already with other events" in result.output
    assert "--as-new" in result.output and event_count(db) == count


def test_import_reads_the_events_from_stdin(isolated_home, tmp_path):
    """`lh export S | lh import --as-new -`: the dash reads standard input."""
    conn = store.open_store()
    session_id = store.create_session(conn)
    tool_round(conn, session_id)
    exported = CliRunner().invoke(cli, ["export", session_id])
    assert exported.exit_code == 0
    imported = CliRunner().invoke(cli, ["import", "--as-new", "-"], input=exported.output)
    assert imported.exit_code == 0, imported.output
    (new_id,) = imported.output.split()
    assert store.last_seq(conn, new_id) == store.last_seq(conn, session_id) > 1
