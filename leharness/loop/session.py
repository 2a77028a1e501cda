"""One session as the loop runs it (`LoopSession`), and `record()`: the one way the loop,
its compaction and its tools append an event.

Recording appends through the session's connection (whose authorizer lets the loop
write only events), shows the event to the channel and queues the hooks waiting
for it. The modules that run a session import this one; it imports none of them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from leharness import store
from leharness.tools.approval import Approval
from leharness.tools.base import ToolRegistry
from leharness.tools.hooks import Hooks
from leharness.tools.project import Instructions
from leharness.tools.tasks import TaskRuntime

from . import hooks
from .channel import Channel, NullChannel
from .model import ModelClient, ProviderError

FinishReason = Literal["no_tool_calls", "max_steps", "model_failed", "cancelled"]


@dataclass
class LoopSession:
    """One session as the loop runs it: its connection, model, tools and channel.

    (Not the CLI's session wrapper, nor the `sessions` row or the view read from
    the projections: this is the loop's working state for one session.)
    """

    conn: sqlite3.Connection
    session_id: str
    model: ModelClient
    tools: ToolRegistry
    cwd: Path
    channel: Channel = field(default_factory=NullChannel)
    max_steps: int = 50
    system: str | None = None
    home: Path | None = None
    depth: int = 0  # 0 for a top-level session, 1 for its subagents, …
    max_depth: int = 1  # sessions at this depth cannot spawn subagents
    allowed_paths: tuple[Path, ...] = ()  # folders beyond cwd the file tools may use
    sandbox: str = "off"  # where bash commands run: read-only | workspace-write | off
    approval: Approval = field(default_factory=Approval)  # default: auto, everything runs
    # Messages the user typed while a run is going, taken (and emptied) at each step boundary.
    steering: Callable[[], list[str]] | None = None
    context_window: int | None = None  # tokens; None: the model's known window or 32,000
    tasks: TaskRuntime = field(init=False)
    instructions: Instructions = field(default_factory=Instructions)  # read per invocation
    hooks: Hooks = field(default_factory=Hooks)  # settings.toml's [[hooks.*]]; none: no cost
    hook_queue: list[tuple[str, str | None, store.Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        store.claim(self.conn, self.session_id)  # appends fail if another writer gets in
        self.tasks = TaskRuntime(
            self.record, self.home or store.home_dir(), self.session_id, self.conn
        )

    def record(self, payload: store.Payload) -> store.Event:
        event = store.append(self.conn, self.session_id, payload)
        self.channel.event(event)
        hooks.queue(self, event)
        return event


@dataclass
class Result:
    reason: FinishReason
    text: str = ""
    error: ProviderError | None = None


def uncancel() -> None:
    """We handled the cancel (recorded it); let the task go on to record the rest."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
