"""A command's supervisor: the time limit and the exit status hold even when lh is gone.

lh starts every bash command as `python -I -S supervise.py STATUS TIMEOUT GRACE FD --
ARGV…` in a new session, so this process leads the command's process group. It
runs ARGV in that group and waits. FD is a copy of the read end of the pipe lh
reads the output from: untouched while lh lives, drained (and dropped) once lh
is gone, so a command that prints after lh was killed is not killed by SIGPIPE
but runs to its real end. When ARGV exits it writes `{"exit_code": N,
"timed_out": false}` to STATUS (atomically: a temporary file, then a rename)
and exits with the same code. When TIMEOUT seconds pass first it sends
SIGTERM to the group, waits up to GRACE seconds, writes the status with
`"timed_out": true`, then SIGKILLs the group, itself included. lh reads STATUS
for the outcome: after a crash of lh, the resumed session records what really
happened instead of guessing. Standard library only: it starts with `-I -S`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

POLL_S = 0.2  # how often it looks whether lh is still its parent


def main(argv: list[str]) -> int:
    if len(argv) < 7 or argv[5] != "--":
        sys.stderr.write("usage: supervise.py STATUS TIMEOUT_S GRACE_S FD|- -- COMMAND...\n")
        return 2
    status, timeout_s, grace_s, command = argv[1], float(argv[2]), float(argv[3]), argv[6:]
    drain_fd = int(argv[4]) if argv[4].isdigit() else None
    lh = os.getppid()
    try:
        child = subprocess.Popen(command)  # same group; SIGPIPE is restored to default
    except OSError as error:
        sys.stderr.write(f"could not start {command[0]}: {error}\n")
        write_status(status, 127, False)
        return 127
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                code = exit_code(child.wait(max(0.0, min(POLL_S, deadline - time.monotonic()))))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
            if drain_fd is not None and os.getppid() != lh:  # lh is gone: keep the pipe open
                threading.Thread(target=drain, args=(drain_fd,), daemon=True).start()
                drain_fd = None
    except subprocess.TimeoutExpired:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's TERM is not for us
        os.killpg(0, signal.SIGTERM)
        try:
            code = exit_code(child.wait(grace_s))
        except subprocess.TimeoutExpired:
            code = 128 + signal.SIGKILL
        write_status(status, code, True)
        os.killpg(0, signal.SIGKILL)  # what ignored the TERM, and this process
        return code
    write_status(status, code, False)
    return code


def drain(fd: int) -> None:
    """Read and drop what the command prints now that nobody else reads it."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def exit_code(returncode: int) -> int:
    """A shell's way of saying it: 128 + N for a process ended by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def write_status(path: str, code: int, timed_out: bool) -> None:
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "w") as handle:
            json.dump({"exit_code": code, "timed_out": timed_out}, handle)
        os.replace(temporary, path)
    except OSError as error:  # a full disk: lh falls back to what it saw itself
        sys.stderr.write(f"could not write the exit status to {path}: {error}\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
