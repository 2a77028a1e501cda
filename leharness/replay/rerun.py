"""Replay: re-run a stored session's invocations against the current harness.

The recorded model outputs are served in order (failures and cancels too).
Tools answer from the recording by default, so the replay checks the loop
itself: tool-call parsing and validation, step limits, event order. With
a sandbox folder the session's working directory is copied there and the
tools run for real, so a change in their output shows up. The replay is
recorded as a new session in a scratch database (never in sessions.db), then
compared with the recording (see divergence.py).

Subagents are re-run too (spawn_agent always runs): each child is served its
own recorded outputs, found by its prompt. Without a sandbox, a bash call that
became a background task starts a stand-in that ends where the recording
says (served_tasks.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leharness import store
from leharness.errors import ReplayError
from leharness.loop import compaction, runner
from leharness.loop.channel import Channel, NullChannel
from leharness.store import events as ev
from leharness.tools import CORE_TOOLS
from leharness.tools.approval import Approval, ApprovalRequest, Decision
from leharness.tools.artifacts import locate as locate_artifact
from leharness.tools.base import Tool, ToolContext, ToolError, ToolRegistry

from .divergence import Comparison, compare
from .model import Outcome, RecordedModel
from .served_tasks import ServedTasks

TASK_WAIT_S = 600.0


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
    children: list[Recording] = field(default_factory=list)

    def tree(self) -> list[Recording]:
        """This recording and its subagents', recursively."""
        return [self, *(r for child in self.children for r in child.tree())]

    def prompt(self) -> str | None:
        first = next(
            (e.data for e in self.events if isinstance(e.data, ev.InvocationReceived)), None
        )
        return first.text if first else None

    def invocations(self) -> list[Invocation]:
        """Each invocation, with as many steps allowed as it took (so one that stopped at
        --max-steps stops there again, and one that took more than the default runs on)."""
        found: list[Invocation] = []
        for event in self.events:
            data = event.data
            if isinstance(data, ev.InvocationReceived | ev.InvocationAuto):
                text = data.text if isinstance(data, ev.InvocationReceived) else None
                found.append(Invocation(text, 0))
            elif isinstance(data, ev.StepStarted) and found:
                found[-1] = Invocation(found[-1].text, found[-1].max_steps + 1)
        return [Invocation(i.text, max(1, i.max_steps)) for i in found]

    def outcomes(self) -> list[Outcome]:
        return [e.data for e in self.events if isinstance(e.data, Outcome)]

    def context_window(self) -> int | None:
        """The window the recording was compacted under, from the budget (0.85 × window)
        its first compaction.started records; windows that share a budget compact alike."""
        for event in self.events:
            if isinstance(event.data, ev.CompactionStarted):
                budget = event.data.details.get("budget")
                if isinstance(budget, int):
                    return math.ceil(budget / compaction.BUDGET_SHARE)
        return None

    def summaries(self) -> list[ev.CompactionSummary | ev.CompactionSummaryFailed]:
        """What each summariser call answered, across this session and its subagents in
        the order they were recorded (an artifact failure came before any call: left out)."""
        recorded = sorted((e for r in self.tree() for e in r.events), key=lambda e: e.seq)
        return [
            e.data
            for e in recorded
            if isinstance(e.data, ev.CompactionSummary)
            or (isinstance(e.data, ev.CompactionSummaryFailed) and e.data.kind != "artifact_error")
        ]

    def tool_results(self) -> dict[str, ev.ToolCompleted | ev.ToolFailed]:
        return {
            e.data.call_id: e.data
            for e in self.events
            if isinstance(e.data, ev.ToolCompleted | ev.ToolFailed)
        }

    def processes(self) -> dict[str, ev.ProcessStarted]:
        """The process.started of each call that ran a command, by call id."""
        return {
            e.data.call_id: e.data
            for e in self.events
            if isinstance(e.data, ev.ProcessStarted) and e.data.call_id
        }

    def artifact_paths(self, home: Path) -> dict[str, Path]:
        """Large recorded outputs on disk, by artifact id (`home`: the recording's)."""
        return {
            e.data.artifact_id: locate_artifact(home, e.data.path)
            for e in self.events
            if isinstance(e.data, ev.ArtifactCreated)
        }


def load_recording(conn, session_id: str) -> Recording:
    """A session's events and, recursively, its subagents' sessions."""
    events = list(store.read_events(conn, session_id))
    if not events:
        raise ReplayError(f"no session {session_id!r}: `lh sessions` lists them")
    created = next((e.data for e in events if isinstance(e.data, ev.SessionCreated)), None)
    created = created or ev.SessionCreated()
    children = [
        load_recording(conn, e.data.child_session_id)
        for e in events
        if isinstance(e.data, ev.TaskStarted) and e.data.child_session_id
    ]
    return Recording(session_id, created.cwd, created.provider, created.model, events, children)


def recorded_model(recording: Recording) -> RecordedModel:
    """The recorded model outcomes served in order: replies, failures and cancels. A
    subagent's calls (recognised by its prompt, the first user message) get its own."""
    # Children with the same prompt share one queue, in the order they were spawned.
    children: dict[str, list[Outcome]] = {}
    for child in recording.tree()[1:]:
        prompt = child.prompt()
        if prompt is not None:
            children.setdefault(prompt, []).extend(child.outcomes())
    return RecordedModel(
        recording.outcomes(),
        provider=recording.provider or "replay",
        model=recording.model or "recorded",
        by_prompt=children,
        summaries=recording.summaries(),
        chunk=0,
        estimate_usage=False,
    )


#: Tools that run for real even when the others answer from the recording.
ALWAYS_RUN = frozenset({"spawn_agent"})


def recorded_tools(
    recording: Recording,
    served: ServedTasks | None = None,
    tools: Iterable[Tool] = CORE_TOOLS,
    home: Path | None = None,
) -> ToolRegistry:
    """The current tools (same schemas, same argument checks) answering from the recording
    of the session and its subagents; spawn_agent runs, so the children are re-run too.
    A call that became a background task starts a stand-in for it (`served`)."""
    results: dict[str, ev.ToolCompleted | ev.ToolFailed] = {}
    artifacts: dict[str, Path] = {}
    processes: dict[str, ev.ProcessStarted] = {}
    # Keyed by call id: providers mint unique ones; on a clash the parent's own wins.
    for part in reversed(recording.tree()):
        results.update(part.tool_results())
        artifacts.update(part.artifact_paths(home or store.home_dir()))
        processes.update(part.processes())

    async def serve(_args: Any, ctx: ToolContext) -> str:
        started, record = processes.get(ctx.call_id), ctx.record
        if started is not None and record is not None:
            # Recorded as it was, so later events keep their places; its owner is the
            # recorded session, so nothing in the replay ever signals that pid.
            record(started)
        result = results.get(ctx.call_id)
        if result is None:
            raise ToolError("replay: the recording holds no result for this call", "not_recorded")
        if isinstance(result, ev.ToolFailed):
            raise ToolError(result.error, result.kind)
        if served is not None and served.start(ctx):
            return result.result  # the recorded handle: {"status": "started", …}
        path = artifacts.get(result.artifact_id or "")
        if path is not None and path.is_file():  # the full output, so it becomes an artifact again
            return path.read_text(encoding="utf-8", errors="replace")
        return result.result

    return ToolRegistry(
        tool if tool.name in ALWAYS_RUN else dataclasses.replace(tool, run=serve) for tool in tools
    )


def make_sandbox(cwd: str, sandbox: Path) -> Path:
    """Copy the session's working directory into `sandbox` (absent or empty), minus .leharness."""
    source = Path(cwd)
    if not cwd or not source.is_dir():
        problem = f"working directory {cwd} no longer exists" if cwd else "records no folder"
        raise ReplayError(
            f"the session's {problem}: replay without --sandbox-dir "
            "(tools answer from the recording)"
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
    context_window: int | None = None,
) -> Replay:
    """Re-run the recording in a scratch database under `scratch_home` (a new temporary
    folder when None) and compare. The caller removes the folder when it is done."""
    cwd = make_sandbox(recording.cwd, sandbox) if sandbox else Path(recording.cwd or ".")
    served = None if sandbox else ServedTasks(recording.events)
    tools = (
        ToolRegistry(CORE_TOOLS) if sandbox else recorded_tools(recording, served, home=source_home)
    )
    channel = channel or NullChannel()
    home = scratch_home or Path(tempfile.mkdtemp(prefix="lh-replay-"))
    conn = store.open_events_only(store.db_path(home))
    try:
        model = recorded_model(recording)
        session_id = runner.new_session(conn, cwd, model.provider, model.model)
        session = runner.LoopSession(
            conn=conn,
            session_id=session_id,
            model=model,
            tools=tools,
            cwd=cwd,
            channel=served.channel(channel) if served else channel,
            home=home,
            approval=recorded_approval(recording.events),
            context_window=context_window or recording.context_window(),
        )
        asyncio.run(_run(session, recording.invocations()))
        events = list(store.read_events(conn, session_id))
    finally:
        conn.close()
    substitutions = [(session_id, recording.session_id), (str(home), str(source_home))]
    if sandbox:
        substitutions.append((str(cwd), recording.cwd))
    return Replay(
        recording, session_id, home, events, compare(recording.events, events, substitutions, home)
    )


def recorded_approval(events: list[store.Event]) -> Approval:
    """The approval mode the recording ran under, with the user's answers served in order
    (a session recorded under --approval ask replays its questions and answers)."""
    decided = [e.data for e in events if isinstance(e.data, ev.ApprovalDecided)]
    if decided:
        answers: list[Decision] = [d.decision for d in decided if d.by == "user"]
        if not answers and all(d.by == "no_terminal" for d in decided):
            return Approval("ask")

        async def answer(request: ApprovalRequest) -> Decision:
            return answers.pop(0) if answers else "deny"

        return Approval("ask", answer)
    if any(isinstance(e.data, ev.ToolFailed) and e.data.kind == "read_only" for e in events):
        return Approval("read-only")
    return Approval("auto")


async def _run(session: runner.LoopSession, invocations: list[Invocation]) -> None:
    try:
        for invocation in invocations:
            if invocation.text is None:  # it woke up when background work ended: let it end
                await session.tasks.wait_all(TASK_WAIT_S)
            session.max_steps = invocation.max_steps
            await runner.run_invocation(session, invocation.text)
    finally:
        await session.tasks.shutdown("process_exited")
