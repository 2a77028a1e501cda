"""The interactive session, driven through prompt_toolkit's pipe input."""

from __future__ import annotations

import asyncio
import io

from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from leharness import projections
from leharness.cli.repl import Repl, RichChannel, repl_loop
from leharness.cli.session import model_client, open_session
from leharness.testing import Call, ScriptedServer, Text, ToolCalls


def drive(lines: list[str], server: ScriptedServer, monkeypatch) -> tuple[Repl, str]:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    options = dict(provider=None, model=None, base_url=None, max_steps=10)
    active = open_session(
        None, False, channel=RichChannel(console), client=model_client(None, None, None), **options
    )
    repl = Repl(active, console, options)
    with create_pipe_input() as pipe:
        pipe.send_text("".join(line + "\n" for line in lines))
        session = PromptSession(input=pipe, output=DummyOutput())
        asyncio.run(repl_loop(repl, session))
    return repl, console.file.getvalue()


def test_prompts_tools_and_slash_commands(monkeypatch):
    with ScriptedServer(
        [ToolCalls(Call("bash", {"command": "echo from-repl"})), Text("**done**"), Text("second")]
    ) as server:
        repl, screen = drive(["first", "/help", "/sessions", "again", "/exit"], server, monkeypatch)
    assert "⏺ bash: echo from-repl" in screen
    assert "done" in screen and "**done**" not in screen  # rendered as markdown
    assert "/new" in screen  # the help text
    conn = repl.active.loop.conn
    messages = projections.visible_messages(conn, repl.active.session_id)
    assert [m.content for m in messages if m.role == "user"] == ["first", "again"]
    assert repl.active.session_id in screen  # listed by /sessions


def test_new_starts_another_session(monkeypatch):
    with ScriptedServer([Text("one"), Text("two")]) as server:
        repl, _screen = drive(["a", "/new", "b", "/exit"], server, monkeypatch)
    rows = projections.list_sessions(repl.active.loop.conn)
    assert len(rows) == 2
    assert [r.title for r in rows] == ["b", "a"]


def test_a_background_completion_wakes_the_idle_session(monkeypatch):
    from leharness import store
    from leharness.testing import Call

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    steps = [
        ToolCalls(Call("bash", {"command": "sleep 0.3; echo bg-finished", "inline_ms": 0})),
        Text("started it"),
        Text("the task finished"),
    ]
    with ScriptedServer(steps) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        console = Console(file=io.StringIO(), width=100)
        options = dict(provider=None, model=None, base_url=None, max_steps=10)
        active = open_session(
            None,
            False,
            channel=RichChannel(console),
            client=model_client(None, None, None),
            **options,
        )
        repl = Repl(active, console, options)
        conn = active.loop.conn

        async def main():
            with create_pipe_input() as pipe:
                pipe.send_text("go\n")
                session = PromptSession(input=pipe, output=DummyOutput())
                loop_task = asyncio.ensure_future(repl_loop(repl, session))
                for _ in range(200):  # until the automatic run has finished
                    types = [e.type for e in store.read_events(conn, active.session_id)]
                    if "invocation.auto" in types and types[-1] == "agent.finished":
                        break
                    await asyncio.sleep(0.05)
                pipe.send_text("/exit\n")
                await asyncio.wait_for(loop_task, 10)

        asyncio.run(main())
    types = [e.type for e in store.read_events(conn, active.session_id)]
    assert types.count("invocation.auto") == 1 and types.count("task.delivered") == 1
    assert "the task finished" in console.file.getvalue()
    notice = server.requests[2].messages[-1]["content"]
    assert "bg-finished" in notice
