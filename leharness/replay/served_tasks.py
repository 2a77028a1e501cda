"""Background tasks served from a recording, for a replay whose tools do not run.

A call that became a background task in the recording starts a stand-in task
under the recorded task id (so `task.started` is recorded and the task runtime
tracks it), and its ending is recorded where the recording has it: right after
the event that preceded it there, with the recorded payload (and the
`artifact.created` of a large output before it).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from leharness import store
from leharness.loop.channel import Channel, PassingChannel
from leharness.store import events as ev
from leharness.tools.base import ToolContext
from leharness.tools.tasks import RunningTask, TaskRuntime

from .divergence import SKIPPED

Ending = ev.TaskCompleted | ev.TaskFailed | ev.TaskCancelled


class ServedTasks:
    """Stand-ins for one session's recorded background tasks."""

    def __init__(self, events: list[store.Event]) -> None:
        # Aligned with the replay by position among compared events (a fork's
        # session.forked has no counterpart in the replay).
        self.events = [e for e in events if e.type not in SKIPPED]
        self.seen = 0
        self.starts = {
            e.data.call_id: e.data
            for e in events
            if isinstance(e.data, ev.TaskStarted) and e.data.call_id and e.data.kind == "bash"
        }
        self.releases: dict[str, asyncio.Event] = {}
        self.runtime: TaskRuntime | None = None

    def start(self, ctx: ToolContext) -> bool:
        """Start the stand-in when this call became a task in the recording."""
        started = self.starts.get(ctx.call_id)
        runtime = ctx.tasks
        if started is None or not isinstance(runtime, TaskRuntime):
            return False
        self.runtime = runtime
        release = self.releases.setdefault(started.task_id, asyncio.Event())
        task = RunningTask(started.task_id, started.kind)
        task.job = asyncio.ensure_future(release.wait())
        # No recorded pid: orphan recovery must never signal a process this run did not start.
        runtime.start(task, started.model_copy(update={"pid": None, "harness_pid": os.getpid()}))
        return True

    def channel(self, inner: Channel) -> Channel:
        return _EndingsChannel(inner, self)

    def after(self, event: store.Event) -> None:
        """Record what the recording has next if it ends a served task."""
        if event.type in SKIPPED:
            return
        self.seen += 1
        if self.runtime is None or self.seen >= len(self.events):
            return
        following = self.events[self.seen].data
        task_id = getattr(following, "task_id", None)
        if task_id not in self.releases:
            return
        if isinstance(following, Ending):
            self.runtime.record(following)
            self.releases[task_id].set()
        elif isinstance(following, ev.ArtifactCreated):
            self.runtime.record(following)


class _EndingsChannel(PassingChannel):
    """Passes everything on; after each event, lets the served tasks end on cue."""

    def __init__(self, inner: Channel, served: ServedTasks) -> None:
        super().__init__(inner)
        self.served = served

    def event(self, event: store.Event) -> None:
        self.inner.event(event)
        self.served.after(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
