"""The SQL views shipped in the database return the expected rows for a session
with a tool call, a failing tool call, a background task and a subagent."""

from __future__ import annotations

import asyncio

from leharness import store
from leharness.loop import runner
from leharness.loop.model import Reply
from leharness.store.events import Usage
from leharness.tools import default_registry

from .loop_helpers import make_session
from .test_subagents import RoutingModel, answer, tool
from .util import tool_round


def test_views_over_a_session_with_tools_tasks_and_a_subagent(isolated_home):
    usage = Usage(prompt_tokens=100, completion_tokens=7)
    model = RoutingModel(
        {
            "parent task": [
                tool("bash", "t1", command="echo hi"),
                tool("read_file", "t2", path="missing.txt"),
                tool("bash", "t3", command="sleep 0.2; echo later", inline_ms=0),
                tool("spawn_agent", "t4", prompt="child: summarise", type="explore"),
                Reply("waiting", "", [], usage),
                Reply("all done", "", [], usage),
            ],
            "child: summarise": [answer("summary")],
        }
    )
    session = make_session(model, tools=default_registry())
    asyncio.run(runner.run_until_settled(session, "parent task", 30.0, True))
    conn, sid = session.conn, session.session_id

    transcript = conn.execute(
        "SELECT role, kind FROM transcript WHERE session_id = ? ORDER BY session_seq", (sid,)
    ).fetchall()
    assert [tuple(r) for r in transcript][:3] == [
        ("user", "prompt"),
        ("assistant", "answer"),
        ("tool", "tool_result"),
    ]
    assert ("tool", "tool_error") in [tuple(r) for r in transcript]

    timeline = conn.execute(
        "SELECT kind, label, status, duration_ms FROM session_timeline WHERE session_id = ? "
        "ORDER BY started_at",
        (sid,),
    ).fetchall()
    kinds = [r["kind"] for r in timeline]
    assert kinds.count("model") == 6 and kinds.count("step") == 6 and kinds.count("tool") == 4
    assert kinds.count("task") == 1 and kinds.count("subagent") == 1
    assert {r["status"] for r in timeline if r["kind"] in ("step", "model")} == {"completed"}
    assert [r["label"] for r in timeline if r["kind"] == "tool"] == [
        "bash",
        "read_file",
        "bash",
        "spawn_agent",
    ]
    assert all(r["duration_ms"] is not None and r["duration_ms"] >= 0 for r in timeline)
    task_row = next(r for r in timeline if r["kind"] == "task")
    assert task_row["status"] == "completed" and task_row["duration_ms"] >= 150
    (child_id,) = conn.execute(
        "SELECT child_session_id FROM session_timeline WHERE session_id = ? AND kind = 'subagent'",
        (sid,),
    ).fetchone()
    child = conn.execute(
        "SELECT kind, status FROM session_timeline WHERE session_id = ? ORDER BY kind", (child_id,)
    ).fetchall()
    assert [tuple(r) for r in child] == [("model", "completed"), ("step", "completed")]

    failures = conn.execute("SELECT name, error_kind FROM tool_failures").fetchall()
    assert [tuple(r) for r in failures] == [("read_file", "not_found")]

    durations = conn.execute(
        "SELECT kind, status, exit_code FROM task_durations WHERE session_id = ? ORDER BY kind",
        (sid,),
    ).fetchall()
    assert [tuple(r) for r in durations] == [("agent", "completed", None), ("bash", "completed", 0)]

    usage_rows = conn.execute(
        "SELECT model, model_calls, prompt_tokens, completion_tokens FROM token_usage "
        "WHERE session_id = ?",
        (sid,),
    ).fetchall()
    assert [tuple(r) for r in usage_rows] == [("routing", 6, 200, 14)]
    (total,) = conn.execute(
        "SELECT total_tokens FROM token_usage WHERE session_id = ?", (sid,)
    ).fetchone()
    assert total == 214


def test_a_step_cut_short_by_a_crash_is_interrupted_and_closed_on_resume(db):
    session_id = store.create_session(db)
    store.append(db, session_id, {"type": "invocation.received", "text": "first"})
    store.append(db, session_id, {"type": "step.started", "step": 1, "model": "m"})
    # lh died here; the next run of the session starts a new invocation.
    store.append(db, session_id, {"type": "invocation.received", "text": "again"})
    store.append(db, session_id, {"type": "step.started", "step": 1, "model": "m"})
    rows = db.execute(
        "SELECT kind, status, finished_at IS NOT NULL AS ended FROM session_timeline "
        "WHERE session_id = ? ORDER BY ref, kind",
        (session_id,),
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("model", "interrupted", 1),
        ("step", "interrupted", 1),
        ("model", "running", 0),
        ("step", "running", 0),
    ]


def test_timeline_holds_steps_and_model_calls_and_the_view_adds_calls_and_tasks(db):
    """Tool calls and tasks are read from tool_calls and tasks (copying them into timeline
    cost every append a page): the view still shows each one's lifecycle."""
    session_id = store.create_session(db)
    tool_round(db, session_id)
    call = "call_x"
    store.append(db, session_id, {"type": "invocation.received", "text": "again"})
    store.append(db, session_id, {"type": "step.started", "step": 1, "model": "m"})
    store.append(
        db,
        session_id,
        {
            "type": "model.completed",
            "tool_calls": [{"id": call, "name": "bash", "arguments": "{}"}],
        },
    )
    requested = db.execute(
        "SELECT status, started_at, finished_at, duration_ms FROM session_timeline "
        "WHERE session_id = ? AND ref = ?",
        (session_id, call),
    ).fetchone()
    assert requested["status"] == "requested" and requested["finished_at"] is None
    assert requested["duration_ms"] is None and requested["started_at"]
    task = {"type": "task.started", "task_id": "tk", "kind": "bash", "command": "sleep 1"}
    store.append(db, session_id, {**task, "call_id": call})
    done = {"type": "tool.completed", "call_id": call, "name": "bash", "result": "started"}
    store.append(db, session_id, done)
    store.append(db, session_id, {"type": "task.completed", "task_id": "tk", "exit_code": 0})
    kinds = db.execute("SELECT DISTINCT kind FROM timeline ORDER BY kind").fetchall()
    assert [k for (k,) in kinds] == ["model", "step"]
    rows = db.execute(
        "SELECT kind, label, status, duration_ms >= 0 AS timed FROM session_timeline "
        "WHERE session_id = ? AND kind IN ('tool', 'task') ORDER BY kind, started_at",
        (session_id,),
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("task", "sleep 1", "completed", 1),
        ("tool", "bash", "completed", 1),
        ("tool", "bash", "completed", 1),
    ]


def test_a_version_15_file_drops_its_copied_timeline_rows_on_upgrade(tmp_path):
    path = tmp_path / "sessions.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    tool_round(conn, session_id)
    conn.execute(
        "INSERT INTO timeline (session_id, kind, ref, label, started_at) "
        "VALUES (?, 'tool', 'old', 'bash', '2026-01-01T00:00:00.000Z')",
        (session_id,),
    )
    conn.execute("PRAGMA user_version = 15")
    conn.close()
    upgraded = store.open_store(path)
    assert upgraded.execute("PRAGMA user_version").fetchone()[0] >= 16
    assert upgraded.execute("SELECT count(*) FROM timeline WHERE kind = 'tool'").fetchone()[0] == 0
    (tools,) = upgraded.execute(
        "SELECT count(*) FROM session_timeline WHERE session_id = ? AND kind = 'tool'",
        (session_id,),
    ).fetchone()
    assert tools == 1
    indexes = {name for (name,) in upgraded.execute("SELECT name FROM sqlite_master")}
    assert not {"sessions_updated", "conversation_session"} & indexes
