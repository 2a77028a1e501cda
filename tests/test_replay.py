"""`lh replay`: re-run a session with its recorded model outputs and report divergence."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from leharness import store
from leharness.cli import cli
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall
from leharness.tools import default_registry

from .loop_helpers import make_session


def call(call_id: str, name: str, **arguments) -> ModelCompleted:
    return ModelCompleted(
        tool_calls=[ToolCall(id=call_id, name=name, arguments=json.dumps(arguments))]
    )


def record(workspace: Path) -> str:
    """A real session in `workspace`: a cat, a large output (an artifact), a bad call,
    a read_file, over two prompts."""
    workspace.mkdir()
    (workspace / "a.txt").write_text("hello\n")
    (workspace / "big.txt").write_text("x" * 10_000)
    model = RecordedModel(
        [
            call("c1", "bash", command="cat a.txt; pwd"),  # pwd: the sandbox's path differs
            call("c2", "bash", command="cat big.txt"),
            call("c3", "read_file"),  # missing argument: tool.failed
            ModelCompleted(text="a.txt says hello"),
            call("c4", "read_file", path="a.txt"),
            ModelCompleted(text="still hello"),
        ]
    )
    session = make_session(model, tools=default_registry(), cwd=workspace)
    asyncio.run(runner.run_invocation(session, "what does a.txt say?"))
    asyncio.run(runner.run_invocation(session, "and now?"))
    types = [e.type for e in store.read_events(session.conn, session.session_id)]
    assert types.count("artifact.created") == 1 and types.count("tool.failed") == 1
    return session.session_id


def replay(*args: str):
    return CliRunner().invoke(cli, ["replay", *args])


def test_an_unchanged_session_replays_without_divergence(isolated_home, tmp_path):
    session_id = record(tmp_path / "work")
    conn = store.open_store()
    # session.created and process.started (where a command ran) are not compared
    events = store.last_seq(conn, session_id) - len(
        conn.execute("SELECT 1 FROM events WHERE type = 'process.started'").fetchall()
    )

    served = replay(session_id[:12])  # tools answer from the recording
    assert served.exit_code == 0, served.output
    assert served.output.strip() == f"no divergence ({events - 1} events)"

    real = replay(session_id, "--sandbox-dir", str(tmp_path / "sandbox"))
    assert real.exit_code == 0, real.output
    assert real.output.strip() == f"no divergence ({events - 1} events)"
    assert (tmp_path / "sandbox" / "a.txt").read_text() == "hello\n"  # the tools ran there
    assert not (tmp_path / "sandbox" / ".leharness").exists()
    # The replays went to scratch databases: sessions.db holds only the recording.
    assert [r[0] for r in store.open_store().execute("SELECT id FROM sessions")] == [session_id]


def test_a_session_that_wrote_a_file_replays_without_divergence(isolated_home, tmp_path):
    """write_file records a checkpoint.file; tools served from the recording record none,
    and that is no divergence."""
    workspace = tmp_path / "work"
    workspace.mkdir()
    model = RecordedModel(
        [call("w1", "write_file", path="notes.txt", content="hi\n"), ModelCompleted(text="ok")]
    )
    session = make_session(model, tools=default_registry(), cwd=workspace)
    asyncio.run(runner.run_invocation(session, "write it"))
    types = [e.type for e in store.read_events(session.conn, session.session_id)]
    assert "checkpoint.file" in types
    served = replay(session.session_id)
    assert served.exit_code == 0, served.output
    assert served.output.startswith("no divergence"), served.output


def test_a_changed_tool_output_is_reported_at_the_first_divergent_event(isolated_home, tmp_path):
    session_id = record(tmp_path / "work")
    (tmp_path / "work" / "a.txt").write_text("changed\n")

    result = replay(session_id, "--sandbox-dir", str(tmp_path / "sandbox"))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    # session.created and process.started are not compared: event 5 of the run is the
    # cat's tool.completed (#7).
    assert lines[0] == "diverged at event 5 after 4 equal events"
    assert lines[1].startswith("  recorded: #7 tool.completed ")
    work = tmp_path / "work"
    assert f'"result": "hello\\n{work}\\n[exit: 0]"' in lines[1]
    assert lines[2].startswith("  replayed: #7 tool.completed ")
    assert f'"result": "changed\\n{work}\\n[exit: 0]"' in lines[2]  # in the recording's terms

    as_json = replay(session_id, "--sandbox-dir", str(tmp_path / "sandbox2"), "--json")
    assert as_json.exit_code == 1
    outcome = json.loads(as_json.output)
    assert (outcome["diverged"], outcome["position"], outcome["compared"]) == (True, 5, 4)
    assert outcome["recorded"]["session_seq"] == 7 and outcome["replay_database"] is None
    assert outcome["replayed"]["data"]["result"] == f"changed\n{work}\n[exit: 0]"

    # Without a sandbox the tools answer from the recording: the loop alone agrees.
    assert replay(session_id).exit_code == 0
    agreed = json.loads(replay(session_id, "--json").output)
    assert agreed["diverged"] is False and agreed["recorded"] is None


def test_a_change_in_the_harness_diverges_without_a_sandbox(isolated_home, tmp_path):
    """A recorded call to a tool this harness no longer has now fails before it runs."""
    conn = store.open_store()
    session_id = store.create_session(conn, None)
    for payload in (
        {"type": "invocation.received", "text": "go"},
        {"type": "step.started", "step": 1},
        {
            "type": "model.completed",
            "tool_calls": [{"id": "c1", "name": "retired_tool", "arguments": "{}"}],
        },
        {"type": "tool.started", "call_id": "c1", "name": "retired_tool"},
        {"type": "tool.completed", "call_id": "c1", "name": "retired_tool", "result": "ok"},
        {"type": "step.started", "step": 2},
        {"type": "model.completed", "text": "done"},
        {"type": "agent.finished", "reason": "no_tool_calls"},
    ):
        store.append(conn, session_id, payload)
    result = replay(session_id, "--keep")
    assert result.exit_code == 1, result.output
    assert "diverged at event 4 after 3 equal events" in result.output
    assert "recorded: #5 tool.started" in result.output
    assert "replayed: #5 tool.failed" in result.output and "unknown tool" in result.output
    kept = result.output.split(" in ", 1)[1].splitlines()[0]
    assert Path(kept).is_file()  # --keep leaves the scratch database for inspection


def test_replay_refuses_a_sandbox_that_is_not_empty(isolated_home, tmp_path):
    session_id = record(tmp_path / "work")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = replay(session_id, "--sandbox-dir", str(busy))
    assert result.exit_code == 2 and "must be a new or empty folder" in result.output
    assert (busy / "keep.txt").read_text() == "mine"
    missing = replay("no-such-session")
    assert missing.exit_code == 2 and "no session" in missing.output


def test_background_tasks_replay_with_and_without_a_sandbox(isolated_home, tmp_path):
    """In a sandbox, task ids are minted anew and map onto the recorded ones; without
    one, stand-ins end where the recording says, large outputs (artifacts) included."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("hi\n")
    small = ToolCall(
        id="c1",
        name="bash",
        arguments=json.dumps({"command": "sleep 0.2; cat a.txt", "inline_ms": 0}),
    )
    big = ToolCall(
        id="c2",
        name="bash",
        arguments=json.dumps(
            {"command": "sleep 0.6; head -c 9000 /dev/zero | tr '\\0' y", "inline_ms": 0}
        ),
    )
    model = RecordedModel(
        [
            ModelCompleted(tool_calls=[small, big]),
            ModelCompleted(text="started"),
            ModelCompleted(text="hi"),
        ]
    )
    session = make_session(model, tools=default_registry(), cwd=work)
    asyncio.run(runner.run_until_settled(session, "go", 30.0, True))
    types = [e.type for e in store.read_events(session.conn, session.session_id)]
    assert types.count("task.completed") == 2 and types.count("invocation.auto") == 1
    assert types.count("artifact.created") == 1 and types[-1] == "agent.finished"
    compared = len(types) - 1 - types.count("process.started")

    result = replay(session.session_id, "--sandbox-dir", str(tmp_path / "sandbox"))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"no divergence ({compared} events)"
    served = replay(session.session_id)
    assert served.exit_code == 0, served.output
    assert served.output.strip() == f"no divergence ({compared} events)"


def test_step_limits_failures_and_cancels_replay_as_recorded(isolated_home):
    conn = store.open_store()
    session_id = store.create_session(conn, None)
    bash = {"type": "tool.started", "name": "bash"}
    for payload in (
        {"type": "invocation.received", "text": "loop until stopped"},
        {"type": "step.started", "step": 1},
        {
            "type": "model.completed",
            "tool_calls": [{"id": "c1", "name": "bash", "arguments": '{"command": "ls"}'}],
        },
        {**bash, "call_id": "c1"},
        {"type": "tool.completed", "call_id": "c1", "name": "bash", "result": "a\n[exit: 0]"},
        {"type": "step.started", "step": 2},
        {
            "type": "model.completed",
            "tool_calls": [{"id": "c2", "name": "bash", "arguments": '{"command": "ls"}'}],
        },
        {**bash, "call_id": "c2"},
        {"type": "tool.completed", "call_id": "c2", "name": "bash", "result": "a\n[exit: 0]"},
        {"type": "agent.finished", "reason": "max_steps"},
        {"type": "invocation.received", "text": "again"},
        {"type": "step.started", "step": 1},
        {"type": "model.failed", "error": "server error 500", "kind": "server", "attempts": 4},
        {"type": "agent.finished", "reason": "model_failed"},
        {"type": "invocation.received", "text": "and again"},
        {"type": "step.started", "step": 1},
        {"type": "model.cancelled", "text": "I was say"},
        {"type": "agent.finished", "reason": "cancelled"},
    ):
        store.append(conn, session_id, payload)
    result = replay(session_id)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no divergence (18 events)"


def test_a_session_with_a_subagent_replays_with_the_childs_own_outputs(isolated_home, tmp_path):
    from .test_subagents import RoutingModel, answer, tool

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("remember the milk\n")
    model = RoutingModel(
        {
            "parent task": [
                tool("spawn_agent", "p1", prompt="child: read notes.txt", type="explore"),
                answer("waiting for the child"),
                answer("the child says: milk"),
            ],
            "child: read notes.txt": [
                tool("read_file", "k1", path="notes.txt"),
                answer("the notes say milk"),
            ],
        }
    )
    session = make_session(model, tools=default_registry(), cwd=work)
    asyncio.run(runner.run_until_settled(session, "parent task", 30.0, True))
    (task,) = [
        t for t in store.read_events(session.conn, session.session_id) if t.type == "task.completed"
    ]
    assert task.data.output == "the notes say milk"

    for args in ([], ["--sandbox-dir", str(tmp_path / "sandbox")]):
        result = replay(session.session_id, *args)
        assert result.exit_code == 0, (args, result.output)
        assert result.output.startswith("no divergence")


def test_a_sandbox_needs_the_sessions_working_directory(isolated_home, tmp_path):
    session_id = record(tmp_path / "work")
    (tmp_path / "work" / "a.txt").unlink()
    (tmp_path / "work" / "big.txt").unlink()
    (tmp_path / "work").rmdir()
    result = replay(session_id, "--sandbox-dir", str(tmp_path / "sandbox"))
    assert result.exit_code == 2
    assert f"working directory {tmp_path / 'work'} no longer exists" in result.output
    assert replay(session_id).exit_code == 0  # served from the recording, it still agrees


def test_the_lh_process_exits_0_or_1_for_ci(isolated_home):
    from .e2e_helpers import lh_env, run_lh

    conn = store.open_store()
    agrees, differs = store.create_session(conn, None), store.create_session(conn, None)
    for session_id, tool_name in ((agrees, "bash"), (differs, "gone_tool")):
        calls = [{"id": "c1", "name": tool_name, "arguments": '{"command": "ls"}'}]
        for payload in (
            {"type": "invocation.received", "text": "go"},
            {"type": "step.started", "step": 1},
            {"type": "model.completed", "tool_calls": calls},
            {"type": "tool.started", "call_id": "c1", "name": tool_name},
            {"type": "tool.completed", "call_id": "c1", "name": tool_name, "result": "a"},
            {"type": "step.started", "step": 2},
            {"type": "model.completed", "text": "done"},
            {"type": "agent.finished", "reason": "no_tool_calls", "text": "done"},
        ):
            store.append(conn, session_id, payload)
    env = lh_env(isolated_home, "http://127.0.0.1:9")
    ok = run_lh("replay", agrees, env=env)
    assert (ok.returncode, ok.stdout.strip()) == (0, "no divergence (8 events)"), ok.stderr
    bad = run_lh("replay", differs, env=env)
    assert bad.returncode == 1 and "replayed: #5 tool.failed" in bad.stdout, bad.stderr
