"""Crash recovery: what a killed lh left behind is stopped and recorded before the loop goes on.

Runs at the start of every invocation. A command whose tool call never got a
result is stopped (only a process group this session started, proven by boot
id and start time); background tasks get their real ending when their
supervisor wrote one, else task.cancelled; and subagent sessions that ran in
the dead process are recovered the same way, recursively: their commands
stopped, their calls answered, their tasks closed and their run finished.
Everything here is recorded as events; nothing is retried.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from leharness import projections, store
from leharness.store import events as ev
from leharness.tools import procs
from leharness.tools.tasks import Ended, TaskRuntime, orphaned, read_status, recover_orphans

INTERRUPTED = (
    "interrupted: lh stopped before this call finished; it may or may not have taken effect"
)


def stop_interrupted_commands(runtime: TaskRuntime) -> dict[str, Ended | None]:
    """SIGKILL the process groups of commands whose tool call has no result; return, per
    call id, how the command ended when its supervisor wrote it (None: unknown)."""
    conn, session_id = _conn(runtime), runtime.session_id
    outcomes: dict[str, Ended | None] = {}
    for process in projections.interrupted_processes(conn, session_id):
        status = runtime.status_path(process.task_id)
        ended = read_status(status)
        if ended is None and process.owner_session_id == session_id:
            procs.kill_recorded_group(process.pid, process.boot_id, process.start_time)
            ended = read_status(status)  # it may have ended just before the signal
        if process.call_id:
            outcomes[process.call_id] = ended
        with contextlib.suppress(OSError):
            status.unlink(missing_ok=True)
    return outcomes


def interrupted_result(ended: Ended | None) -> str:
    """The synthetic result of a call lh did not see finish, with the outcome if known."""
    if ended is None:
        return INTERRUPTED
    how = "timed out and was killed" if ended.timed_out else "exited"
    return (
        f"interrupted: lh stopped before this call finished; the command then {how} "
        f"with exit code {ended.exit_code} (its output after lh stopped was not captured)"
    )


def settle_calls(runtime: TaskRuntime) -> None:
    """Stop the commands of unanswered tool calls, then give each call its one result."""
    outcomes = stop_interrupted_commands(runtime)
    for call in projections.unanswered_tool_calls(_conn(runtime), runtime.session_id):
        runtime.record(
            ev.ToolFailed(
                call_id=call.call_id,
                name=call.name,
                error=interrupted_result(outcomes.get(call.call_id)),
                kind="interrupted",
            )
        )


def recover_tasks(runtime: TaskRuntime) -> list[str]:
    """Close the tasks a dead lh left running; a subagent's session is recovered first."""
    conn = _conn(runtime)
    candidates = orphaned(runtime, projections.open_tasks(conn, runtime.session_id))
    unknown = []
    for row in candidates:
        theirs = row.owner_session_id not in (None, runtime.session_id)  # a copy's task
        if row.kind == "agent" and row.child_session_id and not theirs:
            recover_child(conn, runtime.home, row.child_session_id)
            answer = final_answer(conn, row.child_session_id)
            if answer is not None:  # the child had answered before lh died: that is the result
                first = answer.strip().splitlines()[0][:120] if answer.strip() else "(empty answer)"
                runtime.record(ev.TaskCompleted(task_id=row.task_id, summary=first, output=answer))
                continue
        unknown.append(row)
    recovered = [row.task_id for row in candidates if row not in unknown]
    recovered += recover_orphans(runtime, unknown)
    # A child created just before its task.started was recorded has no task row: find
    # every unfinished child that no live run (this process or another) stands behind.
    orphans = {row.task_id for row in candidates}
    live = {t.task_id for t in projections.open_tasks(conn, runtime.session_id)} - orphans
    for child in projections.unfinished_children(conn, runtime.session_id):
        if child.parent_task_id not in live and child.parent_task_id not in runtime.running:
            recover_child(conn, runtime.home, child.id)
    return recovered


def final_answer(conn: sqlite3.Connection, session_id: str) -> str | None:
    """A subagent's final answer, if its run ended with one."""
    row = projections.get_session(conn, session_id)
    if row is None or row.finish_reason != "no_tool_calls":
        return None
    messages = projections.visible_messages(conn, session_id)
    last = messages[-1] if messages else None
    return last.content or "" if last is not None and last.role == "assistant" else None


def recover_child(conn: sqlite3.Connection, home: Path, session_id: str) -> None:
    """Recover a subagent's session left running by a dead parent, and finish its run."""
    runtime = TaskRuntime(
        lambda payload: store.append(conn, session_id, payload), home, session_id, conn
    )
    settle_calls(runtime)
    recover_tasks(runtime)
    row = projections.get_session(conn, session_id)
    if row is not None and row.status in ("new", "running"):
        runtime.record(ev.AgentFinished(reason="cancelled", text=""))


def _conn(runtime: TaskRuntime) -> sqlite3.Connection:
    assert runtime.conn is not None, "recovery reads the projections"
    return runtime.conn
