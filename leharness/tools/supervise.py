"""A command's supervisor: the time limit and the exit status hold even when lh is gone.

lh starts every bash command under a supervisor that leads the command's
process group (its own session). It runs ARGV in that group and waits. When
ARGV exits it writes `{"exit_code": N, "timed_out": false}` to STATUS
(atomically: a temporary file, then a rename) and exits with the same code.
When TIMEOUT seconds pass first it sends SIGTERM to the group, waits up to
GRACE seconds, writes the status with `"timed_out": true`, then SIGKILLs the
group, itself included. lh reads STATUS for the outcome: after a crash of lh,
the resumed session records what really happened instead of guessing. It
holds a copy of the read end of the pipe lh reads the output from: untouched
while lh lives, drained (and dropped) once lh is gone, so a command that
prints after lh was killed is not killed by SIGPIPE but runs to its real end.

It starts ARGV only once lh has recorded the command (process.started) and
written `g` on its go pipe: if lh dies before that, the pipe ends, the command
never runs, and nothing is left that a resumed session could not find. ARGV
gets /dev/null as its stdin.

Two ways to start one:

- `python -I -S supervise.py STATUS TIMEOUT GRACE FD|- -- ARGV…`, started by
  lh in a new session: the go pipe is its stdin, FD the output pipe's read
  end, and lh is gone once lh is no longer its parent.
- forked by the server, `supervise.py --serve SOCKET_FD`: one per lh process,
  started with the first command. A Python start costs ~8-10 ms of CPU, a
  fork of this small process well under 1 ms, and every command pays the
  difference. lh sends each job on the socket (`_receive`: length, NUL-separated
  status, limits, folder, environment and ARGV, with four descriptors: the
  output pipe's write end, its read end, the go pipe's read end and the life
  pipe's write end); the server forks, and the child calls setsid(), so it
  leads the group exactly as the first way does, and supervises the job with
  the same code. The server answers with the child's pid once the child has
  called setsid(); lh records it in process.started before it writes `g`. lh
  keeps the go pipe open until the supervisor has exited: its end (lh died) is
  how the child knows to drain. The child writes its exit code to the life
  pipe; that pipe's end is how lh, which is not its parent, sees it exit.

Why the server is as safe as a supervisor per command, case by case:

- lh dies while the server idles: the socket ends, the server exits. It never
  runs a command itself, only forks supervisors, so nothing is left.
- lh dies while sending a job: the job is incomplete (length or descriptors
  short), the server forks nothing and exits.
- lh dies after the fork, before or after recording process.started but before
  `g`: the child's go pipe ends (only lh held its write end), it runs nothing
  and exits; the server exits at the socket's end. A recorded pid then names
  a process that is gone: the resume closes the call as interrupted.
- lh dies after `g`: the child is a supervisor like any other: it holds the
  limit, writes the status, drains the output; it is in its own session, not
  the server's, so the server's exit does not touch it.
- the server dies (killed) while lh lives: lh sees the socket end, closes the
  go pipe of a job it may have been forking (that child runs nothing) and
  falls back to a supervisor per command; running supervisors are unaffected.
- a Ctrl-C on lh's terminal: the server and each supervisor lead sessions of
  their own; the terminal's SIGINT reaches none of them. A forked supervisor
  has the signal dispositions a fresh one would (the server changes only
  SIGCHLD's handler, which exec resets), so its command gets the same ones.

It starts in milliseconds: `-I -S`, only builtin modules (no subprocess, json,
socket or threading), one thread waiting in select() on a SIGCHLD wake-up
pipe. `_signal` and `_socket`, not `signal` and `socket`: those import enum
(and with it functools, collections, re's friends), 6 ms of CPU.
"""

import _signal as signal  # type: ignore[import-not-found]  # no stub; signal's own C half
import _socket  # socket.py imports enum; its C half does not
import os
import select
import sys
import time

POLL_S = 0.2  # how often it looks whether lh is still its parent
FDS = 4  # a job's descriptors: output, drain, go, life (see `serve`)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--serve" and argv[2].isdigit():
        return serve(int(argv[2]))
    if len(argv) < 7 or argv[5] != "--":
        sys.stderr.write("usage: supervise.py STATUS TIMEOUT_S GRACE_S FD|- -- COMMAND...\n")
        sys.stderr.write("       supervise.py --serve SOCKET_FD\n")
        return 2
    status, timeout_s, grace_s, command = argv[1], float(argv[2]), float(argv[3]), argv[6:]
    drain_fd = int(argv[4]) if argv[4].isdigit() else None
    if os.getpgrp() != os.getpid():  # lh starts it leading a session; run by hand, it may not
        os.setpgid(0, 0)  # the group it signals on a timeout is then its own only
    if drain_fd is not None:
        os.set_inheritable(drain_fd, False)  # the command must not hold lh's read end
    return supervise(status, timeout_s, grace_s, command, drain_fd, 0, os.environ, None)


def supervise(
    status: str,
    timeout_s: float,
    grace_s: float,
    command: list,
    drain_fd: int | None,
    go_fd: int,
    env: "dict[bytes, bytes] | os._Environ[str]",  # a string: evaluating it costs a start
    alive_fd: int | None,
) -> int:
    """Wait for `g` on `go_fd`, run `command`, hold its limit, write its status. lh is
    gone once `alive_fd` ends (None: once lh is no longer this process's parent)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _ignore)  # a handler, so the wake-up byte is sent
    waiter = Waiter(wake_r, drain_fd, os.getppid(), alive_fd)
    if _read_go(go_fd) != b"g":  # lh died (or gave up) before it recorded this command
        return 0
    try:
        # SIGPIPE and SIGXFSZ are ignored by Python: the command gets the defaults back
        pid = os.posix_spawnp(
            command[0],
            command,
            env,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
        )
    except OSError as error:
        sys.stderr.write(f"could not start {os.fsdecode(command[0])}: {error}\n")
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


def _ignore(*_: object) -> None:
    pass


def _read_go(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 1)
        except InterruptedError:
            continue
        except OSError:
            return b""


class Waiter:
    """Waits for the command; once lh is gone, drains its output pipe. lh is gone when
    `alive_fd` (the go pipe, which lh holds open until the command has ended) reaches
    its end, or, without one, when lh is no longer this process's parent."""

    def __init__(
        self, wake_fd: int, drain_fd: int | None, lh_pid: int, alive_fd: int | None = None
    ) -> None:
        self.wake_fd = wake_fd
        self.drain_fd = drain_fd
        self.draining: int | None = None  # drain_fd, once lh is gone and until its EOF
        self.lh_pid = lh_pid
        self.alive_fd = alive_fd  # watched until its EOF

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
            if self.alive_fd is None:
                self._lh_gone(os.getppid() != self.lh_pid)
            watched = [self.wake_fd]
            watched += [fd for fd in (self.draining, self.alive_fd) if fd is not None]
            try:
                poll = POLL_S if self.alive_fd is None else left
                ready, _, _ = select.select(watched, [], [], min(left, poll))
            except InterruptedError:
                continue
            if self.wake_fd in ready:
                os.read(self.wake_fd, 512)
            if self.alive_fd is not None and self.alive_fd in ready:
                self._alive_readable(self.alive_fd)
            if self.draining is not None and self.draining in ready:
                self._drain(self.draining)

    def _alive_readable(self, fd: int) -> None:
        try:
            ended = not os.read(fd, 64)
        except OSError:
            ended = True
        if ended:
            self.alive_fd = None
            self.lh_pid = -1  # never again a parent: from now on lh is gone
            self._lh_gone(True)

    def _lh_gone(self, gone: bool) -> None:
        if gone and self.drain_fd is not None and self.draining is None:
            self.draining = self.drain_fd

    def _drain(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:  # EOF: every writer is gone
            self.draining = None
            self.drain_fd = None


def serve(sock_fd: int) -> int:
    """lh's per-process supervisor server (see the module's docstring): fork one
    supervisor per job received on the socket `sock_fd`, answer with its pid; end at
    the socket's EOF (lh is gone, or done)."""
    sock = _socket.socket(fileno=sock_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _ignore)
    # SIGINT keeps what a supervisor per command had, so commands inherit the same; the
    # server leads a session of its own, so a Ctrl-C on lh's terminal does not reach it
    while True:
        _reap()
        try:
            ready, _, _ = select.select([sock_fd, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 512)
        if sock_fd not in ready:
            continue
        job = _receive(sock)
        if job is None:  # EOF, or a job cut short: lh is gone; nothing is started
            _reap()
            return 0
        fields, fds = job
        led_r, led_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the supervisor of this one job
            code = 70
            try:
                signal.set_wakeup_fd(-1)
                for fd in (sock_fd, wake_r, wake_w, led_r):
                    os.close(fd)
                os.setsid()
                os.close(led_w)  # it leads its session and group before lh learns its pid
                code = _supervise_job(fields, fds)
            finally:
                os._exit(code)
        os.close(led_w)
        for fd in fds:
            os.close(fd)
        _read_go(led_r)  # EOF once the child has called setsid() (or died)
        os.close(led_r)
        try:
            sock.sendall(b"%d\n" % pid)
        except OSError:  # lh is gone: the child's go pipe ends too, it runs nothing
            return 0


def _receive(sock: object) -> tuple[list[bytes], list[int]] | None:
    """One job: an 8-digit length, that many bytes of NUL-separated fields, sent with
    FDS descriptors. None at EOF or when the job or its descriptors are incomplete."""
    try:
        data, ancillary, _, _ = sock.recvmsg(65536, _socket.CMSG_LEN(FDS * 4))  # type: ignore[attr-defined]
    except OSError:
        return None
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
    size = int(data[:8]) if len(data) >= 8 and data[:8].isdigit() else -1
    while 8 <= len(data) < 8 + size:
        try:
            more = sock.recv(65536)  # type: ignore[attr-defined]
        except OSError:
            more = b""
        if not more:
            break
        data += more
    if len(fds) != FDS or len(data) != 8 + size:
        for fd in fds:
            os.close(fd)
        return None
    return data[8:].split(b"\0"), fds


def _supervise_job(fields: list[bytes], fds: list[int]) -> int:
    """In the forked child, leading a session of its own: take the job's output as stdout
    and stderr, then supervise it as `main` does; the code goes to the life pipe."""
    output, drain, go, life = fds
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    for fd in (drain, go, life):
        os.set_inheritable(fd, False)  # the command holds none of them
    status, timeout_s, grace_s, cwd, count = fields[:5]
    env_items = fields[5 : 5 + int(count)]
    command = fields[5 + int(count) :]
    env = dict(item.split(b"=", 1) for item in env_items if b"=" in item)
    try:
        os.chdir(cwd)
    except OSError as error:  # the folder went away: say so once lh has recorded the job
        if _read_go(go) != b"g":
            return 0
        sys.stderr.write(f"could not enter {os.fsdecode(cwd)}: {error}\n")
        write_status(os.fsdecode(status), 127, False)
        return 127
    code = supervise(
        os.fsdecode(status), float(timeout_s), float(grace_s), command, drain, go, env, go
    )
    try:  # noqa: SIM105 - contextlib imports functools and collections: ~2 ms per start
        os.write(life, b"%d" % code)
    except OSError:
        pass
    return code


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == 0:
            return


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
