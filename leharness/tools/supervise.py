"""A command's supervisor: the time limit and the exit status hold even when lh is gone.

lh starts every bash command as `python -I -S supervise.py STATUS TIMEOUT GRACE FD --
ARGV…` in a new session, so this process leads the command's process group. It
runs ARGV in that group and waits. When ARGV exits it writes `{"exit_code": N,
"timed_out": false}` to STATUS (atomically: a temporary file, then a rename)
and exits with the same code. When TIMEOUT seconds pass first it sends
SIGTERM to the group, waits up to GRACE seconds, writes the status with
`"timed_out": true`, then SIGKILLs the group, itself included. lh reads STATUS
for the outcome: after a crash of lh, the resumed session records what really
happened instead of guessing. FD is a copy of the read end of the pipe lh
reads the output from: untouched while lh lives, drained (and dropped) once lh
is gone, so a command that prints after lh was killed is not killed by SIGPIPE
but runs to its real end.

It starts ARGV only once lh has recorded the command (process.started) and
written `g` on its stdin: if lh dies before that, stdin ends, the command never
runs, and nothing is left that a resumed session could not find. ARGV gets
/dev/null as its stdin.

It runs once per command, so it starts in milliseconds: `-I -S`, only builtin
modules (no subprocess, json or threading), one thread waiting in select() on
a SIGCHLD wake-up pipe. `_signal`, not `signal`: the latter imports enum (and
with it functools, collections, re's friends), 6 of the supervisor's ~17 ms
of CPU per command.
"""

import _signal as signal  # type: ignore[import-not-found]  # no stub; signal's own C half
import os
import select
import sys
import time

POLL_S = 0.2  # how often it looks whether lh is still its parent


def main(argv: list[str]) -> int:
    if len(argv) < 7 or argv[5] != "--":
        sys.stderr.write("usage: supervise.py STATUS TIMEOUT_S GRACE_S FD|- -- COMMAND...\n")
        return 2
    status, timeout_s, grace_s, command = argv[1], float(argv[2]), float(argv[3]), argv[6:]
    drain_fd = int(argv[4]) if argv[4].isdigit() else None
    if os.getpgrp() != os.getpid():  # lh starts it leading a session; run by hand, it may not
        os.setpgid(0, 0)  # the group it signals on a timeout is then its own only
    if drain_fd is not None:
        os.set_inheritable(drain_fd, False)  # the command must not hold lh's read end
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wake-up byte is sent
    waiter = Waiter(wake_r, drain_fd, os.getppid())
    if _read_go() != b"g":  # lh died (or gave up) before it recorded this command
        return 0
    try:
        # SIGPIPE and SIGXFSZ are ignored by Python: the command gets the defaults back
        pid = os.posix_spawnp(
            command[0],
            command,
            os.environ,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
        )
    except OSError as error:
        sys.stderr.write(f"could not start {command[0]}: {error}\n")
        write_status(status, 127, False)
        return 127
    code = waiter.wait(pid, timeout_s)
    if code is not None:
        write_status(status, code, False)
        return code
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's TERM is not for us
    os.killpg(0, signal.SIGTERM)
    code = waiter.wait(pid, grace_s)
    code = 128 + signal.SIGKILL if code is None else code
    write_status(status, code, True)
    os.killpg(0, signal.SIGKILL)  # what ignored the TERM, and this process
    return code


def _read_go() -> bytes:
    while True:
        try:
            return os.read(0, 1)
        except InterruptedError:
            continue
        except OSError:
            return b""


class Waiter:
    """Waits for the command; once lh is no longer the parent, drains its output pipe."""

    def __init__(self, wake_fd: int, drain_fd: int | None, lh_pid: int) -> None:
        self.wake_fd = wake_fd
        self.drain_fd = drain_fd
        self.draining: int | None = None  # drain_fd, once lh is gone and until its EOF
        self.lh_pid = lh_pid

    def wait(self, pid: int, seconds: float) -> int | None:
        """The command's exit code, or None if it still runs after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return exit_code(os.waitstatus_to_exitcode(status))
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._lh_gone()
            watched = [self.wake_fd] + ([self.draining] if self.draining is not None else [])
            try:
                ready, _, _ = select.select(watched, [], [], min(left, POLL_S))
            except InterruptedError:
                continue
            if self.wake_fd in ready:
                os.read(self.wake_fd, 512)
            if self.draining is not None and self.draining in ready:
                self._drain(self.draining)

    def _lh_gone(self) -> None:
        if self.drain_fd is not None and self.draining is None and os.getppid() != self.lh_pid:
            self.draining = self.drain_fd

    def _drain(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:  # EOF: every writer is gone
            self.draining = None
            self.drain_fd = None


def exit_code(returncode: int) -> int:
    """A shell's way of saying it: 128 + N for a process ended by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def write_status(path: str, code: int, timed_out: bool) -> None:
    temporary = f"{path}.tmp"
    flag = "true" if timed_out else "false"
    try:
        with open(temporary, "w") as handle:
            handle.write(f'{{"exit_code": {code}, "timed_out": {flag}}}')
        os.replace(temporary, path)
    except OSError as error:  # a full disk: lh falls back to what it saw itself
        sys.stderr.write(f"could not write the exit status to {path}: {error}\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
