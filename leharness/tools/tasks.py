"""Background tasks: work that outlives its tool call, with a durable handle.

A bash command that is still running after its `inline_ms` becomes a task:
`task.started` is recorded, its output streams to a log file under the
session's artifacts folder, and when it ends `task.completed` /
`task.failed` / `task.cancelled` is recorded with the time it really ended.
The runtime records through a callback the loop hands it; it never imports
the loop and never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leharness import projections
from leharness.projections import TaskRow
from leharness.store import Event, Payload, new_ulid
from leharness.store import events as ev

from .artifacts import INLINE_LIMIT, artifacts_dir, recorded_path
from .redact import redact

TAIL_CHARS = 2000


@dataclass
class RunningTask:
    task_id: str
    kind: str
    job: asyncio.Task | None = None  # set right after creation
    log_path: Path | None = None
    sink: Any = None  # the bash OutputSink, for read_task
    cancel_reason: str = "process_exited"
    done: asyncio.Event = field(default_factory=asyncio.Event)


class TaskRuntime:
    """The tasks one session started in this process."""

    def __init__(
        self,
        record: Callable[[Payload], Event],
        home: Path,
        session_id: str,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self._record = record
        self.home = home
        self.session_id = session_id
        self.conn = conn  # read-only use: the tasks projection
        self.running: dict[str, RunningTask] = {}
        self.changed = asyncio.Event()  # set whenever a task of this process ends

    def record(self, payload: Payload) -> Event:
        """Record a task event; its output and error texts lose any secret value first."""
        texts = {
            name: redact(value)
            for name in ("output", "error", "summary", "text")
            if isinstance(value := getattr(payload, name, None), str)
        }
        return self._record(payload.model_copy(update=texts) if texts else payload)

    def row(self, task_id: str) -> TaskRow | None:
        if self.conn is None:
            return None
        return next(
            (t for t in projections.tasks(self.conn, self.session_id) if t.task_id == task_id), None
        )

    def new_task_id(self) -> str:
        return f"task_{new_ulid().lower()}"

    def log_path(self, task_id: str) -> Path:
        folder = artifacts_dir(self.home, self.session_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{task_id}.log"

    def start(self, task: RunningTask, started: ev.TaskStarted) -> str:
        """Record task.started and keep the handle; the tool result says so."""
        self.record(started)
        self.running[task.task_id] = task
        assert task.job is not None
        task.job.add_done_callback(lambda _job: self._forget(task))
        return json.dumps({"status": "started", "task_id": task.task_id})

    def _forget(self, task: RunningTask) -> None:
        self.running.pop(task.task_id, None)
        task.done.set()
        self.changed.set()

    def finish_bash(self, task_id: str, output: str, exit_code: int, log_path: Path) -> None:
        """Record how a background command ended, with its output or artifact."""
        artifact_id, shown = self._output(task_id, output, log_path)
        if exit_code == 0:
            payload: Payload = ev.TaskCompleted(
                task_id=task_id,
                summary=f"exit 0 · {_line_count(output)}",
                output=shown,
                exit_code=0,
                artifact_id=artifact_id,
            )
        else:
            payload = ev.TaskFailed(
                task_id=task_id,
                error=f"exit {exit_code}",
                output=shown,
                exit_code=exit_code,
                artifact_id=artifact_id,
            )
        self.record(payload)

    def cancelled(self, task_id: str, reason: str, output: str, log_path: Path | None) -> None:
        artifact_id, shown = self._output(task_id, output, log_path) if log_path else (None, output)
        self.record(
            ev.TaskCancelled(task_id=task_id, reason=reason, output=shown, artifact_id=artifact_id)
        )

    def _output(self, task_id: str, output: str, log_path: Path) -> tuple[str | None, str]:
        """Small output stays inline; a large one is the log file, recorded as an artifact."""
        size = log_path.stat().st_size if log_path.exists() else len(output.encode())
        if size <= INLINE_LIMIT:
            return None, output
        artifact_id = new_ulid()
        self.record(
            ev.ArtifactCreated(
                artifact_id=artifact_id,
                kind="task_output",
                path=recorded_path(self.home, log_path),
                bytes=size,
                sha256=file_sha256(log_path),
                task_id=task_id,
            )
        )
        tail = output[-TAIL_CHARS:]
        return artifact_id, f"[{size:,} bytes in {log_path}; last part:]\n{tail}"

    async def wait(self, task_id: str, timeout_s: float) -> bool:
        """Wait for one task of this process; True if it has finished."""
        task = self.running.get(task_id)
        if task is None:
            return True
        try:
            await asyncio.wait_for(task.done.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def wait_all(self, timeout_s: float) -> bool:
        """Wait until every task of this process has ended; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.running:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            task = next(iter(self.running.values()))
            await self.wait(task.task_id, remaining)
        return True

    async def cancel(self, task_id: str, reason: str) -> bool:
        """Stop one task (its process group); it records task.cancelled. False if not running."""
        task = self.running.get(task_id)
        if task is None:
            return False
        task.cancel_reason = reason
        if task.job is not None:
            task.job.cancel()
            await asyncio.gather(task.job, return_exceptions=True)
        return True

    async def shutdown(self, reason: str = "process_exited") -> None:
        """Stop what is still running (lh is exiting); each records task.cancelled."""
        for task_id in list(self.running):
            await self.cancel(task_id, reason)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks so a 200 MB log never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_tail(path: Path, size: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_orphans(runtime: TaskRuntime, candidates: list[TaskRow]) -> list[str]:
    """Tasks the projection says are running but whose lh process is gone: kill what is
    left of their process group and record task.cancelled{process_exited} with the
    output their log kept."""
    recovered = []
    for row in candidates:
        task_id, owner = row.task_id, row.harness_pid
        if task_id in runtime.running or (owner and owner != os.getpid() and process_alive(owner)):
            continue  # ours, or another live lh process's
        if row.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(row.pid, signal.SIGKILL)
        log = runtime.log_path(task_id)
        output = file_tail(log, TAIL_CHARS) if log.exists() else ""
        runtime.cancelled(task_id, "process_exited", output, log if log.exists() else None)
        recovered.append(task_id)
    return recovered


def notification(task_id: str, status: str, summary: str, output: str | None) -> str:
    """The user-role message that tells the model a background task ended."""
    text = f"[background task {task_id}] {status} · {summary or ''}".rstrip(" ·")
    return f"{text}\n{output}" if output else text


def _line_count(output: str) -> str:
    lines = output.rstrip("\n").count("\n") + 1 if output else 0
    return f"{lines} line{'s' if lines != 1 else ''} of output"
