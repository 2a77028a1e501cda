"""The supervisor server (`supervise.py --serve`): lh forks each command's supervisor
from one server per lh process instead of starting a Python per command. It must keep
every promise of a supervisor per command: nothing runs that lh did not release (and so
record first), nothing is left behind when lh dies while the server idles or in the
middle of a job, and a supervisor whose lh is gone still drains the output and writes
the status. The first tests speak the server's protocol directly, as lh does
(supervisors.py); the last ones kill the real `lh`."""

from __future__ import annotations

import array
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools.bash import SUPERVISOR

from .e2e_helpers import lh_env, query, run_lh
from .test_process_recovery import alive, responder, start_lh, wait_for


@dataclass
class Job:
    """lh's ends of one job's pipes."""

    output: int  # read end of the command's stdout and stderr
    go: int  # write end: `g` starts the command
    life: int  # read end: the supervisor's exit code, then EOF at its exit


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen, socket.socket]]:
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", SUPERVISOR, "--serve", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        start_new_session=True,
    )
    theirs.close()
    try:
        yield process, ours
    finally:
        ours.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.poll() is None:
            process.kill()
            process.wait()


def job_bytes(tmp_path: Path, command: str, name: str = "job") -> bytes:
    fields = [
        str(tmp_path / f"{name}.status"),
        "5.0",
        "1.0",
        str(tmp_path),
        "1",
        "PATH=/usr/bin:/bin",
    ]
    fields += ["/bin/bash", "-c", command]
    return b"\0".join(os.fsencode(field) for field in fields)


def send(sock: socket.socket, job: bytes) -> Job:
    """Send `job` with fresh pipes as lh does; lh's ends of them."""
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    life_r, life_w = os.pipe()
    data = b"%08d" % len(job) + job
    fds = array.array("i", [out_w, out_r, go_r, life_w])
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    for fd in (out_w, go_r, life_w):
        os.close(fd)
    return Job(out_r, go_w, life_r)


def pid_of(sock: socket.socket) -> int:
    reply = b""
    while not reply.endswith(b"\n"):
        assert select.select([sock], [], [], 10)[0], "the server did not answer"
        chunk = sock.recv(64)
        assert chunk, "the server closed the socket"
        reply += chunk
    return int(reply)


def read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    return data


def test_a_served_supervisor_leads_its_group_and_runs_the_command_only_after_g(server, tmp_path):
    process, sock = server
    job = send(sock, job_bytes(tmp_path, "touch ran; echo out; echo err >&2; exit 3"))
    pid = pid_of(sock)
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid  # its own session and group
    time.sleep(0.3)
    assert not (tmp_path / "ran").exists()  # lh has not released it
    os.write(job.go, b"g")
    assert read_all(job.life) == b"3"  # its code, then EOF: it exited
    os.close(job.go)
    assert (tmp_path / "ran").exists()
    assert json.loads((tmp_path / "job.status").read_text()) == {"exit_code": 3, "timed_out": False}
    assert read_all(job.output) == b"out\nerr\n"
    assert process.poll() is None  # the server serves the next command


def test_a_job_cut_short_forks_nothing_and_the_server_exits(server, tmp_path):
    """lh killed while sending a job: the length says more than arrives before EOF."""
    process, sock = server
    job = job_bytes(tmp_path, "touch ran")
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    life_r, life_w = os.pipe()
    fds = array.array("i", [out_w, out_r, go_r, life_w])
    data = b"%08d" % (len(job) + 100) + job  # 100 bytes never come
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    for fd in (out_w, go_r, life_w):
        os.close(fd)
    os.write(go_w, b"g")  # even a `g`: a job that never arrived whole never runs
    sock.close()
    assert process.wait(timeout=10) == 0
    assert read_all(life_r) == b""  # no supervisor ever held its write end
    assert read_all(out_r) == b""
    time.sleep(0.2)
    assert not (tmp_path / "ran").exists() and not (tmp_path / "job.status").exists()
    os.close(go_w)


def test_lh_gone_before_g_leaves_nothing_running(server, tmp_path):
    """lh killed between the fork and `g` (before or after process.started): the go
    pipe ends, the forked supervisor runs nothing and exits, and so does the server."""
    process, sock = server
    job = send(sock, job_bytes(tmp_path, "touch ran"))
    pid = pid_of(sock)
    assert alive(pid)
    os.close(job.go)  # what the kernel does when lh dies
    sock.close()
    assert read_all(job.life) == b"0"  # exited without running anything
    assert process.wait(timeout=10) == 0
    wait_for(lambda: not alive(pid))
    assert not (tmp_path / "ran").exists() and not (tmp_path / "job.status").exists()
    os.close(job.output)


def test_a_supervisor_whose_lh_is_gone_drains_the_output_and_writes_the_status(server, tmp_path):
    """After `g`, the go pipe's end means lh is gone: the supervisor drains the output (300
    KB, more than a pipe holds) so the command runs to its real end, not into SIGPIPE or a
    full pipe. The server has exited by then; its supervisor has not."""
    process, sock = server
    command = "sleep 0.5; head -c 300000 /dev/zero; touch done; exit 4"
    job = send(sock, job_bytes(tmp_path, command))
    pid = pid_of(sock)
    os.write(job.go, b"g")
    os.close(job.go)  # lh dies: its ends close
    sock.close()
    assert process.wait(timeout=10) == 0
    wait_for((tmp_path / "job.status").exists)
    assert json.loads((tmp_path / "job.status").read_text()) == {"exit_code": 4, "timed_out": False}
    assert (tmp_path / "done").exists()
    wait_for(lambda: not alive(pid))
    os.close(job.output)
    os.close(job.life)


def test_a_served_supervisor_holds_the_time_limit(server, tmp_path):
    _, sock = server
    fields = job_bytes(tmp_path, "sleep 30").replace(b"\x005.0\x00", b"\x000.3\x00", 1)
    job = send(sock, fields)
    pid = pid_of(sock)
    os.write(job.go, b"g")
    assert read_all(job.life) == b""  # it SIGKILLed its own group, itself included
    os.close(job.go)
    assert json.loads((tmp_path / "job.status").read_text()) == {
        "exit_code": 128 + signal.SIGTERM,
        "timed_out": True,
    }
    wait_for(lambda: not alive(pid))
    os.close(job.output)


# -- the real lh --------------------------------------------------------------


def tagged(tag: str) -> list[int]:
    """Processes whose environment holds `tag` (lh's children inherit lh's environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                if tag.encode() in (entry / "environ").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_the_server_exits_when_lh_is_killed_while_it_idles(isolated_home, tmp_path):
    """One bash call starts the server; lh is killed once its result is recorded, when the
    server idles: the server goes too, and nothing else of lh's is left."""
    tag = f"LH_TEST_TAG=idle-{os.getpid()}-{time.monotonic_ns()}"
    command = "awk '{print $4}' /proc/$PPID/stat > server.pid"  # bash's parent: the supervisor
    steps = [ToolCalls(Call("bash", {"command": command})), Text("done")]
    with ScriptedServer(responder=responder(steps)) as scripted:
        env = lh_env(
            isolated_home,
            scripted.base_url,
            LEHARNESS_TEST_KILL_AT="tool.completed",
            LH_TEST_TAG=tag.split("=", 1)[1],
        )
        process = start_lh(env, tmp_path, "--sandbox", "off", "start")
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
    server_pid = int((tmp_path / "server.pid").read_text())
    assert server_pid != process.pid
    wait_for(lambda: not alive(server_pid), timeout_s=10)
    wait_for(lambda: not tagged(tag), timeout_s=10)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_lh_killed_in_the_handshake_runs_nothing_and_leaves_nothing(isolated_home, tmp_path):
    """Killed right after recording process.started, before writing `g`: the command never
    runs, no process of lh's is left, and the resume answers the call as interrupted."""
    tag = f"handshake-{os.getpid()}-{time.monotonic_ns()}"
    steps = [ToolCalls(Call("bash", {"command": "touch ran"}))]
    with ScriptedServer(responder=responder(steps)) as scripted:
        env = lh_env(
            isolated_home,
            scripted.base_url,
            LEHARNESS_TEST_KILL_AT="process.started",
            LH_TEST_TAG=tag,
        )
        process = start_lh(env, tmp_path, "start")
        out, _ = process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        session_id = json.loads(out.splitlines()[0])["session_id"]
        wait_for(lambda: not tagged(tag), timeout_s=10)
        time.sleep(0.3)
        assert not (tmp_path / "ran").exists()
        env.pop("LEHARNESS_TEST_KILL_AT")
        resumed = run_lh("--session", session_id, "resume", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    (error,) = query(
        isolated_home,
        "SELECT error_kind FROM tool_calls WHERE session_id = ? AND name = 'bash'",
        session_id,
    )
    assert error == ("interrupted",)
    assert not (tmp_path / "ran").exists()


def test_a_served_command_gets_the_signal_dispositions_of_a_supervisor_per_command(
    server, tmp_path
):
    """The server is a long-lived Python; what it ignores, its forked supervisors and
    their commands would inherit (a shell cannot undo an ignored SIGINT)."""
    _, sock = server
    show = "grep -E '^Sig(Ign|Blk)' /proc/self/status"
    job = send(sock, job_bytes(tmp_path, show))
    pid_of(sock)
    os.write(job.go, b"g")
    read_all(job.life)
    os.close(job.go)
    served = read_all(job.output)
    argv = [sys.executable, "-I", "-S", SUPERVISOR, str(tmp_path / "cli.status"), "5", "1", "-"]
    alone = subprocess.run(
        [*argv, "--", "/bin/bash", "-c", show], input=b"g", capture_output=True, timeout=30
    ).stdout
    assert served == alone and served.startswith(b"SigBlk")
