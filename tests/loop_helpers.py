"""Small tools and a recording channel for loop tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from leharness import store
from leharness.loop import runner
from leharness.tools.base import Tool, ToolContext, ToolError, ToolRegistry


class EchoArgs(BaseModel):
    """Echo the text back."""

    text: str


async def echo(args: EchoArgs, ctx: ToolContext) -> str:
    return f"echo: {args.text}"


class SleepArgs(BaseModel):
    """Sleep for a while."""

    seconds: float = 30


class Record:
    ran: list[str] = []


async def sleep(args: SleepArgs, ctx: ToolContext) -> str:
    Record.ran.append(ctx.call_id)
    await asyncio.sleep(args.seconds)
    return "slept"


class NoArgs(BaseModel):
    """Fail."""


async def boom(args: NoArgs, ctx: ToolContext) -> str:
    raise RuntimeError("the tool broke")


async def refuse(args: NoArgs, ctx: ToolContext) -> str:
    raise ToolError("not allowed here")


TEST_TOOLS = ToolRegistry(
    (
        Tool("echo", EchoArgs, echo, read_only=True),
        Tool("sleep", SleepArgs, sleep),
        Tool("boom", NoArgs, boom),
        Tool("refuse", NoArgs, refuse),
    )
)


class RecordingChannel(runner.NullChannel):
    """Keeps every event and delta; can run a callback on each event."""

    def __init__(self, on_event: Callable[[store.Event], None] | None = None) -> None:
        self.events: list[store.Event] = []
        self.deltas: list[str] = []
        self.on_event = on_event

    def event(self, event: store.Event) -> None:
        self.events.append(event)
        if self.on_event:
            self.on_event(event)

    def text(self, delta: str) -> None:
        self.deltas.append(delta)
        if self.on_event:
            self.on_event(None)  # type: ignore[arg-type]


def make_session(model, tools=TEST_TOOLS, channel=None, max_steps=50, cwd: Path | None = None):
    conn = store.open_events_only()
    cwd = cwd or Path.cwd()
    session_id = runner.new_session(conn, cwd, model.provider, model.model)
    return runner.LoopSession(
        conn=conn,
        session_id=session_id,
        model=model,
        tools=tools,
        cwd=cwd,
        channel=channel or RecordingChannel(),
        max_steps=max_steps,
    )


def types(session: runner.LoopSession) -> list[str]:
    return [e.type for e in store.read_events(session.conn, session.session_id)]
