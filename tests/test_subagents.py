"""Subagents: child sessions in the same database, run as background tasks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from leharness import projections, store
from leharness.loop import runner
from leharness.loop.model import Reply
from leharness.store.events import ToolCall
from leharness.tools import default_registry

from .loop_helpers import make_session


class RoutingModel:
    """Answers each session from its own script, keyed by the first user message."""

    provider, model = "test", "routing"

    def __init__(self, scripts: dict[str, list[Reply]]) -> None:
        self.scripts = {key: list(replies) for key, replies in scripts.items()}
        self.requests: dict[str, list[list[dict]]] = {key: [] for key in scripts}

    async def complete(self, messages, tools, sink):
        key = next(m["content"] for m in messages if m["role"] == "user")
        self.requests[key].append(messages)
        self.requests.setdefault(key + ":tools", []).append([t["function"]["name"] for t in tools])
        await asyncio.sleep(0.01)
        reply = self.scripts[key].pop(0)
        if callable(reply):
            reply = reply(messages)
        sink.add(reply.text, "")
        return reply


def answer(text: str) -> Reply:
    return Reply(text, "", [], None)


def tool(name: str, call_id: str, **args) -> Reply:
    return Reply("", "", [ToolCall(id=call_id, name=name, arguments=json.dumps(args))], None)


def settle(session):
    return asyncio.run(runner.run_until_settled(session, "parent task", 30.0, True))


def test_spawned_child_answers_and_its_text_is_the_task_result(isolated_home):
    model = RoutingModel(
        {
            "parent task": [
                tool("spawn_agent", "p1", prompt="child: count files", type="explore"),
                answer("waiting for the child"),
                answer("the child said 3"),
            ],
            "child: count files": [tool("list_files", "k1"), answer("There are 3 files.")],
        }
    )
    session = make_session(model, tools=default_registry())
    assert settle(session).text == "the child said 3"
    (task,) = projections.tasks(session.conn, session.session_id)
    assert task.kind == "agent" and task.status == "completed" and task.delivered
    assert task.output == "There are 3 files."
    child = projections.get_session(session.conn, task.child_session_id)
    assert (child.parent_session_id, child.parent_task_id, child.agent_type) == (
        session.session_id,
        task.task_id,
        "explore",
    )
    assert child.status == "idle" and child.steps == 2
    # explore children only read; nobody below the parent may spawn.
    assert set(model.requests["child: count files:tools"][0]) == {
        "read_file",
        "list_files",
        "grep",
        "bash",
        "load_skill",
    }
    notice = model.requests["parent task"][2][-1]["content"]
    assert notice.startswith(f"[background task {task.task_id}] completed") and "3 files" in notice


def test_two_children_run_in_parallel(isolated_home):
    def slow(text):
        return [tool("bash", "s", command="sleep 0.5"), answer(text)]

    model = RoutingModel(
        {
            "parent task": [
                Reply(
                    "",
                    "",
                    [
                        ToolCall(
                            id="a", name="spawn_agent", arguments=json.dumps({"prompt": "child A"})
                        ),
                        ToolCall(
                            id="b", name="spawn_agent", arguments=json.dumps({"prompt": "child B"})
                        ),
                    ],
                    None,
                ),
                answer("both started"),
                answer("both done"),
            ],
            "child A": slow("A done"),
            "child B": slow("B done"),
        }
    )
    session = make_session(model, tools=default_registry())
    started = time.monotonic()
    settle(session)
    assert time.monotonic() - started < 2.5  # 0.5 s each, not one after the other plus overhead
    tasks = projections.tasks(session.conn, session.session_id)
    assert sorted(t.output for t in tasks) == ["A done", "B done"]
    assert all(t.delivered for t in tasks)
    # general children get the parent's tools except spawn_agent (depth limit 1).
    assert "spawn_agent" not in model.requests["child A:tools"][0]
    assert "write_file" in model.requests["child A:tools"][0]


def test_unknown_preset_is_a_tool_failure(isolated_home):
    model = RoutingModel(
        {"parent task": [tool("spawn_agent", "x", prompt="p", type="wizard"), answer("ok")]}
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    failed = [
        e for e in store.read_events(session.conn, session.session_id) if e.type == "tool.failed"
    ]
    assert failed[0].data.kind == "bad_arguments" and "type" in failed[0].data.error
    assert projections.tasks(session.conn, session.session_id) == []


def test_cancelling_a_child_stuck_in_bash_cancels_its_task_too(isolated_home, tmp_path):
    pid_file = tmp_path / "child.pid"

    def cancel_it(messages):
        task_id = json.loads([m for m in messages if m["role"] == "tool"][-1]["content"])["task_id"]
        return tool("cancel_task", "c", task_id=task_id)

    class WaitForChild(RoutingModel):
        async def complete(self, messages, tools, sink):
            is_parent = messages[1]["content"] == "parent task"
            if is_parent and len(self.requests["parent task"]) == 1:
                while not pid_file.exists() or not pid_file.read_text().strip():
                    await asyncio.sleep(0.02)
            return await super().complete(messages, tools, sink)

    model = WaitForChild(
        {
            "parent task": [
                tool("spawn_agent", "p", prompt="child: stuck"),
                cancel_it,
                answer("cancelled it"),
            ],
            "child: stuck": [
                tool("bash", "b", command=f"echo $$ > {pid_file}; sleep 30", inline_ms=60000)
            ],
        }
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    (task,) = projections.tasks(session.conn, session.session_id)
    assert task.status == "cancelled" and task.cancel_reason == "parent"
    child = projections.get_session(session.conn, task.child_session_id)
    assert child.status == "cancelled"
    child_calls = projections.tool_calls(session.conn, task.child_session_id)
    assert [(c.name, c.error_kind) for c in child_calls] == [("bash", "interrupted")]
    pid = int(Path(pid_file).read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    state = (
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if Path(f"/proc/{pid}").exists()
        else "gone"
    )
    assert state in ("gone", "Z")


def test_sessions_lists_children_under_their_parent_and_show_links_them(isolated_home):
    from click.testing import CliRunner

    from leharness.cli import cli

    model = RoutingModel(
        {
            "parent task": [
                tool("spawn_agent", "p1", prompt="child: look", type="plan"),
                answer("started"),
                answer("done"),
            ],
            "child: look": [answer("a plan")],
        }
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    (task,) = projections.tasks(session.conn, session.session_id)
    listing = CliRunner().invoke(cli, ["sessions"]).output.splitlines()
    parent_line = next(i for i, line in enumerate(listing) if line.startswith(session.session_id))
    assert listing[parent_line + 1].startswith(task.child_session_id)
    assert "└ [plan] child: look" in listing[parent_line + 1]
    shown = CliRunner().invoke(cli, ["show", session.session_id]).output
    assert f"lh show {task.child_session_id}" in shown
    child_shown = CliRunner().invoke(cli, ["show", task.child_session_id]).output
    assert f"child of {session.session_id}" in child_shown and "a plan" in child_shown


def test_read_task_on_a_subagent_shows_its_latest_events(isolated_home):
    def read_child(messages):
        task_id = json.loads([m for m in messages if m["role"] == "tool"][-1]["content"])["task_id"]
        return tool("read_task", "r", task_id=task_id)

    class Slow(RoutingModel):
        async def complete(self, messages, tools, sink):
            if messages[1]["content"] == "child: think":
                await asyncio.sleep(0.3)
            return await super().complete(messages, tools, sink)

    model = Slow(
        {
            "parent task": [
                tool("spawn_agent", "p", prompt="child: think"),
                read_child,
                answer("saw it"),
                answer("done"),
            ],
            "child: think": [answer("thought")],
        }
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    result = [
        e for e in store.read_events(session.conn, session.session_id) if e.type == "tool.completed"
    ][1]
    text = result.data.result
    assert "subagent session" in text and "invocation.received" in text and "child: think" in text


def test_max_depth_zero_turns_subagents_off(isolated_home):
    model = RoutingModel({"parent task": [tool("spawn_agent", "p", prompt="child"), answer("ok")]})
    session = make_session(model, tools=default_registry())
    session.max_depth = 0
    settle(session)
    failed = [
        e for e in store.read_events(session.conn, session.session_id) if e.type == "tool.failed"
    ]
    assert "depth limit" in failed[0].data.error
