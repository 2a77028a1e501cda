"""lh export --format atif: a session as Harbor's trajectory format, from the projections.
(The Harbor stage validates the same output against Harbor's own pydantic models.)"""

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
from .util import tool_round


def export_atif(session_id: str) -> dict:
    result = CliRunner().invoke(cli, ["export", "--format", "atif", session_id])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_tool_round_becomes_user_and_agent_steps_with_observation_and_metrics(db):
    session_id = store.create_session(db)
    tool_round(db, session_id, "list the files")
    data = export_atif(session_id[:10])
    assert data["schema_version"] == "ATIF-v1.4"
    assert data["session_id"] == session_id
    assert data["agent"]["name"] == "leharness"
    steps = data["steps"]
    assert [(s["step_id"], s["source"]) for s in steps] == [(1, "user"), (2, "agent"), (3, "agent")]
    assert steps[0]["message"] == "list the files"
    call = steps[1]["tool_calls"][0]
    assert call == {
        "tool_call_id": call["tool_call_id"],
        "function_name": "bash",
        "arguments": {"command": "ls"},
    }
    assert steps[1]["observation"]["results"] == [
        {"source_call_id": call["tool_call_id"], "content": "a\n[exit: 0]"}
    ]
    assert steps[1]["metrics"] == {"prompt_tokens": 12, "completion_tokens": 4}
    assert steps[2]["message"] == "done" and "tool_calls" not in steps[2]
    assert data["final_metrics"] == {
        "total_prompt_tokens": 12,
        "total_completion_tokens": 4,
        "total_steps": 3,
    }
    assert data["extra"]["finish_reason"] == "no_tool_calls"


def test_a_subagent_is_referenced_by_its_session(isolated_home):
    model = RoutingModel(
        {
            "parent task": [
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
    data = export_atif(session.session_id)
    results = [r for s in data["steps"] for r in s.get("observation", {}).get("results", [])]
    refs = [ref["session_id"] for r in results for ref in r.get("subagent_trajectory_ref", [])]
    assert refs == [task.child_session_id]
    assert export_atif(task.child_session_id)["extra"]["parent_session_id"] == session.session_id


def test_atif_with_children_is_a_clear_error(db):
    session_id = store.create_session(db)
    result = CliRunner().invoke(cli, ["export", "--format", "atif", "--with-children", session_id])
    assert result.exit_code == 2
    assert "--with-children is for jsonl" in result.output
