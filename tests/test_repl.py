"""The interactive session, driven through prompt_toolkit's pipe input against the
scripted server: prompts, slash commands and completion, typing while the agent
runs (queued, then delivered as steering), Ctrl-C / Esc mid-run, wake-ups."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from leharness import projections, store
from leharness.cli.repl import Repl, RichChannel, repl_loop
from leharness.cli.session import model_client, open_session
from leharness.cli.slash import SlashCompleter
from leharness.testing import Call, ScriptedServer, Slow, Text, ToolCalls

from .e2e_helpers import lh_env, run_lh
from .util import ONE_TOOL_ROUND_TRIP


def make_repl(server: ScriptedServer, monkeypatch) -> Repl:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("LEHARNESS_RETRY_BASE_S", "0")
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    options = dict(provider=None, model=None, base_url=None, max_steps=10)
    active = open_session(
        None, False, channel=RichChannel(console), client=model_client(None, None, None), **options
    )
    return Repl(active, console, options)


def screen(repl: Repl) -> str:
    return repl.console.file.getvalue()


def types(repl: Repl) -> list[str]:
    return [e.type for e in store.read_events(repl.active.loop.conn, repl.active.session_id)]


async def until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for the REPL")


class Typist:
    """Types into a running REPL the way a user would: `line` when it is idle, `now` at
    once (mid-answer), and waits for what the test needs to see."""

    def __init__(self, repl: Repl, pipe) -> None:
        self.repl, self.pipe = repl, pipe

    async def line(self, text: str) -> None:
        await until(lambda: not self.repl.busy)
        await self.now(text)

    async def now(self, text: str) -> None:
        before = self.repl.lines_read
        self.pipe.send_text(text + "\r")
        await until(lambda: self.repl.lines_read > before or self.finished)

    async def event(self, type_: str) -> None:
        await until(lambda: type_ in types(self.repl))

    @property
    def finished(self) -> bool:
        return self.task.done()


def session_with(repl: Repl, script: Callable[[Typist], object]) -> None:
    """Run the REPL on a pipe while `script` types into it; the script must end with /exit."""

    async def main() -> None:
        with create_pipe_input() as pipe:
            prompt = PromptSession(input=pipe, output=DummyOutput())
            typist = Typist(repl, pipe)
            typist.buffer = prompt.default_buffer
            typist.task = asyncio.ensure_future(repl_loop(repl, prompt))
            await script(typist)
            await asyncio.wait_for(typist.task, 15)

    asyncio.run(main())


def drive(lines: list[str], server: ScriptedServer, monkeypatch) -> tuple[Repl, str]:
    """Type `lines` one after another, each once the previous answer has finished."""
    repl = make_repl(server, monkeypatch)

    async def script(typist: Typist) -> None:
        for line in lines:
            await typist.line(line)

    session_with(repl, script)
    return repl, screen(repl)


def test_prompts_tools_and_slash_commands(monkeypatch):
    with ScriptedServer(
        [ToolCalls(Call("bash", {"command": "echo from-repl"})), Text("**done**"), Text("second")]
    ) as server:
        repl, shown = drive(["first", "/help", "/sessions", "again", "/exit"], server, monkeypatch)
    assert "⏺ bash: echo from-repl" in shown
    assert "done" in shown and "**done**" not in shown  # rendered as markdown
    for command in ("/new", "/resume [ID]", "/tasks", "/cancel TASK", "/model NAME", "/inspect"):
        assert command in shown  # the help text, from the command table
    conn = repl.active.loop.conn
    messages = projections.visible_messages(conn, repl.active.session_id)
    assert [m.content for m in messages if m.role == "user"] == ["first", "again"]
    assert repl.active.session_id in shown  # listed by /sessions


def test_new_starts_another_session(monkeypatch):
    with ScriptedServer([Text("one"), Text("two")]) as server:
        repl, _screen = drive(["a", "/new", "b", "/exit"], server, monkeypatch)
    rows = projections.list_sessions(repl.active.loop.conn)
    assert len(rows) == 2
    assert [r.title for r in rows] == ["b", "a"]


def test_resume_switches_back_and_unknown_ids_are_refused(monkeypatch):
    with ScriptedServer([Text("one"), Text("two"), Text("three")]) as server:
        repl = make_repl(server, monkeypatch)
        first = repl.active.session_id

        async def script(typist: Typist) -> None:
            for line in ["a", "/new", "b", "/resume nope", f"/resume {first[:10]}", "c", "/exit"]:
                await typist.line(line)

        session_with(repl, script)
    assert repl.active.session_id == first
    conn = repl.active.loop.conn
    users = [m.content for m in projections.visible_messages(conn, first) if m.role == "user"]
    assert users == ["a", "c"]
    assert "no session 'nope'" in screen(repl)
    assert f"resumed session {first}" in screen(repl)


def test_model_switches_the_model_of_the_next_step(monkeypatch):
    with ScriptedServer([Text("one"), Text("two")]) as server:
        repl, shown = drive(
            ["a", "/model other-model", "b", "/model", "/exit"], server, monkeypatch
        )
    assert [r.body["model"] for r in server.requests] == ["gpt-4o-mini", "other-model"]
    steps = [
        e.data.model
        for e in store.read_events(repl.active.loop.conn, repl.active.session_id)
        if e.type == "step.started"
    ]
    assert steps == ["gpt-4o-mini", "other-model"]
    row = projections.get_session(repl.active.loop.conn, repl.active.session_id)
    assert row.model == "other-model"
    assert "model: openai/other-model" in shown


def test_tasks_lists_and_cancel_stops_a_background_task(monkeypatch):
    steps = [
        ToolCalls(Call("bash", {"command": "sleep 30", "inline_ms": 0})),
        Text("started it"),
    ]
    with ScriptedServer(steps) as server:
        repl = make_repl(server, monkeypatch)
        conn, sid = repl.active.loop.conn, repl.active.session_id

        async def script(typist: Typist) -> None:
            await typist.line("start a sleeper")
            await typist.line("/tasks")
            (task,) = projections.tasks(conn, sid)
            assert "1 task running (sleep 30" in repl.toolbar()
            await typist.line("/cancel nope")
            await typist.line(f"/cancel {task.task_id.removeprefix('task_')[:12]}")
            await typist.line(f"/cancel {task.task_id}")
            await typist.line("/exit")

        session_with(repl, script)
    (task,) = projections.tasks(conn, sid)
    assert (task.status, task.cancel_reason) == ("cancelled", "user")
    shown = screen(repl)
    assert f"{task.task_id}  running" in shown  # /tasks while it ran
    assert "'nope' is no task here" in shown
    assert f"cancelled task {task.task_id}" in shown
    assert f"task {task.task_id} has already cancelled" in shown
    assert types(repl).count("invocation.auto") == 0  # a user's cancel does not wake the model
    assert len(server.requests) == 2


def test_completion_offers_commands_and_their_arguments(monkeypatch):
    with ScriptedServer([]) as server:
        repl = make_repl(server, monkeypatch)

        async def script(typist: Typist) -> None:
            typist.pipe.send_text("/he")
            await until(lambda: typist.buffer.complete_state is not None)  # the menu is up
            typist.pipe.send_text("\t")
            await until(lambda: typist.buffer.text == "/help")
            await typist.now("")
            await typist.line("/exit")

        session_with(repl, script)
    assert "/new" in screen(repl)  # "/he" + Tab completed to /help, which ran
    completer = SlashCompleter(repl)

    def offered(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]

    assert offered("/") == [
        "/help",
        "/new",
        "/sessions",
        "/resume",
        "/tasks",
        "/cancel",
        "/model",
        "/fork",
        "/compact",
        "/inspect",
        "/mcp",
        "/skills",
        "/exit",
    ]
    assert offered("/re") == ["/resume"]
    assert offered("/resume ") == [repl.active.session_id]
    assert offered("/model gpt") == ["gpt-4o-mini"]
    assert offered("hello") == []


def test_ctrl_c_at_the_prompt_clears_the_line(monkeypatch):
    with ScriptedServer([Text("only this")]) as server:
        repl = make_repl(server, monkeypatch)

        async def script(typist: Typist) -> None:
            typist.pipe.send_text("half a thought")
            await until(lambda: typist.buffer.text == "half a thought")
            typist.pipe.send_text("\x03")
            await until(lambda: typist.buffer.text == "")
            typist.pipe.send_text("\x03")  # on an empty line: nothing to cancel, still here
            await typist.line("the real question")
            await typist.line("/exit")

        session_with(repl, script)
    messages = projections.visible_messages(repl.active.loop.conn, repl.active.session_id)
    assert [m.content for m in messages if m.role == "user"] == ["the real question"]


def test_inspect_starts_lh_inspect_in_the_background(monkeypatch):
    from leharness.cli import slash

    started = []

    class FakeProcess:
        def __init__(self, argv, **kwargs):
            started.append((argv, kwargs))
            self.stopped = False

        def poll(self):
            return 0 if self.stopped else None

        def terminate(self):
            self.stopped = True

    monkeypatch.setattr(slash.subprocess, "Popen", FakeProcess)
    with ScriptedServer([]) as server:
        repl, shown = drive(["/inspect", "/inspect", "/exit"], server, monkeypatch)
    ((argv, kwargs),) = started  # the second /inspect found it running
    assert argv[-4:-1] == ["inspect", "--no-open", "--port"]
    assert kwargs["start_new_session"] is True
    assert f"inspector starting: http://127.0.0.1:{argv[-1]}/" in shown
    assert f"the inspector is running: http://127.0.0.1:{argv[-1]}/" in shown
    token = kwargs["env"]["LEHARNESS_INSPECT_TOKEN"]  # not on its command line: ps shows it
    assert len(token) >= 32 and token not in " ".join(argv)
    assert f"http://127.0.0.1:{argv[-1]}/?token={token}" in shown
    assert repl.inspector.stopped  # leaving the session stops it


def test_a_message_typed_while_the_model_streams_is_queued_and_steers_the_next_step(
    monkeypatch,
):
    steps = [
        Slow(ToolCalls(Call("bash", {"command": "echo step-one"})), delay_s=0.3),
        Text("understood, in French"),
    ]
    with ScriptedServer(steps) as server:
        repl = make_repl(server, monkeypatch)

        async def script(typist: Typist) -> None:
            await typist.line("do the thing")
            await typist.event("step.started")  # the slow reply is streaming now
            assert repl.busy
            await typist.now("answer in French")
            assert repl.queued == ["answer in French"]
            assert "1 queued" in repl.toolbar()
            await typist.now("/new")  # replacing the session waits for the answer
            await typist.line("/exit")

        session_with(repl, script)
    shown = screen(repl)
    assert "⧗ queued: answer in French" in shown
    assert "/new waits for the answer to finish" in shown
    assert len(projections.list_sessions(repl.active.loop.conn)) == 1
    assert "» answer in French" in shown  # shown again when it was delivered
    events = list(store.read_events(repl.active.loop.conn, repl.active.session_id))
    steered = [*ONE_TOOL_ROUND_TRIP[:6], "invocation.received", *ONE_TOOL_ROUND_TRIP[6:]]
    assert [e.type for e in events] == steered
    assert (events[6].data.text, events[6].data.kind) == ("answer in French", "steering")
    second = server.requests[1].messages
    assert [m["role"] for m in second][-2:] == ["tool", "user"]
    assert second[-1]["content"] == "answer in French"


def run_then_interrupt(server: ScriptedServer, monkeypatch, key: str) -> Repl:
    """Start a long tool call, queue a line, press `key` mid-run, leave."""
    repl = make_repl(server, monkeypatch)

    async def script(typist: Typist) -> None:
        await typist.line("run the long thing")
        await typist.event("tool.started")
        await typist.now("never sent")
        typist.pipe.send_text(key)
        await until(lambda: not repl.busy)
        assert typist.buffer.text == "never sent"  # back at the prompt
        typist.buffer.reset()
        await typist.line("/exit")

    session_with(repl, script)
    return repl


def test_ctrl_c_mid_run_leaves_a_session_that_lh_resumes(monkeypatch, isolated_home):
    with ScriptedServer(
        [ToolCalls(Call("bash", {"command": "sleep 30", "inline_ms": 60000})), Text("resumed")]
    ) as server:
        repl = run_then_interrupt(server, monkeypatch, "\x03")
        sid = repl.active.session_id
        assert types(repl)[-3:] == ["tool.started", "tool.failed", "agent.finished"]
        assert projections.get_session(repl.active.loop.conn, sid).status == "cancelled"
        assert "(cancelled)" in screen(repl)
        result = run_lh("--session", sid, "go on", env=lh_env(isolated_home, server.base_url))
    assert result.returncode == 0, result.stderr
    assert "resumed" in result.stdout
    conn = repl.active.loop.conn
    assert projections.unanswered_tool_calls(conn, sid) == []
    sent = server.requests[1].messages
    call_id = sent[2]["tool_calls"][0]["id"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[3]["tool_call_id"] == call_id and "interrupted" in sent[3]["content"]
    assert sent[4]["content"] == "go on"


@pytest.mark.parametrize("how", ["esc", "exit"])
def test_esc_or_leaving_mid_answer_cancels_it(monkeypatch, how):
    with ScriptedServer([Slow(Text("a slow answer " * 40), delay_s=0.1)]) as server:
        repl = make_repl(server, monkeypatch)

        async def script(typist: Typist) -> None:
            await typist.line("talk for a while")
            await typist.event("step.started")
            if how == "esc":
                typist.pipe.send_text("\x1b")
                await until(lambda: not repl.busy)
            await typist.now("/exit")

        session_with(repl, script)
    assert types(repl)[-2:] == ["model.cancelled", "agent.finished"]
    row = projections.get_session(repl.active.loop.conn, repl.active.session_id)
    assert (row.status, row.finish_reason) == ("cancelled", "cancelled")


def test_a_background_completion_wakes_the_idle_session(monkeypatch):
    steps = [
        ToolCalls(Call("bash", {"command": "sleep 0.3; echo bg-finished", "inline_ms": 0})),
        Text("started it"),
        Text("the task finished"),
    ]
    with ScriptedServer(steps) as server:
        repl = make_repl(server, monkeypatch)

        async def script(typist: Typist) -> None:
            await typist.line("go")
            await typist.event("invocation.auto")
            await until(lambda: not repl.busy and types(repl)[-1] == "agent.finished")
            await typist.line("/exit")

        session_with(repl, script)
    assert types(repl).count("invocation.auto") == 1 and types(repl).count("task.delivered") == 1
    assert "the task finished" in screen(repl)
    notice = server.requests[2].messages[-1]["content"]
    assert "bg-finished" in notice


def test_edits_show_their_diffs(monkeypatch, tmp_path):
    (tmp_path / "notes.txt").write_text("alpha\nbeta\n")
    steps = [
        ToolCalls(Call("write_file", {"path": "notes.txt", "content": "alpha\ngamma\n"})),
        ToolCalls(
            Call("edit_file", {"path": "notes.txt", "old_string": "alpha", "new_string": "omega"})
        ),
        Text("edited"),
    ]
    with ScriptedServer(steps) as server:
        _repl, shown = drive(["edit it", "/exit"], server, monkeypatch)
    assert (tmp_path / "notes.txt").read_text() == "omega\ngamma\n"
    lines = [line.strip() for line in shown.splitlines()]
    assert "--- a/notes.txt" in lines and "+++ b/notes.txt" in lines
    assert "-beta" in lines and "+gamma" in lines  # write_file: old file against new content
    assert "-alpha" in lines and "+omega" in lines  # edit_file: the diff in its result
