"""--approval ask | auto | read-only: what runs, what is refused, and the record of it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from leharness import store
from leharness.loop import runner
from leharness.replay.divergence import SKIPPED
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools import default_registry
from leharness.tools.approval import Approval, ApprovalRequest

from .e2e_helpers import LH, event_types, lh_env, query, run_lh
from .loop_helpers import RecordingChannel, make_session


def calls(*items: tuple[str, dict]) -> ModelCompleted:
    return ModelCompleted(
        tool_calls=[
            ToolCall(id=f"c{i}", name=name, arguments=json.dumps(args))
            for i, (name, args) in enumerate(items)
        ]
    )


def tool_events(session) -> list[tuple]:
    out = []
    for event in store.read_events(session.conn, session.session_id):
        data = event.data
        if event.type == "approval.requested":
            out.append((event.type, data.call_id, data.name))
        elif event.type == "approval.decided":
            out.append((event.type, data.call_id, data.decision, data.by))
        elif event.type in ("tool.completed", "tool.failed"):
            out.append((event.type, data.call_id, getattr(data, "kind", "")))
    return out


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def run(session, text="go"):
    return asyncio.run(runner.run_invocation(session, text))


def scripted(*answers: str):
    asked: list[ApprovalRequest] = []
    queue = list(answers)

    async def approve(request: ApprovalRequest):
        asked.append(request)
        return queue.pop(0)

    return approve, asked


def test_read_only_refuses_commands_and_writes_at_once(work):
    (work / "a.txt").write_text("hello\n")
    model = RecordedModel(
        [
            calls(
                ("bash", {"command": "touch made-by-bash"}),
                ("write_file", {"path": "b.txt", "content": "x"}),
                ("edit_file", {"path": "a.txt", "old_string": "hello", "new_string": "bye"}),
                ("read_file", {"path": "a.txt"}),
            ),
            ModelCompleted(text="ok"),
        ]
    )
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("read-only")
    run(session)
    assert tool_events(session) == [
        ("tool.failed", "c0", "read_only"),
        ("tool.failed", "c1", "read_only"),
        ("tool.failed", "c2", "read_only"),
        ("tool.completed", "c3", ""),
    ]
    assert sorted(p.name for p in work.iterdir()) == ["a.txt"]
    assert (work / "a.txt").read_text() == "hello\n"
    message = next(m for m in model.requests[1] if m["role"] == "tool")["content"]
    assert "read-only mode" in message and "read_file" in message


def test_ask_records_question_and_answer_and_always_lasts_the_session(work):
    approve, asked = scripted("allow", "deny", "always")
    model = RecordedModel(
        [
            calls(
                ("bash", {"command": "echo one > one.txt"}),
                ("bash", {"command": "echo two > two.txt"}),
                ("write_file", {"path": "three.txt", "content": "3"}),
                ("list_files", {}),
            ),
            calls(("write_file", {"path": "four.txt", "content": "4"})),
            ModelCompleted(text="done"),
        ]
    )
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("ask", approve)
    run(session)
    assert [r.summary for r in asked] == [
        "echo one > one.txt",
        "echo two > two.txt",
        "three.txt (1 bytes)",
    ]
    recorded = tool_events(session)
    assert recorded[:10] == [  # every question first, then the results in call order
        ("approval.requested", "c0", "bash"),
        ("approval.decided", "c0", "allow", "user"),
        ("approval.requested", "c1", "bash"),
        ("approval.decided", "c1", "deny", "user"),
        ("approval.requested", "c2", "write_file"),
        ("approval.decided", "c2", "always", "user"),
        ("tool.completed", "c0", ""),
        ("tool.failed", "c1", "denied"),
        ("tool.completed", "c2", ""),
        ("tool.completed", "c3", ""),  # list_files only reads: it never asks
    ]
    fresh = recorded[10][1]  # the second reply reused id c0: it got a fresh one
    assert recorded[10:] == [
        ("approval.decided", fresh, "allow", "always"),  # no question: "always" covers it
        ("tool.completed", fresh, ""),
    ]
    assert sorted(p.name for p in work.iterdir()) == ["four.txt", "one.txt", "three.txt"]
    denied = [m for m in model.requests[1] if m["role"] == "tool"][1]["content"]
    assert "the user denied this bash call" in denied


def test_ask_with_nobody_to_answer_refuses(work):
    model = RecordedModel([calls(("bash", {"command": "touch x"})), ModelCompleted(text="ok")])
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("ask")
    run(session)
    assert tool_events(session) == [
        ("approval.requested", "c0", "bash"),
        ("approval.decided", "c0", "deny", "no_terminal"),
        ("tool.failed", "c0", "denied"),
    ]
    assert not (work / "x").exists()


def test_a_subagent_cannot_ask_but_shares_always_answers():
    parent = Approval("ask", scripted()[0], always={"write_file"})
    child = parent.for_subagent()
    assert (child.mode, child.approver, child.unattended) == ("ask", None, "subagent")
    assert child.always is parent.always


def test_ctrl_c_while_asking_cancels_cleanly(work):
    holder = {}

    async def never(request):
        holder["task"].cancel()
        await asyncio.sleep(30)

    model = RecordedModel(
        [calls(("bash", {"command": "touch x"}), ("bash", {"command": "touch y"}))]
    )
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("ask", never)

    async def main():
        holder["task"] = asyncio.ensure_future(runner.run_invocation(session, "go"))
        return await holder["task"]

    assert asyncio.run(main()).reason == "cancelled"
    assert tool_events(session) == [
        ("approval.requested", "c0", "bash"),
        ("approval.decided", "c0", "deny", "cancelled"),
        ("tool.failed", "c0", "interrupted"),
        ("tool.failed", "c1", "interrupted"),
    ]
    assert list(work.iterdir()) == []


# -- the CLI ---------------------------------------------------------------


@pytest.fixture
def server():
    with ScriptedServer() as scripted_server:
        yield scripted_server
    assert not scripted_server.exhausted, "the scripted server ran out of steps"


def touch_then_done(server, name="made.txt"):
    server.push(ToolCalls(Call("bash", {"command": f"touch {name}"})), Text("done"))


def failure_kinds(home: Path) -> list[str]:
    return [row[0] for row in query(home, "SELECT error_kind FROM tool_calls ORDER BY 1")]


def test_one_shot_without_a_terminal_refuses_by_default_and_names_the_way_out(
    server, isolated_home
):
    work = isolated_home.parent
    touch_then_done(server, "default.txt")
    default = lh_env(isolated_home, server.base_url, LEHARNESS_APPROVAL="")
    done = run_lh("go", env=default, cwd=work)
    assert done.returncode == 0, done.stderr
    assert not (work / "default.txt").exists()
    assert "lh --approval auto" in done.stderr
    tool_message = server.requests[-1].body["messages"][-1]["content"]
    assert "--approval auto" in tool_message  # the model hears it too, and can tell the user
    assert failure_kinds(isolated_home) == ["denied"]
    decided = query(
        isolated_home,
        "SELECT json_extract(data, '$.by') FROM events WHERE type = 'approval.decided'",
    )
    assert decided == [("no_terminal",)]


def test_auto_runs_everything_and_env_or_flag_choose_read_only(server, isolated_home):
    work = isolated_home.parent
    touch_then_done(server, "auto.txt")
    assert run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=work).returncode == 0
    assert (work / "auto.txt").exists()
    touch_then_done(server, "env.txt")
    env = lh_env(isolated_home, server.base_url, LEHARNESS_APPROVAL="read-only")
    assert run_lh("go", env=env, cwd=work).returncode == 0
    touch_then_done(server, "flag.txt")
    done = run_lh("--approval", "read-only", "go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0
    assert not (work / "env.txt").exists() and not (work / "flag.txt").exists()
    assert failure_kinds(isolated_home) == [None, "read_only", "read_only"]


def test_a_bad_approval_value_is_a_usage_error(isolated_home):
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1", LEHARNESS_APPROVAL="sometimes")
    done = run_lh("go", env=env)
    assert done.returncode == 2
    assert "LEHARNESS_APPROVAL must be one of ask, auto, read-only, not 'sometimes'" in (
        done.stderr
    )
    flag = run_lh("--approval", "sometimes", "go", env=lh_env(isolated_home, "unused"))
    assert flag.returncode == 2 and "'sometimes' is not one of" in flag.stderr
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text('approval = "never"\n')
    in_file = run_lh("go", env=lh_env(isolated_home, "unused"))
    assert in_file.returncode == 2 and "approval must be one of ask, auto, read-only" in (
        in_file.stderr
    )
    assert not (isolated_home / "sessions.db").exists()


def test_the_settings_file_sets_approval_below_env_and_flag(server, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text('approval = "read-only"\n')
    work = isolated_home.parent
    touch_then_done(server, "file.txt")
    unset = lh_env(isolated_home, server.base_url, LEHARNESS_APPROVAL="")
    assert run_lh("go", env=unset, cwd=work).returncode == 0
    touch_then_done(server, "env.txt")
    env = lh_env(isolated_home, server.base_url, LEHARNESS_APPROVAL="auto")
    assert run_lh("go", env=env, cwd=work).returncode == 0
    assert not (work / "file.txt").exists() and (work / "env.txt").exists()
    shown = run_lh("config", "--json", env=unset)
    approval = next(row for row in json.loads(shown.stdout) if row["setting"] == "approval")
    assert (approval["value"], approval["source"]) == ("read-only", "settings")


def test_one_shot_ask_without_a_terminal_refuses_and_says_so(server, isolated_home):
    touch_then_done(server)
    done = run_lh("--approval", "ask", "go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert "no terminal to answer on" in done.stderr
    assert failure_kinds(isolated_home) == ["denied"]
    assert not (isolated_home.parent / "made.txt").exists()


@pytest.mark.parametrize(("answer", "made"), [("y", True), ("n", False)])
def test_one_shot_ask_on_a_terminal(server, isolated_home, answer, made):
    touch_then_done(server)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [LH, "--approval", "ask", "go"],
        env=lh_env(isolated_home, server.base_url),
        cwd=isolated_home.parent,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.requests:
            time.sleep(0.05)
        os.write(primary, f"x{answer}".encode())  # one key each, no Enter; x is asked again
        _out, err = process.communicate(timeout=30)
    finally:
        os.close(primary)
    assert process.returncode == 0, err
    assert err.count("allow? [y]es / [n]o / [a]lways") == 2
    assert "? bash: touch made.txt" in err
    assert (isolated_home.parent / "made.txt").exists() is made
    types = event_types(isolated_home)
    assert types.count("approval.requested") == types.count("approval.decided") == 1


def test_one_shot_ask_shows_the_diff_of_an_edit_before_it_runs(server, isolated_home):
    work = isolated_home.parent
    (work / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    edit = {"path": "notes.txt", "old_string": "beta", "new_string": "BETA"}
    server.push(ToolCalls(Call("edit_file", edit)), Text("done"))
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [LH, "go"],  # no --approval: ask is the default on a terminal
        env=lh_env(isolated_home, server.base_url, LEHARNESS_APPROVAL=""),
        cwd=work,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.requests:
            time.sleep(0.05)
        os.write(primary, b"n")
        _out, err = process.communicate(timeout=30)
    finally:
        os.close(primary)
    assert process.returncode == 0, err
    question = err.index("allow? [y]es")
    assert -1 < err.index("-beta") < err.index("+BETA") < question
    assert (work / "notes.txt").read_text() == "alpha\nbeta\ngamma\n"
    assert failure_kinds(isolated_home) == ["denied"]


def test_repl_asks_and_always_covers_the_rest_of_the_session(monkeypatch, tmp_path):
    import io

    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from leharness.cli.approve import LineApprover
    from leharness.cli.repl import Repl, RichChannel, repl_loop
    from leharness.cli.session import model_client, open_session

    steps = [
        ToolCalls(Call("bash", {"command": "touch first"})),
        Text("one"),
        ToolCalls(Call("bash", {"command": "touch second"})),
        Text("two"),
    ]
    with ScriptedServer(steps) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        console = Console(file=io.StringIO(), width=100)
        approver = LineApprover(console)
        options = dict(provider=None, model=None, base_url=None, max_steps=10)
        options.update(approval="ask", approver=approver)
        active = open_session(
            None,
            False,
            channel=RichChannel(console),
            client=model_client(None, None, None),
            **options,
        )
        repl = Repl(active, console, options)

        async def until(condition) -> None:
            for _ in range(750):
                if condition():
                    return
                await asyncio.sleep(0.02)
            raise AssertionError("timed out waiting for the REPL")

        async def main() -> None:
            with create_pipe_input() as pipe:
                prompt = PromptSession(input=pipe, output=DummyOutput())
                task = asyncio.ensure_future(repl_loop(repl, prompt))
                pipe.send_text("make it\r")
                await until(lambda: approver.pending is not None)
                pipe.send_text("perhaps\r")  # not an answer: asked again, not queued
                await until(lambda: "answer y, n or a" in console.file.getvalue())
                pipe.send_text("a\r")
                await until(lambda: not repl.busy and (tmp_path / "first").exists())
                pipe.send_text("again\r")
                await until(lambda: repl.lines_read == 4 and not repl.busy)
                pipe.send_text("/exit\r")
                await asyncio.wait_for(task, 15)

        asyncio.run(main())
    assert (tmp_path / "first").exists() and (tmp_path / "second").exists()
    assert query_decisions(active.loop) == [("always", "user"), ("allow", "always")]
    assert "? bash: touch first" in console.file.getvalue()
    assert repl.queued == []  # the answers were not taken as steering messages


def query_decisions(loop_session) -> list[tuple[str, str]]:
    return [
        (e.data.decision, e.data.by)
        for e in store.read_events(loop_session.conn, loop_session.session_id)
        if e.type == "approval.decided"
    ]


def test_recording_channel_sees_approval_events(work):
    approve, _ = scripted("allow")
    channel = RecordingChannel()
    model = RecordedModel([calls(("bash", {"command": "true"})), ModelCompleted(text="ok")])
    session = make_session(model, tools=default_registry(), channel=channel, cwd=work)
    session.approval = Approval("ask", approve)
    run(session)
    assert [e.type for e in channel.events if e.type.startswith("approval.")] == [
        "approval.requested",
        "approval.decided",
    ]


def test_mcp_tools_ask_unless_their_server_marks_them_read_only(work):
    from types import SimpleNamespace

    from leharness.tools.base import Tool, ToolRegistry
    from leharness.tools.mcp import _adapt

    def listed(name, hint):
        return SimpleNamespace(
            name=name,
            title=None,
            description=f"{name} things",
            input_schema={"type": "object", "properties": {"q": {"type": "string"}}},
            annotations=SimpleNamespace(readOnlyHint=hint),
        )

    connection = SimpleNamespace(name="srv", status="connected")
    writer = _adapt(None, connection, listed("write", None), "srv__write")
    reader = _adapt(None, connection, listed("read", True), "srv__read")
    assert (writer.mutates, reader.mutates) == (True, False)

    async def answer(args, ctx):
        return f"ran with {args['q']}"

    tools = ToolRegistry(
        [
            Tool("srv__write", None, answer, schema=writer.schema, about="w", mutates=True),
            Tool("srv__read", None, answer, schema=reader.schema, about="r"),
        ]
    )
    approve, asked = scripted("deny")
    model = RecordedModel(
        [
            calls(("srv__write", {"q": "drop table"}), ("srv__read", {"q": "select"})),
            ModelCompleted(text="ok"),
        ]
    )
    session = make_session(model, tools=tools, cwd=work)
    session.approval = Approval("ask", approve)
    run(session)
    assert [r.summary for r in asked] == ['{"q": "drop table"}']
    assert [e for e in tool_events(session) if e[0].startswith("tool.")] == [
        ("tool.failed", "c0", "denied"),
        ("tool.completed", "c1", ""),
    ]


def test_an_approver_that_breaks_refuses_the_call(work):
    async def broken(request):
        raise OSError("the terminal is gone")

    model = RecordedModel([calls(("bash", {"command": "touch x"})), ModelCompleted(text="ok")])
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("ask", broken)
    run(session)
    assert tool_events(session)[1:] == [
        ("approval.decided", "c0", "deny", "error"),
        ("tool.failed", "c0", "denied"),
    ]
    assert not (work / "x").exists()


def test_a_subagent_in_ask_mode_is_refused_unless_the_user_said_always(work):
    child_calls = calls(
        ("bash", {"command": "touch by-child"}), ("write_file", {"path": "w", "content": "x"})
    )
    model = RecordedModel(
        [
            calls(("spawn_agent", {"prompt": "make files", "inline_ms": 30000})),
            child_calls,
            ModelCompleted(text="child could not run bash"),
            ModelCompleted(text="parent done"),
        ]
    )
    approve, asked = scripted()
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("ask", approve, always={"write_file"})
    asyncio.run(runner.run_until_settled(session, "go", 30.0))
    assert asked == []  # nobody was asked: the child cannot, the parent ran no bash
    (child_id,) = [
        e.data.child_session_id
        for e in store.read_events(session.conn, session.session_id)
        if e.type == "task.started"
    ]
    decided = [
        (e.data.decision, e.data.by)
        for e in store.read_events(session.conn, child_id)
        if e.type == "approval.decided"
    ]
    assert decided == [("deny", "subagent"), ("allow", "always")]
    assert not (work / "by-child").exists() and (work / "w").read_text() == "x"


def test_a_session_recorded_under_ask_replays_its_answers(isolated_home, work):
    from click.testing import CliRunner

    from leharness.cli import cli

    approve, _ = scripted("allow", "deny")
    model = RecordedModel(
        [
            calls(("bash", {"command": "echo yes"}), ("write_file", {"path": "f", "content": "x"})),
            ModelCompleted(text="one ran, one was refused"),
        ]
    )
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("ask", approve)
    run(session)
    events = list(store.read_events(session.conn, session.session_id))
    result = CliRunner().invoke(cli, ["replay", session.session_id])
    assert result.exit_code == 0, result.output
    compared = [e for e in events if e.type not in SKIPPED]  # session.created, process.started
    assert result.output.strip() == f"no divergence ({len(compared)} events)"


def test_a_session_recorded_read_only_replays_as_read_only(isolated_home, work):
    from click.testing import CliRunner

    from leharness.cli import cli

    model = RecordedModel([calls(("bash", {"command": "echo no"})), ModelCompleted(text="ok")])
    session = make_session(model, tools=default_registry(), cwd=work)
    session.approval = Approval("read-only")
    run(session)
    events = list(store.read_events(session.conn, session.session_id))
    result = CliRunner().invoke(cli, ["replay", session.session_id])
    assert result.exit_code == 0, result.output
    compared = [e for e in events if e.type not in SKIPPED]  # session.created, process.started
    assert result.output.strip() == f"no divergence ({len(compared)} events)"


def test_always_lasts_across_lh_c_in_a_new_process(server, isolated_home):
    """Answer "a" on a terminal; the next `lh -c` (no terminal to ask on) runs the same
    tool without asking: the answer is read from the approvals_always projection."""
    work = isolated_home.parent
    touch_then_done(server, "first.txt")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [LH, "--approval", "ask", "go"],
        env=lh_env(isolated_home, server.base_url),
        cwd=work,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.requests:
            time.sleep(0.05)
        os.write(primary, b"a\n")
        _out, err = process.communicate(timeout=30)
    finally:
        os.close(primary)
    assert process.returncode == 0, err
    assert (work / "first.txt").exists()

    touch_then_done(server, "second.txt")
    done = run_lh("--approval", "ask", "-c", "again", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert "allow?" not in done.stderr and "denied" not in done.stderr
    assert (work / "second.txt").exists()
    decisions = query(
        isolated_home,
        "SELECT json_extract(data, '$.decision'), json_extract(data, '$.by') FROM events "
        "WHERE type = 'approval.decided' ORDER BY seq",
    )
    assert decisions == [("always", "user"), ("allow", "always")]
    assert query(isolated_home, "SELECT name FROM approvals_always") == [("bash",)]


def test_always_holds_on_resume_and_in_a_fork_but_not_in_other_sessions(work):
    def write(name: str) -> RecordedModel:
        return RecordedModel(
            [calls(("write_file", {"path": name, "content": "x"})), ModelCompleted(text="ok")]
        )

    approve, asked = scripted("always")
    first = make_session(write("a.txt"), tools=default_registry(), cwd=work)
    first.approval = Approval("ask", approve)
    run(first)
    assert len(asked) == 1

    # /resume and lh -c build a new Session (and Approval) for the same id: nobody to ask.
    for session_id, name in (
        (first.session_id, "b.txt"),
        (store.fork(first.conn, first.session_id), "c.txt"),
    ):
        resumed = runner.LoopSession(
            conn=first.conn,
            session_id=session_id,
            model=write(name),
            tools=default_registry(),
            cwd=work,
            approval=Approval("ask"),
        )
        run(resumed)
        decided, completed = tool_events(resumed)[-2:]  # a reused call id gets a fresh one
        assert decided[0] == "approval.decided" and decided[2:] == ("allow", "always")
        assert completed[0] == "tool.completed" and completed[1] == decided[1]
    other = make_session(write("d.txt"), tools=default_registry(), cwd=work)
    other.approval = Approval("ask")
    run(other)
    assert tool_events(other)[-1][::2] == ("tool.failed", "denied")
    assert sorted(p.name for p in work.iterdir()) == ["a.txt", "b.txt", "c.txt"]

    rows = "SELECT * FROM approvals_always ORDER BY session_id"
    before = [tuple(r) for r in first.conn.execute(rows)]
    assert len(before) == 2  # the session and its fork
    with closing(store.open_store()) as conn:
        store.rebuild(conn)
        assert [tuple(r) for r in conn.execute(rows)] == before


def test_the_repl_question_shows_the_diff_first_and_takes_one_key(tmp_path):
    import io

    from rich.console import Console

    from leharness.cli.approve import LineApprover

    (tmp_path / "notes.txt").write_text("alpha\nbeta\n")
    out = io.StringIO()
    approver = LineApprover(Console(file=out, width=100), tmp_path)
    edit = {"path": "notes.txt", "old_string": "beta", "new_string": "BETA"}

    async def ask() -> str:
        question = asyncio.ensure_future(
            approver(ApprovalRequest("c0", "edit_file", "notes.txt", edit))
        )
        while not approver.asking:
            await asyncio.sleep(0)
        assert approver.answer("n")  # what the y / n / a key bindings call
        return await question

    assert asyncio.run(ask()) == "deny"
    shown = out.getvalue()
    assert -1 < shown.index("-beta") < shown.index("+BETA") < shown.index("allow?")


def test_approved_side_effecting_calls_of_one_reply_run_together(work):
    """The first call waits (up to 3 s) for a file the second makes: one after the other,
    it would give up; run together, it sees it. Results are recorded in call order."""
    wait = "for i in $(seq 60); do [ -f b ] && echo seen && exit 0; sleep 0.05; done; echo never"
    replies = [
        calls(("bash", {"command": wait}), ("bash", {"command": "touch b"})),
        ModelCompleted(text="done"),
    ]
    session = make_session(RecordedModel(replies), tools=default_registry(), cwd=work)
    asked: list[str] = []

    async def approve(request: ApprovalRequest) -> str:
        asked.append(request.call_id)
        return "allow"

    session.approval = Approval("ask", approve)
    assert asyncio.run(runner.run_invocation(session, "go")).reason == "no_tool_calls"
    assert asked == ["c0", "c1"]  # both asked before either ran, in call order
    events = [e for e in store.read_events(session.conn, session.session_id)]
    tool_events = [(e.type, e.data.call_id) for e in events if e.type.startswith("tool.")]
    assert tool_events == [
        ("tool.started", "c0"),
        ("tool.started", "c1"),
        ("tool.completed", "c0"),
        ("tool.completed", "c1"),
    ]
    first = next(e.data for e in events if e.type == "tool.completed")
    assert first.result.startswith("seen")


def test_a_refused_call_keeps_its_place_among_the_results(work):
    replies = [
        calls(("bash", {"command": "echo one"}), ("bash", {"command": "echo two"})),
        ModelCompleted(text="done"),
    ]
    session = make_session(RecordedModel(replies), tools=default_registry(), cwd=work)

    async def approve(request: ApprovalRequest) -> str:
        return "deny" if request.call_id == "c0" else "allow"

    session.approval = Approval("ask", approve)
    asyncio.run(runner.run_invocation(session, "go"))
    results = [
        (e.type, e.data.call_id)
        for e in store.read_events(session.conn, session.session_id)
        if e.type in ("tool.completed", "tool.failed")
    ]
    assert results == [("tool.failed", "c0"), ("tool.completed", "c1")]
