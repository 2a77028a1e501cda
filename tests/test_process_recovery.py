"""Processes a killed `lh` left behind: foreground commands, background tasks, subagents, forks.

Each test runs the real `lh`, SIGKILLs it (from outside once a marker file
holds the command's pid, or through LEHARNESS_TEST_KILL_AT), then checks what
is still running, what the supervisor wrote and what the resumed session
recorded. Every test kills what it may have left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools import procs

from .e2e_helpers import LH, lh_env, query, run_lh


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_for(condition: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the condition")


def pid_in(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Process groups a test started; whatever is left of them is killed at the end."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def responder(first: list, child: list | None = None) -> Callable[[dict[str, Any]], Any]:
    """The main session's replies in order, a subagent's (first user message 'child…') in
    order, and a plain answer to anything after a resume."""

    def respond(body: dict[str, Any]) -> Any:
        users = [m.get("content") or "" for m in body["messages"] if m["role"] == "user"]
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        script = child if users and users[0].startswith("child") else first
        if any("resume" in u for u in users):
            return Text("resumed")
        return script[turn] if script and turn < len(script) else Text("done")

    return respond


def start_lh(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [LH, "--json", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def first_session(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=30)
    return json.loads(out.splitlines()[0])["session_id"]


def kill_when_running(process: subprocess.Popen, marker: Path) -> int:
    """SIGKILL lh once the command wrote its pid to `marker`; return that pid."""
    pid = wait_for(lambda: pid_in(marker))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    return pid


# -- 14.6: a foreground command does not outlive the harness ------------------


def test_a_foreground_command_left_by_a_killed_lh_is_stopped_on_resume(
    isolated_home, tmp_path, reaper
):
    command = "echo $$ > fg.pid; sleep 30; touch later"
    steps = [ToolCalls(Call("bash", {"command": command, "inline_ms": 60_000}))]
    with ScriptedServer(responder=responder(steps)) as server:
        env = lh_env(isolated_home, server.base_url)
        process = start_lh(env, tmp_path, "start")
        shell = kill_when_running(process, tmp_path / "fg.pid")
        session_id = first_session(process)
        (started,) = query(
            isolated_home,
            "SELECT data FROM events WHERE session_id = ? AND type = 'process.started'",
            session_id,
        )
        group = json.loads(started[0])
        reaper.append(group["pid"])
        assert group["boot_id"] == procs.boot_id() and group["start_time"]
        assert os.getpgid(shell) == group["pid"]  # the shell runs in the recorded group
        assert alive(shell)  # lh is gone, the command is not (yet)
        resumed = run_lh("--session", session_id, "resume", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not alive(shell) and not alive(group["pid"])
    (error,) = query(
        isolated_home,
        "SELECT error_kind FROM tool_calls WHERE session_id = ? AND name = 'bash'",
        session_id,
    )
    assert error == ("interrupted",)


def test_the_time_limit_holds_after_lh_is_killed_and_the_resume_says_so(
    isolated_home, tmp_path, reaper
):
    command = "echo $$ > fg.pid; sleep 4; touch late"
    steps = [ToolCalls(Call("bash", {"command": command, "timeout_s": 1, "inline_ms": 60_000}))]
    with ScriptedServer(responder=responder(steps)) as server:
        env = lh_env(isolated_home, server.base_url)
        process = start_lh(env, tmp_path, "start")
        shell = kill_when_running(process, tmp_path / "fg.pid")
        session_id = first_session(process)
        reaper.append(os.getpgid(shell))
        wait_for(lambda: not alive(shell), timeout_s=8)  # 1 s limit + 2 s grace, without lh
        time.sleep(4)
        assert not (tmp_path / "late").exists()
        resumed = run_lh("--session", session_id, "resume", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    (error,) = query(
        isolated_home,
        "SELECT error FROM tool_calls WHERE session_id = ? AND name = 'bash'",
        session_id,
    )
    assert "timed out and was killed" in error[0]


def test_recovery_never_signals_a_process_it_cannot_prove_is_its_own(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        boot, started = procs.identity(sleeper.pid)
        assert started is not None
        assert not procs.kill_recorded_group(sleeper.pid, boot, "1")  # another start time
        assert not procs.kill_recorded_group(sleeper.pid, "another-boot", started)
        assert not procs.kill_recorded_group(sleeper.pid, None, None)  # old rows: pid only
        assert sleeper.poll() is None
        assert procs.kill_recorded_group(sleeper.pid, boot, started)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()


# -- 14.7: background work that finished after a crash keeps its outcome ------


def test_a_task_that_finished_after_lh_died_is_recorded_with_its_exit_code(isolated_home, tmp_path):
    steps = [
        ToolCalls(Call("bash", {"command": "sleep 1; echo built; exit 3", "inline_ms": 0})),
        Text("waiting for it"),
    ]
    with ScriptedServer(responder=responder(steps)) as server:
        env = lh_env(isolated_home, server.base_url, LEHARNESS_TEST_KILL_AT="agent.finished")
        process = start_lh(env, tmp_path, "start")
        session_id = first_session(process)
        assert process.returncode == -signal.SIGKILL
        (task_id,) = query(isolated_home, "SELECT task_id FROM tasks")[0]
        status = isolated_home / "artifacts" / session_id / f"{task_id}.status"
        wait_for(status.exists)  # the supervisor wrote it: lh was already dead
        assert json.loads(status.read_text()) == {"exit_code": 3, "timed_out": False}
        env.pop("LEHARNESS_TEST_KILL_AT")
        resumed = run_lh("--session", session_id, "resume", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rows = query(isolated_home, "SELECT status, exit_code, cancel_reason FROM tasks")
    assert rows == [("failed", 3, None)]
    types = [t for (t,) in query(isolated_home, "SELECT type FROM events WHERE type LIKE 'task.%'")]
    assert "task.cancelled" not in types and "task.failed" in types
    assert not status.exists()


# -- 13.3: a fork does not inherit (or kill) its source's running tasks -------


def test_running_a_fork_leaves_the_source_sessions_background_job_alone(
    isolated_home, tmp_path, reaper
):
    command = "echo $$ > bg.pid; sleep 30"
    steps = [ToolCalls(Call("bash", {"command": command, "inline_ms": 0})), Text("started")]
    with ScriptedServer(responder=responder(steps)) as server:
        env = lh_env(isolated_home, server.base_url, LEHARNESS_TEST_KILL_AT="agent.finished")
        process = start_lh(env, tmp_path, "start")
        source = first_session(process)
        shell = wait_for(lambda: pid_in(tmp_path / "bg.pid"))
        reaper.append(os.getpgid(shell))
        env.pop("LEHARNESS_TEST_KILL_AT")
        forked = run_lh("fork", source, env=env).stdout.strip()
        ran = run_lh("--session", forked, "resume in the fork", env=env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert alive(shell)  # the fork's run did not touch its source's job
    rows = query(
        isolated_home,
        "SELECT status, cancel_reason, forked_from FROM tasks WHERE session_id = ?",
        forked,
    )
    assert rows == [("cancelled", "forked", source)]
    delivered = query(
        isolated_home,
        "SELECT data FROM events WHERE session_id = ? AND type = 'task.delivered'",
        forked,
    )
    assert f"it goes on in session {source}" in delivered[0][0]
    (running,) = query(isolated_home, "SELECT status FROM tasks WHERE session_id = ?", source)
    assert running == ("running",)  # the source's own row is untouched


def test_fork_help_says_what_a_fork_of_a_session_with_children_holds(isolated_home):
    done = run_lh("fork", "--help", env={**os.environ, "LEHARNESS_HOME": str(isolated_home)})
    text = " ".join(done.stdout.split()).lower()
    assert "subagent sessions are not copied" in text
    assert "running background tasks" in text


# -- 14.8: subagents are recovered with their parent ---------------------------


def test_a_killed_parents_subagent_is_recovered_on_resume(isolated_home, tmp_path, reaper):
    steps = [ToolCalls(Call("spawn_agent", {"prompt": "child: work"})), Text("waiting")]
    # Two replies: the calls of one reply run together and record their results together,
    # so the background one would have no result yet when lh is killed.
    child = [
        ToolCalls(Call("bash", {"command": "echo $$ > bg.pid; sleep 30", "inline_ms": 0})),
        ToolCalls(Call("bash", {"command": "echo $$ > fg.pid; sleep 30", "inline_ms": 60_000})),
    ]
    with ScriptedServer(responder=responder(steps, child)) as server:
        env = lh_env(isolated_home, server.base_url)
        process = start_lh(env, tmp_path, "start")
        foreground = kill_when_running(process, tmp_path / "fg.pid")
        parent = first_session(process)
        background = pid_in(tmp_path / "bg.pid")
        assert background is not None
        reaper += [os.getpgid(foreground), os.getpgid(background)]
        doctor = run_lh("doctor", env=env)
        assert doctor.returncode == 1
        assert "has no result" in doctor.stdout and "never finished" in doctor.stdout
        resumed = run_lh("--session", parent, "resume", env=env, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert not alive(foreground) and not alive(background)
        doctor = run_lh("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout
    ((child_id, status),) = query(
        isolated_home, "SELECT id, status FROM sessions WHERE parent_session_id = ?", parent
    )
    assert status == "cancelled"
    calls = query(isolated_home, "SELECT status FROM tool_calls WHERE session_id = ?", child_id)
    assert sorted(calls) == [("completed",), ("failed",)]  # the task's call; the interrupted one
    tasks = query(isolated_home, "SELECT session_id, status FROM tasks ORDER BY session_id")
    assert {status for _, status in tasks} == {"cancelled"}


def test_the_supervisor_runs_nothing_that_lh_did_not_record(tmp_path):
    """lh writes `g` to the supervisor once process.started is recorded; killed before
    that, its end of the pipe closes and the command never starts (nothing is left that
    a resume could not find: the one process the full kill sweep once found running)."""
    import sys

    from leharness.tools.bash import SUPERVISOR

    def supervise(stdin: bytes, name: str) -> int:
        status = tmp_path / f"{name}.status"
        command = ["/bin/bash", "-c", f"touch {name}"]
        argv = [sys.executable, "-I", "-S", SUPERVISOR, str(status), "5", "1", "-", "--"]
        done = subprocess.run([*argv, *command], input=stdin, cwd=tmp_path, timeout=30)
        return done.returncode

    assert supervise(b"", "never") == 0
    assert not (tmp_path / "never").exists() and not (tmp_path / "never.status").exists()
    assert supervise(b"g", "ran") == 0
    assert (tmp_path / "ran").exists() and (tmp_path / "ran.status").exists()
