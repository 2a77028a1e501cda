"""The `lh` process itself: what start-up and exit cost, kept out of the commands.

Only the real entry point (`main`) turns these on: tests call the commands in
their own long-lived process, which must neither freeze its heap nor exit early.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys

_entry_point = False


def entered() -> None:
    """Called by `main()`: this process is `lh` and nothing else."""
    global _entry_point
    _entry_point = True


def started() -> None:
    """Start-up is over (imports done, session open): move every object made so
    far to the permanent generation, so that no collection inside a turn walks
    them again (full passes of 45-55 ms landed inside turns)."""
    if _entry_point:
        gc.freeze()


def exit_now(code: int) -> None:
    """Leave without tearing the heap down object by object (110-130 ms of
    garbage collection at exit). Everything that matters is already durable:
    each event is committed when appended; output is flushed here; atexit
    handlers (MCP servers' shutdown) still run."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)
