"""Which process is which: a recorded process is signalled only if it is provably still ours.

A pid alone names a process only until it exits; after a reboot or a wrap-around
the same number is someone else's. A command lh starts is recorded with the
machine's boot id and the process's start time, and crash recovery signals its
group only when both still match (`same_process`). Where neither can be read,
nothing is signalled. Linux reads `/proc`; macOS asks `sysctl kern.boottime`
and `ps -o lstart=`; anything else is "not available" (None), never a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path

_PROC = Path("/proc")
READS_PROC = (_PROC / "self" / "stat").exists()  # else identity() may run a program


@cache
def boot_id() -> str | None:
    """An id of this boot of the machine (None where it cannot be read)."""
    with contextlib.suppress(OSError):
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip() or None
    if sys.platform == "darwin":
        return _run("sysctl", "-n", "kern.boottime")
    return None


def start_time(pid: int) -> str | None:
    """When process `pid` started, in the platform's own units (None: gone or unknown)."""
    stat = _PROC / str(pid) / "stat"
    if (_PROC / "self" / "stat").exists():
        try:
            # the name in parentheses may hold spaces: split after its closing one
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return fields[19] if len(fields) > 19 and fields[0] != "Z" else None  # starttime, ticks
    if sys.platform == "darwin":
        return _run("ps", "-o", "lstart=", "-p", str(pid))
    return None


def identity(pid: int) -> tuple[str | None, str | None]:
    """(boot id, start time) to record beside a pid that lh has just started."""
    return boot_id(), start_time(pid)


def same_process(pid: int | None, boot: str | None, started: str | None) -> bool:
    """Whether `pid` is still the very process recorded with this boot id and start time."""
    if not pid or boot is None or started is None:
        return False
    return boot == boot_id() and started == start_time(pid)


def kill_recorded_group(pid: int | None, boot: str | None, started: str | None) -> bool:
    """SIGKILL the process group led by `pid` if its leader is provably the recorded one;
    True if it was signalled. A leader that has exited, or a number now used by another
    process, is left alone."""
    if not same_process(pid, boot, started):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
        return True
    return False


def which(name: str) -> str | None:
    """`shutil.which(name)`, looked up once per value of PATH: the bash and search tools
    ask on every call, and a walk of PATH costs tens of microseconds each time."""
    return _which(name, os.environ.get("PATH", os.defpath))


@cache
def _which(name: str, path: str) -> str | None:
    return shutil.which(name, path=path)


def _run(*argv: str) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
