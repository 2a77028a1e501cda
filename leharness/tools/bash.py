"""The `bash` tool: run one shell command in the session's folder and return its output.

The command runs in its own process group with stdin from /dev/null, under a
small supervisor (supervise.py) that leads the group, holds the time limit and
writes the exit status to a file even if lh dies; `process.started` records the
group with its boot id and start time so a resumed session can stop it. On a
timeout or a cancellation (Ctrl-C) the whole group is killed, never just the
shell. Memory stays bounded whatever the command prints: `OutputSink` keeps
the head and the tail and counts what fell between.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leharness.store import new_ulid
from leharness.store.events import ProcessStarted, TaskStarted
from leharness.tools import procs, supervisors
from leharness.tools.base import Tool, ToolContext, ToolError
from leharness.tools.paths import harness_home, working_dir
from leharness.tools.redact import StreamRedactor
from leharness.tools.sandbox import prefix as sandbox_prefix
from leharness.tools.supervise import exit_code
from leharness.tools.tasks import Ended, RunningTask, TaskRuntime, read_status

MAX_TIMEOUT_S = 600
MAX_INLINE_MS = 60_000
KEPT_BYTES = 1024 * 1024  # output kept in memory: half head, half tail
KILL_GRACE_S = 2.0  # between SIGTERM and SIGKILL
DRAIN_GRACE_S = 1.0  # how long to wait for background processes to close the output
BACKSTOP_S = 5.0  # lh kills the group itself if the supervisor has not ended it by then
SUPERVISOR = str(Path(__file__).with_name("supervise.py"))


class BashArgs(BaseModel):
    """Run a shell command with /bin/bash in the session's working directory.

    stdout and stderr are merged; stdin is empty (nothing can be typed in). The
    result is the output followed by a line `[exit: N]`; a non-zero exit is a
    normal result. On timeout the command and all its child processes are
    killed. Very large output keeps its beginning and end. A process started in
    the background (`cmd &`) should redirect its output to a file: output
    written after the command itself exits is not captured.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    command: str = Field(min_length=1, description="The command line, run with `bash -c`.")
    timeout_s: int = Field(
        120,
        ge=1,
        description=f"Seconds before the command is killed (at most {MAX_TIMEOUT_S}; "
        "larger values are capped).",
    )

    inline_ms: int = Field(
        5000,
        ge=0,
        description="Wait this long for the command (at most 60000); if it is still running "
        "then, it continues as a background task and you get its task_id at once. "
        "0 starts it in the background immediately.",
    )

    @field_validator("inline_ms")
    @classmethod
    def _cap_inline(cls, value: int) -> int:
        return min(value, MAX_INLINE_MS)

    @field_validator("timeout_s")
    @classmethod
    def _cap_timeout(cls, value: int) -> int:
        return min(value, MAX_TIMEOUT_S)


class OutputSink:
    """Where a command's output goes: keeps the head and the tail, counts the rest.

    A later sink can also stream every byte to an artifact file on disk; the
    bash tool only calls `write` and `text`. Secret values are redacted as the
    bytes arrive, so neither the kept text nor the file ever holds one.
    """

    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self._head_cap = kept_bytes // 2
        self._tail_cap = kept_bytes - self._head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self._file: BinaryIO | None = None
        self._redactor = StreamRedactor()
        self.file_error: OSError | None = None  # e.g. a full disk: the log stops, output goes on

    def attach(self, path: Path) -> None:
        """From now on also stream every byte to `path` (a background task's log)."""
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close_file
        self._to_file(self.text(with_pending=False).encode("utf-8", errors="replace"))

    def close_file(self) -> None:
        if self._file is not None:
            self._accept(self._redactor.flush())
            self._file.close()
            self._file = None

    def _to_file(self, data: bytes) -> None:
        if self._file is None or self.file_error is not None or not data:
            return
        try:
            self._file.write(data)
        except OSError as error:
            self.file_error = error

    def write(self, chunk: bytes) -> None:
        self._accept(self._redactor.feed(chunk))

    def _accept(self, chunk: bytes) -> None:
        self._to_file(chunk)
        self.total += len(chunk)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > 2 * self._tail_cap:  # trim in batches, not on every chunk
                del self._tail[: -self._tail_cap]

    def text(self, with_pending: bool = True) -> str:
        pending = self._redactor.pending() if with_pending else b""  # held back: split secrets
        tail = (bytes(self._tail[-self._tail_cap :]) if self._tail_cap else b"") + pending
        dropped = self.total - len(self._head) - len(tail) + len(pending)
        if not dropped:
            body, binary = _decode(bytes(self._head) + tail)
        else:
            head, head_binary = _decode(_cut_partial_end(bytes(self._head)))
            rest, tail_binary = _decode(tail.lstrip(_CONTINUATION))
            body = f"{head}\n[... {dropped} bytes of output dropped ...]\n{rest}"
            binary = head_binary or tail_binary
        return body + BINARY_NOTE if binary else body


BINARY_NOTE = (
    "\n[binary output: bytes that are not UTF-8 text are shown as \ufffd; "
    "write it to a file and inspect it with `file`, `xxd` or `od`]"
)
_CONTINUATION = bytes(range(0x80, 0xC0))  # a tail cut inside a character starts with these


def _cut_partial_end(data: bytes) -> bytes:
    """Drop a character cut in half at the end (the head stops at a byte count)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte: complete only if all its continuation bytes are here
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


def _decode(data: bytes) -> tuple[str, bool]:
    """(text, whether it looked binary: NUL bytes or invalid UTF-8, shown as U+FFFD)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").replace("\0", "\ufffd"), True
    if "\0" in text:
        return text.replace("\0", "\ufffd"), True
    return text, False


class _Collector(asyncio.Protocol):
    """Feeds the read end of the output pipe into a sink; `closed` is set at EOF."""

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.sink.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run_bash(args: BashArgs, ctx: ToolContext) -> str:
    working_dir(ctx)  # a clear error if the folder was deleted
    cwd = Path(ctx.cwd)
    runtime = ctx.tasks
    task_id = runtime.new_task_id() if runtime is not None else f"task_{new_ulid().lower()}"
    status = status_path(runtime, task_id)
    sink = OutputSink()
    read_fd, write_fd = os.pipe()
    transport, collector = await _open_reader(read_fd, sink)
    backgrounded = False
    try:
        proc = await _start(
            command_argv(args.command, ctx), status, args.timeout_s, cwd, write_fd, read_fd
        )
        recorded = False
        try:
            started = await _record_start(ctx, proc.pid, task_id, args.timeout_s)
            recorded = True
        finally:  # recorded: let the supervisor start the command; else it never runs
            await _release(proc, go=recorded)
        try:
            if (
                runtime is not None  # can go to the background
                and args.inline_ms < args.timeout_s * 1000
                and not await _finished_within(proc, args.inline_ms / 1000)
            ):
                backgrounded = True
                task = RunningTask(task_id, "bash", log_path=runtime.log_path(task_id), sink=sink)
                job = _follow(runtime, task, proc, transport, collector, args, status)
                return _background(runtime, task, job, started, args, ctx)
            ended = await _wait(proc, args.timeout_s, status)
            lingering = not await _drained(collector)
        except asyncio.CancelledError:
            await kill_group(proc)
            raise
    finally:
        if not backgrounded:
            transport.close()
            with contextlib.suppress(OSError):
                status.unlink(missing_ok=True)
    return _format(sink.text(), ended.exit_code, args.timeout_s, ended.timed_out, lingering)


Supervisor = asyncio.subprocess.Process | supervisors.Forked


async def _start(
    argv: list[str], status: Path, timeout_s: int, cwd: Path, write_fd: int, read_fd: int
) -> Supervisor:
    """The command's supervisor, waiting for `_release`: forked by lh's supervisor server
    (supervisors.py), or, when that cannot serve, a Python of its own."""
    forked = supervisors.start(
        argv, status, timeout_s, KILL_GRACE_S, cwd, write_fd, read_fd, supervisor_script()
    )
    if forked is None:
        return await _spawn(supervised(argv, status, timeout_s, read_fd), cwd, write_fd, read_fd)
    os.close(write_fd)  # the supervisor has its copy; EOF comes when the last holder exits
    return forked


def supervised(argv: list[str], status: Path, timeout_s: int, drain_fd: int | None) -> list[str]:
    """`argv` under lh's supervisor (supervise.py), which leads the process group, holds
    the time limit and writes the exit status to `status`, whether lh lives or not; it
    drains `drain_fd` (the output pipe's read end) only once lh is gone."""
    return [
        sys.executable,
        "-I",
        "-S",
        supervisor_script(),
        str(status),
        str(timeout_s),
        str(KILL_GRACE_S),
        str(drain_fd) if drain_fd is not None else "-",
        "--",
        *argv,
    ]


@functools.cache
def supervisor_script() -> str:
    """What lh runs as the supervisor (see `runnable`)."""
    return runnable(SUPERVISOR)


def runnable(source: str) -> str:
    """The compiled bytecode of the script `source` when it is current, else `source`. The
    supervisor starts once per command, and compiling its source is ~2 ms of its ~18 ms of
    CPU. A wheel install ships the bytecode; importing the module writes it unless
    PYTHONDONTWRITEBYTECODE is set (then the source runs, as before: lh writes no bytecode
    the user did not want)."""
    compiled = importlib.util.cache_from_source(source)
    try:
        with open(compiled, "rb") as handle:
            header = handle.read(16)
        stat = os.stat(source)
    except OSError:
        return source
    # a timestamp-checked .pyc starts with: magic, flags 0, the source's mtime and size
    stamp = (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
    size = (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    current = header == importlib.util.MAGIC_NUMBER + bytes(4) + stamp + size
    return compiled if current else source


def status_path(runtime: TaskRuntime | None, task_id: str) -> Path:
    """Where the supervisor writes the exit status: beside the task's log file (or, when
    that folder cannot be made, in the temporary folder: the command still runs)."""
    if runtime is not None:
        with contextlib.suppress(OSError):
            return runtime.status_path(task_id)
    return Path(tempfile.gettempdir()) / f"lh-{task_id}.status"


async def _record_start(ctx: ToolContext, pid: int, task_id: str, timeout_s: int) -> ProcessStarted:
    """process.started: after a crash, the resumed session finds the group and stops it."""
    if procs.READS_PROC:  # a file read of microseconds: no thread hop
        boot, start = procs.identity(pid)
    else:  # macOS runs `ps` (milliseconds): not on the event loop
        boot, start = await asyncio.to_thread(procs.identity, pid)
    started = ProcessStarted(
        call_id=ctx.call_id or None,
        task_id=task_id,
        pid=pid,
        boot_id=boot,
        start_time=start,
        owner_session_id=ctx.session_id,
        timeout_s=timeout_s,
    )
    record = ctx.record
    if record is not None:
        record(started)
    return started


async def _release(proc: Supervisor, go: bool) -> None:
    """Tell the supervisor to start the command (`g`), or, by closing its stdin
    without it, that it must not: a command lh did not record never runs."""
    if isinstance(proc, supervisors.Forked):
        proc.release(go)
        return
    assert proc.stdin is not None
    try:
        if go:
            proc.stdin.write(b"g")
            await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the supervisor is gone already
    finally:
        proc.stdin.close()


async def _finished_within(proc: Supervisor, seconds: float) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), seconds)
    except TimeoutError:
        return False
    return True


def _background(
    runtime: TaskRuntime,
    task: RunningTask,
    job: Coroutine[Any, Any, None],
    process: ProcessStarted,
    args: BashArgs,
    ctx: ToolContext,
) -> str:
    """Hand the running command to the task runtime; its output now streams to a log file."""
    assert task.log_path is not None
    task.sink.attach(task.log_path)
    task.job = asyncio.ensure_future(job)
    started = TaskStarted(
        task_id=task.task_id,
        kind="bash",
        call_id=ctx.call_id,
        command=args.command,
        pid=process.pid,
        harness_pid=os.getpid(),
        boot_id=process.boot_id,
        start_time=process.start_time,
        owner_session_id=ctx.session_id,
    )
    return runtime.start(task, started)


async def _follow(
    runtime: TaskRuntime,
    task: RunningTask,
    proc: Supervisor,
    transport: asyncio.BaseTransport,
    collector: _Collector,
    args: BashArgs,
    status: Path,
) -> None:
    """Wait for a background command, then record how it ended."""
    try:
        ended = await _wait(proc, args.timeout_s, status)
        lingering = not await _drained(collector)
    except asyncio.CancelledError:
        await kill_group(proc)
        transport.close()
        task.sink.close_file()
        runtime.cancelled(task.task_id, task.cancel_reason, task.sink.text(), task.log_path)
        with contextlib.suppress(OSError):
            status.unlink(missing_ok=True)
        raise
    transport.close()
    task.sink.close_file()
    output = _format(task.sink.text(), ended.exit_code, args.timeout_s, ended.timed_out, lingering)
    if task.sink.file_error is not None:
        output += f"\n[the log file {task.log_path} is incomplete: {task.sink.file_error}]"
    assert task.log_path is not None
    runtime.finish_bash(task.task_id, output, ended.exit_code, task.log_path, ended.timed_out)
    with contextlib.suppress(OSError):
        status.unlink(missing_ok=True)


async def _open_reader(read_fd: int, sink: OutputSink) -> tuple[asyncio.BaseTransport, _Collector]:
    pipe = open(read_fd, "rb", buffering=0)  # noqa: SIM115 - the transport closes it
    try:
        return await asyncio.get_running_loop().connect_read_pipe(lambda: _Collector(sink), pipe)
    except BaseException:
        pipe.close()
        raise


def command_argv(command: str, ctx: ToolContext) -> list[str]:
    """The argv that runs `command`: bash, inside the session's sandbox (tools/sandbox.py)."""
    home = harness_home(ctx)
    return [
        *sandbox_prefix(ctx.sandbox, ctx.cwd, ctx.allowed_paths, home),
        "/bin/bash",
        "-c",
        command,
    ]


async def _spawn(
    argv: list[str], cwd: Path, write_fd: int, read_fd: int
) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            pass_fds=(read_fd,),  # the supervisor's copy, drained only once lh is gone
            stdin=subprocess.PIPE,  # `g` once process.started is recorded (see _release)
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as error:
        raise ToolError(f"could not start /bin/bash: {error}", "spawn_failed") from None
    finally:
        os.close(write_fd)  # the child has its copy; EOF comes when the last holder exits


async def _wait(proc: Supervisor, timeout_s: int, status: Path) -> Ended:
    """Wait for the supervisor to exit and read how the command ended. The supervisor
    holds the time limit; lh steps in only if it has not, well after the limit."""
    try:
        await asyncio.wait_for(proc.wait(), timeout_s + KILL_GRACE_S + BACKSTOP_S)
    except TimeoutError:
        await kill_group(proc)
        return Ended(exit_code(proc.returncode or 0), True)
    return read_status(status) or Ended(exit_code(proc.returncode or 0), False)


async def _drained(collector: _Collector) -> bool:
    """Wait briefly for EOF; False if background processes still hold the pipe open."""
    try:
        await asyncio.wait_for(asyncio.shield(collector.closed), DRAIN_GRACE_S)
    except TimeoutError:
        return False
    return True


async def kill_group(proc: Supervisor) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after a grace period."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_GRACE_S
    while _group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc_root = Path("/proc")
    if not (proc_root / "self" / "stat").exists():
        return True  # no /proc: a zombie nobody reaps looks alive, we wait out the grace
    return any(_stat_is_live_member(entry / "stat", pgid) for entry in proc_root.iterdir())


def _stat_is_live_member(stat: Path, pgid: int) -> bool:
    if not stat.parent.name.isdigit():
        return False
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and int(fields[2]) == pgid  # state, ppid, pgrp


def _format(output: str, code: int, timeout_s: int, timed_out: bool, lingering: bool) -> str:
    lines = [output.removesuffix("\n")] if output else []
    if lingering:
        lines.append("[background processes still hold the output open; later output not captured]")
    if timed_out:
        lines.append(f"[timed out after {timeout_s} s; process group killed]")
    lines.append(f"[exit: {code}]")
    return "\n".join(lines)


BASH = Tool(name="bash", args=BashArgs, run=run_bash, mutates=True)
