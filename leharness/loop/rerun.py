"""Replay: re-run a stored session's invocations against the current harness.

The recorded model outputs are served in order (failures and cancels too).
Tools answer from the recording by default, so the replay checks the loop
itself: prompt building, tool-call parsing and validation, event order. With
a sandbox folder the session's working directory is copied there and the
tools run for real, so a change in their output shows up. The replay is
recorded as a new session in a scratch database (never in sessions.db), then
compared with the recording (see divergence.py).

Not replayed faithfully without a sandbox: calls that became background tasks
or subagents (their task events come from running the tool).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leharness import store
from leharness.store import events as ev
from leharness.tools import CORE_TOOLS
from leharness.tools.base import Tool, ToolContext, ToolError, ToolRegistry

from . import runner
from .channel import Channel, NullChannel
from .divergence import Comparison, compare
from .model import ProviderError, Reply, StreamSink

TASK_WAIT_S = 600.0
Outcome = ev.ModelCompleted | ev.ModelFailed | ev.ModelCancelled


class ReplayError(Exception):
    """The session cannot be replayed as asked (a user-facing problem)."""


@dataclass(frozen=True)
class Invocation:
    text: str | None  # None: an invocation.auto
    max_steps: int


@dataclass
class Recording:
    session_id: str
    cwd: str
    provider: str | None
    model: str | None
    events: list[store.Event]

    def invocations(self, default_steps: int = 50) -> list[Invocation]:
        """Each invocation with the step limit that reproduces how it ended."""
        found: list[Invocation] = []
        steps = 0
        for event in self.events:
            data = event.data
            if isinstance(data, ev.InvocationReceived | ev.InvocationAuto):
                text = data.text if isinstance(data, ev.InvocationReceived) else None
                found.append(Invocation(text, default_steps))
                steps = 0
            elif isinstance(data, ev.StepStarted):
                steps += 1
            elif isinstance(data, ev.AgentFinished) and data.reason == "max_steps" and found:
                found[-1] = Invocation(found[-1].text, steps)
        return found

    def outcomes(self) -> list[Outcome]:
        return [e.data for e in self.events if isinstance(e.data, Outcome)]

    def tool_results(self) -> dict[str, ev.ToolCompleted | ev.ToolFailed]:
        return {
            e.data.call_id: e.data
            for e in self.events
            if isinstance(e.data, ev.ToolCompleted | ev.ToolFailed)
        }

    def artifact_paths(self) -> dict[str, Path]:
        """Large recorded outputs on disk, by artifact id."""
        return {
            e.data.artifact_id: Path(e.data.path)
            for e in self.events
            if isinstance(e.data, ev.ArtifactCreated)
        }


def load_recording(conn, session_id: str) -> Recording:
    events = list(store.read_events(conn, session_id))
    if not events:
        raise ReplayError(f"no session {session_id!r}: `lh sessions` lists them")
    created = next((e.data for e in events if isinstance(e.data, ev.SessionCreated)), None)
    created = created or ev.SessionCreated()
    return Recording(session_id, created.cwd, created.provider, created.model, events)


class RecordedModel:
    """Serves the recorded model outcomes in order: replies, failures and cancels."""

    def __init__(self, outcomes: Iterable[Outcome], provider: str | None, model: str | None):
        self.provider = provider or "replay"
        self.model = model or "recorded"
        self._outcomes = list(outcomes)
        self._next = 0

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], sink: StreamSink
    ) -> Reply:
        if self._next >= len(self._outcomes):
            held = len(self._outcomes)
            raise ProviderError(
                f"the recording has no model output left (it held {held})", "exhausted"
            )
        recorded = self._outcomes[self._next]
        self._next += 1
        await asyncio.sleep(0)
        match recorded:
            case ev.ModelFailed(error=error, kind=kind, attempts=attempts):
                raise ProviderError(error, kind, attempts)
            case ev.ModelCancelled(text=text, reasoning=reasoning):
                sink.add(text, reasoning)
                raise asyncio.CancelledError  # as when the user pressed Ctrl-C mid-answer
        sink.add(recorded.text, recorded.reasoning)
        return Reply(recorded.text, recorded.reasoning, list(recorded.tool_calls), recorded.usage)


def recorded_tools(recording: Recording, tools: Iterable[Tool] = CORE_TOOLS) -> ToolRegistry:
    """The current tools (same schemas, same argument checks) answering from the recording."""
    results = recording.tool_results()
    artifacts = recording.artifact_paths()

    async def serve(_args: Any, ctx: ToolContext) -> str:
        result = results.get(ctx.call_id)
        if result is None:
            raise ToolError("replay: the recording holds no result for this call", "not_recorded")
        if isinstance(result, ev.ToolFailed):
            raise ToolError(result.error, result.kind)
        path = artifacts.get(result.artifact_id or "")
        if path is not None and path.is_file():  # the full output, so it becomes an artifact again
            return path.read_text(encoding="utf-8", errors="replace")
        return result.result

    return ToolRegistry(dataclasses.replace(tool, run=serve) for tool in tools)


def make_sandbox(cwd: str, sandbox: Path) -> Path:
    """Copy the session's working directory into `sandbox` (absent or empty), minus .leharness."""
    source = Path(cwd)
    if not cwd or not source.is_dir():
        raise ReplayError(
            f"the session's working directory {cwd!r} no longer exists: "
            "replay without --sandbox-dir (tools answer from the recording)"
        )
    if sandbox.exists() and (not sandbox.is_dir() or any(sandbox.iterdir())):
        raise ReplayError(f"--sandbox-dir {sandbox} must be a new or empty folder")
    shutil.copytree(
        source,
        sandbox,
        symlinks=True,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".leharness"),
    )
    return sandbox.resolve()


@dataclass
class Replay:
    recording: Recording
    replay_session_id: str
    scratch_home: Path
    events: list[store.Event]
    comparison: Comparison


def replay(
    recording: Recording,
    *,
    source_home: Path,
    sandbox: Path | None = None,
    scratch_home: Path | None = None,
    channel: Channel | None = None,
) -> Replay:
    """Re-run the recording in a scratch database under `scratch_home` (a new temporary
    folder when None) and compare. The caller removes the folder when it is done."""
    cwd = make_sandbox(recording.cwd, sandbox) if sandbox else Path(recording.cwd or ".")
    tools = ToolRegistry(CORE_TOOLS) if sandbox else recorded_tools(recording)
    home = scratch_home or Path(tempfile.mkdtemp(prefix="lh-replay-"))
    conn = store.open_events_only(store.db_path(home))
    try:
        model = RecordedModel(recording.outcomes(), recording.provider, recording.model)
        session_id = runner.new_session(conn, cwd, model.provider, model.model)
        session = runner.Session(
            conn=conn,
            session_id=session_id,
            model=model,
            tools=tools,
            cwd=cwd,
            channel=channel or NullChannel(),
            home=home,
        )
        asyncio.run(_run(session, recording.invocations()))
        events = list(store.read_events(conn, session_id))
    finally:
        conn.close()
    substitutions = [(session_id, recording.session_id), (str(home), str(source_home))]
    if sandbox:
        substitutions.append((str(cwd), recording.cwd))
    return Replay(
        recording, session_id, home, events, compare(recording.events, events, substitutions)
    )


async def _run(session: runner.Session, invocations: list[Invocation]) -> None:
    try:
        for invocation in invocations:
            if invocation.text is None:  # it woke up when background work ended: let it end
                await session.tasks.wait_all(TASK_WAIT_S)
            session.max_steps = invocation.max_steps
            await runner.run_invocation(session, invocation.text)
    finally:
        await session.tasks.shutdown("process_exited")
