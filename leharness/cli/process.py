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
import types

_entry_point = False


def entered() -> None:
    """Called by `main()`: this process is `lh` and nothing else. Start-up makes
    ~90k objects and frees almost none of them: collecting meanwhile is wasted
    work (~17 ms of a one-turn run), so the collector waits for `started()`
    (the run and the REPL) or `collecting()` (every other command)."""
    global _entry_point
    _entry_point = True
    gc.disable()
    sys.modules.setdefault("pydantic.plugin._loader", _no_pydantic_plugins())


def _no_pydantic_plugins() -> types.ModuleType:
    """pydantic's plugin loader, for this process, finding no plugins.

    The real one imports importlib.metadata (with zipfile, csv, email, tempfile) and
    reads the entry points of every installed distribution when the first model
    is built: 8-14 ms of a one-turn run, more the larger the environment. A
    pydantic plugin (logfire's) observes an application's own validation; lh's
    models are internal and lh configures no plugin. Library use of leharness
    (tests, Harbor, a user's program) keeps pydantic's own loader."""
    loader = types.ModuleType("pydantic.plugin._loader")
    loader.get_plugins = tuple  # type: ignore[attr-defined]  # get_plugins() -> ()
    return loader


def collecting() -> None:
    """A command that never calls `started()` begins: collect garbage as usual."""
    if _entry_point:
        gc.enable()


def started() -> None:
    """Start-up is over (imports done, session open): move every object made so
    far to the permanent generation, so that no collection inside a turn walks
    them again (full passes of 45-55 ms landed inside turns)."""
    if _entry_point:
        gc.freeze()
        gc.enable()


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
