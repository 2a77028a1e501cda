"""Background tasks: bash that outlives inline_ms, completions delivered exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from leharness import projections, store
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall
from leharness.tools import default_registry
from leharness.tools.artifacts import locate

from .loop_helpers import make_session


def calls(*items: tuple[str, dict]) -> ModelCompleted:
    return ModelCompleted(
        tool_calls=[
            ToolCall(id=f"c{i}_{name}", name=name, arguments=json.dumps(args))
            for i, (name, args) in enumerate(items)
        ]
    )


def events(session) -> list[store.Event]:
    return list(store.read_events(session.conn, session.session_id))


def settle(session, text="go", wait=True, task_wait_s=30.0):
    return asyncio.run(runner.run_until_settled(session, text, task_wait_s, wait))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_quick_command_stays_inline(isolated_home):
    model = RecordedModel([calls(("bash", {"command": "echo hi"})), ModelCompleted(text="ok")])
    session = make_session(model, tools=default_registry())
    settle(session)
    assert "task.started" not in [e.type for e in events(session)]
    assert projections.tasks(session.conn, session.session_id) == []


def test_a_slow_command_becomes_a_task_and_its_completion_is_delivered_once(isolated_home):
    model = RecordedModel(
        [
            calls(("bash", {"command": "sleep 1; echo finished", "inline_ms": 50})),
            ModelCompleted(text="started it"),
            ModelCompleted(text="it finished"),
        ]
    )
    session = make_session(model, tools=default_registry())
    result = settle(session)
    assert result.reason == "no_tool_calls" and result.text == "it finished"
    types = [e.type for e in events(session)]
    assert types.count("task.started") == 1 and types.count("task.completed") == 1
    assert types.count("task.delivered") == 1 and "invocation.auto" in types
    started_result = next(e for e in events(session) if e.type == "tool.completed").data.result
    task_id = json.loads(started_result)["task_id"]
    (task,) = projections.tasks(session.conn, session.session_id)
    assert (task.task_id, task.status, task.exit_code, task.delivered) == (
        task_id,
        "completed",
        0,
        True,
    )
    assert "finished" in task.output
    notice = [m for m in model.requests[2] if m["role"] == "user"][-1]["content"]
    assert notice.startswith(f"[background task {task_id}] completed")
    # A completion's ts is when it really ended, after the tool call returned.
    completed = next(e for e in events(session) if e.type == "task.completed")
    tool_done = next(e for e in events(session) if e.type == "tool.completed")
    assert completed.ts > tool_done.ts


def test_a_failing_task_records_its_exit_code(isolated_home):
    model = RecordedModel(
        [
            calls(("bash", {"command": "sleep 0.3; exit 3", "inline_ms": 0})),
            ModelCompleted(text="waiting"),
            ModelCompleted(text="saw it fail"),
        ]
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    failed = next(e for e in events(session) if e.type == "task.failed")
    assert failed.data.exit_code == 3
    (task,) = projections.tasks(session.conn, session.session_id)
    assert task.status == "failed" and task.delivered


def test_a_background_command_past_its_time_limit_records_timed_out(isolated_home):
    command = {"command": "trap '' TERM; sleep 30", "inline_ms": 0, "timeout_s": 1}
    model = RecordedModel(
        [calls(("bash", command)), ModelCompleted(text="waiting"), ModelCompleted(text="seen")]
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    failed = next(e for e in events(session) if e.type == "task.failed")
    assert failed.data.timed_out is True and failed.data.exit_code == 137  # TERM ignored: KILL
    assert "timed out" in failed.data.error
    (started,) = [e for e in events(session) if e.type == "process.started"]
    assert started.data.task_id == failed.data.task_id and started.data.timeout_s == 1


def test_cancel_task_kills_the_process_group(isolated_home, tmp_path):
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; sleep 30"
    holder: dict = {}

    class Model(RecordedModel):
        async def complete(self, messages, tools, sink):
            if len(self.requests) == 1:
                task_id = json.loads([m for m in messages if m["role"] == "tool"][-1]["content"])[
                    "task_id"
                ]
                holder["task_id"] = task_id
                while not pid_file.exists() or not pid_file.read_text().strip():
                    await asyncio.sleep(0.02)
                self._replies[1] = calls(("cancel_task", {"task_id": task_id}))
            return await super().complete(messages, tools, sink)

    model = Model(
        [
            calls(("bash", {"command": command, "inline_ms": 0})),
            None,
            ModelCompleted(text="stopped"),
        ]
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    cancelled = next(e for e in events(session) if e.type == "task.cancelled")
    assert cancelled.data.reason == "parent"
    (task,) = projections.tasks(session.conn, session.session_id)
    assert task.status == "cancelled" and task.delivered


def test_wait_task_returns_the_result_and_counts_as_delivery(isolated_home):
    class Model(RecordedModel):
        async def complete(self, messages, tools, sink):
            if len(self.requests) == 1:
                task_id = json.loads([m for m in messages if m["role"] == "tool"][-1]["content"])[
                    "task_id"
                ]
                self._replies[1] = calls(("wait_task", {"task_id": task_id, "timeout_s": 10}))
            return await super().complete(messages, tools, sink)

    model = Model(
        [
            calls(("bash", {"command": "sleep 0.5; echo waited-for", "inline_ms": 0})),
            None,
            ModelCompleted(text="done"),
        ]
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    waited = [e for e in events(session) if e.type == "tool.completed"][-1].data.result
    assert "completed" in waited and "waited-for" in waited
    types = [e.type for e in events(session)]
    assert "invocation.auto" not in types  # nothing left to deliver
    user_messages = [
        m
        for m in projections.visible_messages(session.conn, session.session_id)
        if m.role == "user"
    ]
    assert len(user_messages) == 1


def test_a_large_task_output_is_an_artifact(isolated_home):
    command = "sleep 0.2; python3 -c \"print('z' * 15000)\""
    model = RecordedModel(
        [
            calls(("bash", {"command": command, "inline_ms": 0})),
            ModelCompleted(text="a"),
            ModelCompleted(text="b"),
        ]
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    (artifact,) = projections.artifacts(session.conn, session.session_id)
    (task,) = projections.tasks(session.conn, session.session_id)
    assert task.artifact_id == artifact.artifact_id and artifact.kind == "task_output"
    assert locate(store.home_dir(), artifact.path).read_bytes().startswith(b"z" * 1000)
    assert artifact.bytes > 15000


def test_no_wait_stops_running_tasks_at_exit(isolated_home):
    model = RecordedModel(
        [calls(("bash", {"command": "sleep 30", "inline_ms": 0})), ModelCompleted(text="bye")]
    )
    session = make_session(model, tools=default_registry())
    started = time.monotonic()
    settle(session, wait=False)
    assert time.monotonic() - started < 10
    cancelled = next(e for e in events(session) if e.type == "task.cancelled")
    assert cancelled.data.reason == "process_exited"


def test_read_and_list_tasks(isolated_home):
    class Model(RecordedModel):
        async def complete(self, messages, tools, sink):
            if len(self.requests) == 1:
                task_id = json.loads([m for m in messages if m["role"] == "tool"][-1]["content"])[
                    "task_id"
                ]
                await asyncio.sleep(0.4)
                self._replies[1] = calls(("read_task", {"task_id": task_id}), ("list_tasks", {}))
            return await super().complete(messages, tools, sink)

    model = Model(
        [
            calls(("bash", {"command": "echo early; sleep 1", "inline_ms": 0})),
            None,
            ModelCompleted(text="x"),
            ModelCompleted(text="y"),
        ]
    )
    session = make_session(model, tools=default_registry())
    settle(session)
    results = [e.data.result for e in events(session) if e.type == "tool.completed"]
    assert "early" in results[1] and "next since_byte" in results[1]
    assert "bash" in results[2] and "task_" in results[2]


def test_ctrl_c_while_a_one_shot_waits_for_tasks_stops_them_cleanly(isolated_home):
    model = RecordedModel(
        [calls(("bash", {"command": "sleep 30", "inline_ms": 0})), ModelCompleted(text="waiting")]
    )
    session = make_session(model, tools=default_registry())

    async def main():
        job = asyncio.ensure_future(runner.run_until_settled(session, "go", 60.0, True))
        while not session.tasks.running:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        job.cancel()
        return await job

    started = time.monotonic()
    assert asyncio.run(main()).reason == "cancelled"
    assert time.monotonic() - started < 10
    cancelled = next(e for e in events(session) if e.type == "task.cancelled")
    assert cancelled.data.reason == "cancelled"
    assert projections.open_tasks(session.conn, session.session_id) == []


def test_notifications_go_out_in_the_order_the_tasks_ended(isolated_home):
    """Two tasks that end in the same millisecond are delivered in the order of their
    ending events, not by task id (the replay of such a session diverged on it)."""
    conn = store.open_store()
    session_id = store.create_session(conn)
    ts = "2026-12-07T01:00:00.000Z"
    for task_id in ("task_b", "task_a"):
        store.append(conn, session_id, {"type": "task.started", "task_id": task_id, "kind": "bash"})
    for task_id in ("task_b", "task_a"):  # same ts: the seq is what orders them
        payload = {"type": "task.completed", "task_id": task_id, "exit_code": 0, "output": "x"}
        store.append(conn, session_id, payload, ts=ts)
    pending = projections.pending_notifications(conn, session_id)
    assert [task.task_id for task in pending] == ["task_b", "task_a"]
    assert pending[0].finished_seq < pending[1].finished_seq
