"""The bash sandbox: each command runs under bubblewrap with a read-only filesystem.

As Codex CLI does on Linux. `workspace-write`: everything is read-only but the
working directory, the `--allow-path` folders and a private `/tmp`; the
harness's home stays read-only even inside the workspace. `read-only`: the
workspace is read-only too, and there is no network. `off`: no sandbox. Only
Linux has bubblewrap; elsewhere (macOS) `available()` says why not, and the
CLI falls back to `off` with a warning. This module decides nothing about
settings: it builds the argv prefix for a mode and says whether it can work.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
from pathlib import Path

from .procs import which

MODES = ("read-only", "workspace-write", "off")
DEFAULT = "workspace-write"  # where bubblewrap works


def bwrap_path() -> str | None:
    return which("bwrap")


_started: subprocess.Popen[str] | None = None  # the probe start_probe() began


def _probe(bwrap: str) -> list[str]:
    return [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"]


def start_probe() -> None:
    """Begin `unavailable()`'s check in the background: bwrap making its namespaces takes
    10-25 ms of wall time, which lh spends loading the session's code meanwhile."""
    global _started
    bwrap = bwrap_path() if sys.platform.startswith("linux") else None
    if _started is not None or bwrap is None or unavailable.cache_info().currsize:
        return
    with contextlib.suppress(OSError):  # unavailable() then runs it again and says why
        _started = subprocess.Popen(
            _probe(bwrap), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )


@functools.cache
def unavailable() -> str | None:
    """Why bubblewrap cannot confine commands here (None: it can)."""
    if not sys.platform.startswith("linux"):
        return f"not available on this platform ({sys.platform}): bubblewrap is Linux only"
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
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
