"""The bash sandbox: each command runs under bubblewrap with a read-only filesystem.

As Codex CLI does on Linux. `workspace-write`: everything is read-only but the
working directory, the `--allow-path` folders and a private `/tmp`; the
harness's home stays read-only even inside the workspace. `read-only`: the
workspace is read-only too, and there is no network. `off`: no sandbox. Only
Linux has bubblewrap; elsewhere (macOS) `available()` says why not, and the
CLI falls back to `off` with a warning. This module decides nothing about
settings: it builds the argv prefix for a mode and says whether it can work.

Whether bwrap works is checked by running it once (~4 ms of CPU for its
namespaces), and a success is remembered in the harness's home (in `locks/`,
which the first session made) until something it depends on changes: the boot,
the bwrap binary, the user, the namespaces lh runs in, or the kernel's switches
for user namespaces. `lh doctor` always checks again (and forgets a success that
no longer holds).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from .procs import which

MODES = ("read-only", "workspace-write", "off")
DEFAULT = "workspace-write"  # where bubblewrap works


def bwrap_path() -> str | None:
    return which("bwrap")


_started: subprocess.Popen[str] | None = None  # the probe start_probe() began
# The bwrap whose success start_probe() found remembered: unavailable() need not look again.
_remembered: str | None = None


def _probe(bwrap: str) -> list[str]:
    return [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"]


#: In the harness's home: the key of the last successful check (see probe_key).
WORKS_FILE = "locks/bwrap-works"
#: The kernel's switches for unprivileged user namespaces (Debian, Ubuntu, all Linux).
USERNS_SWITCHES = (
    "kernel/unprivileged_userns_clone",
    "kernel/apparmor_restrict_unprivileged_userns",
    "user/max_user_namespaces",
)


def probe_key(bwrap: str) -> str | None:
    """Everything the check's answer depends on, as one line (None: unknown)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        binary = os.stat(bwrap)
        namespaces = [os.stat(f"/proc/self/ns/{ns}").st_ino for ns in ("user", "mnt", "pid")]
    except OSError:
        return None
    switches = []
    for name in USERNS_SWITCHES:
        try:
            with open(f"/proc/sys/{name}", encoding="ascii") as f:
                switches.append(f.read().strip())
        except OSError:
            switches.append("")
    file = [binary.st_dev, binary.st_ino, binary.st_size, binary.st_mtime_ns, binary.st_mode]
    return json.dumps([boot, bwrap, *file, os.geteuid(), *namespaces, *switches])


def _works_file() -> Path:
    from leharness.store import home_dir

    return home_dir() / WORKS_FILE


def _known_to_work(key: str | None) -> bool:
    try:
        return key is not None and _works_file().read_text(encoding="utf-8") == key
    except (OSError, UnicodeDecodeError):
        return False


def _remember(key: str | None, works: bool) -> None:
    """Keep a success for the next `lh` (only in a home where a session ran: a start that
    fails leaves a new home untouched); forget a failure."""
    from leharness.store import replace_file

    path = _works_file()
    with contextlib.suppress(OSError):
        if not works:
            path.unlink(missing_ok=True)
        elif key is not None and path.parent.is_dir():
            replace_file(path, key.encode())


def start_probe() -> None:
    """Begin `unavailable()`'s check in the background: bwrap making its namespaces takes
    10-25 ms of wall time, which lh spends loading the session's code meanwhile. Nothing
    starts when a success is remembered for this boot, binary and user."""
    global _started, _remembered
    bwrap = bwrap_path() if sys.platform.startswith("linux") else None
    if _started is not None or bwrap is None or unavailable.cache_info().currsize:
        return
    if _known_to_work(probe_key(bwrap)):
        _remembered = bwrap
        return
    with contextlib.suppress(OSError):  # unavailable() then runs it again and says why
        _started = subprocess.Popen(
            _probe(bwrap), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )


@functools.cache
def unavailable(fresh: bool = False) -> str | None:
    """Why bubblewrap cannot confine commands here (None: it can). `fresh`: run the check
    even when a success is remembered (`lh doctor`)."""
    global _remembered
    if not sys.platform.startswith("linux"):
        return f"not available on this platform ({sys.platform}): bubblewrap is Linux only"
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    if not fresh and _remembered == bwrap:
        return None  # start_probe() read the same key and file a moment ago
    key = probe_key(bwrap)
    if not fresh and _started is None and _known_to_work(key):
        return None
    reason = _check(bwrap)
    _remember(key, works=reason is None)
    if reason is not None:
        _remembered = None  # forgotten in the home: not kept in this process either
    return reason


def _check(bwrap: str) -> str | None:
    """Run bwrap once (or collect the run start_probe began)."""
    try:
        if _started is not None:
            _, stderr = _started.communicate(timeout=10)
            done = subprocess.CompletedProcess(_started.args, _started.returncode, "", stderr)
        else:
            done = subprocess.run(_probe(bwrap), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        if _started is not None:
            _started.kill()
        return f"bwrap does not run: {error}"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"bwrap cannot create a sandbox here: {reason}"
    return None


def version() -> str:
    bwrap = bwrap_path()
    if bwrap is None:
        return ""
    try:
        done = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def prefix(
    mode: str, cwd: Path, allowed: tuple[Path, ...] = (), home: Path | None = None
) -> list[str]:
    """The argv that runs a command in the sandbox `mode` (empty for `off`)."""
    if mode == "off":
        return []
    bind = "--bind" if mode == "workspace-write" else "--ro-bind"
    argv = [bwrap_path() or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp"]  # private; mounted first so a workspace under /tmp shows
    cwd = cwd.resolve()
    mounts = {str(path.resolve()): bind for path in (cwd, *allowed)}
    if home is not None:  # read-only even when it lies inside the workspace
        mounts[str(home.resolve())] = "--ro-bind-try"
    # A folder inside another is mounted after it, so each keeps its own mode
    # (the home inside the work tree; `lh demo`'s work tree inside the home).
    for folder in sorted(mounts, key=lambda folder: len(Path(folder).parts)):
        argv += [mounts[folder], folder, folder]
    if mode == "read-only":
        argv.append("--unshare-net")
    # No --die-with-parent: a background task outlives lh as it does unsandboxed, and
    # bwrap and the command share one process group, which is what lh signals.
    return [*argv, "--chdir", str(cwd), "--"]
