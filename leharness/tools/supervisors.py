"""lh's side of the supervisor server (`supervise.py --serve`): one per lh process.

A bash command runs under a supervisor of its own (supervise.py). Starting a
Python interpreter for each one costs ~8-10 ms of CPU per command; forking one
from a small server that lh starts with its first command costs well under 1
ms. The server forks supervisors only; what each one does, and why a crash of
lh at any point of the exchange leaves nothing running that lh did not record,
is in supervise.py's docstring. When the server cannot be used (it died, or
cannot start), `start` says so with None and the bash tool starts a
supervisor per command as before.
"""

from __future__ import annotations

import array
import asyncio
import atexit
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPLY_S = 10.0  # how long lh waits for the server's pid before it gives up on it


class Forked:
    """A supervisor the server forked for one command. lh is not its parent: its exit is
    the end of the life pipe (its code is written there first), and lh holds the write
    end of its go pipe until then, the supervisor's sign that lh still lives."""

    def __init__(self, pid: int, go: int, life: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._go: int | None = go
        self._life = life
        self._code = b""
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[int] = self._loop.create_future()
        self._loop.add_reader(life, self._readable)

    def release(self, go: bool) -> None:
        """`g`: lh recorded the command, it may start; else close the pipe: it never runs."""
        if go and self._go is not None:
            try:
                os.write(self._go, b"g")
                return
            except OSError:  # the supervisor is gone already
                pass
        self._close_go()

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def _readable(self) -> None:
        try:
            data = os.read(self._life, 64)
        except OSError:
            data = b""
        if data:
            self._code += data
            return
        self._loop.remove_reader(self._life)
        os.close(self._life)
        # no code written: it was killed (its own SIGKILL on a timeout writes the status)
        self.returncode = int(self._code) if self._code.isdigit() else -signal.SIGKILL
        self._close_go()  # only now: its end is what tells a living supervisor lh is gone
        if not self._ended.done():
            self._ended.set_result(self.returncode)

    def _close_go(self) -> None:
        if self._go is not None:
            os.close(self._go)
            self._go = None


class Server:
    """The running `supervise.py --serve` and lh's end of its socket."""

    def __init__(self, script: str) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", script, "--serve", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C on lh's terminal is not for it
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours

    def fork(self, job: bytes, fds: list[int]) -> int:
        """Send one job with its descriptors; the pid of the supervisor forked for it."""
        data = b"%08d" % len(job) + job
        sent = self.sock.sendmsg(
            [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        )
        self.sock.sendall(data[sent:])
        reply = b""
        while not reply.endswith(b"\n"):
            ready, _, _ = select.select([self.sock], [], [], REPLY_S)
            chunk = self.sock.recv(64) if ready else b""
            if not chunk:
                raise OSError("the supervisor server did not answer")
            reply += chunk
        return int(reply)

    def close(self) -> None:
        """End it: it exits at its socket's end (its supervisors run on)."""
        self.sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_lock = threading.Lock()
_server: Server | None = None
_owner = 0  # the pid that started _server: a forked lh starts its own


def start(
    argv: list[str],
    status: Path,
    timeout_s: float,
    grace_s: float,
    cwd: Path,
    output: int,
    drain: int,
    script: str,
) -> Forked | None:
    """A supervisor for `argv`, forked by this process's server (started on first use),
    waiting for `release`; None when the server cannot serve. `output` stays lh's to
    close; `drain` (the output's read end) is copied."""
    global _server, _owner
    go_r, go_w = os.pipe()
    life_r, life_w = os.pipe()
    env = [b"=".join(item) for item in os.environb.items()]
    fields = [os.fsencode(status), b"%r" % float(timeout_s), b"%r" % float(grace_s)]
    fields += [os.fsencode(cwd), b"%d" % len(env), *env, *map(os.fsencode, argv)]
    pid = None
    if any(b"\0" in field for field in fields):  # not a valid argv: fail as exec would
        for fd in (go_r, go_w, life_r, life_w):
            os.close(fd)
        return None
    with _lock:
        try:
            if _server is None or _owner != os.getpid() or _server.process.poll() is not None:
                _stop_locked()
                _server, _owner = Server(script), os.getpid()
            pid = _server.fork(b"\0".join(fields), [output, drain, go_r, life_w])
        except (OSError, ValueError, subprocess.SubprocessError):
            _stop_locked()  # a child it may have forked sees its go pipe end: runs nothing
        finally:
            os.close(go_r)
            os.close(life_w)
    if pid is None:
        os.close(go_w)
        os.close(life_r)
        return None
    return Forked(pid, go_w, life_r)


def _stop_locked() -> None:
    global _server
    server, _server = _server, None
    if server is not None and _owner == os.getpid():
        with contextlib.suppress(OSError):
            server.close()


@atexit.register
def stop() -> None:
    """Close the server and reap it (lh's exit runs this): so it is never left behind,
    and the CPU time of the supervisors it forked counts as lh's, as it did before."""
    with _lock:
        _stop_locked()
