"""`/fork [N]` in the interactive session: branch the current session and switch to the branch."""

from __future__ import annotations

from typing import Any

from leharness import store

from .session import open_session


def fork_here(repl: Any, arg: str) -> None:
    """Branch the REPL's session at event N (default: all of it) and continue in the branch;
    a bad N is one line of explanation and the session stays as it was."""
    parts = arg.split()
    source = repl.active.session_id
    if len(parts) > 1 or (parts and not parts[0].isdigit()):
        repl.console.print("usage: /fork [N]  (N: the event to branch after)", style="yellow")
        return
    at = int(parts[0]) if parts else None
    try:
        new_id = store.fork(repl.active.loop.conn, source, at)
    except store.StoreError as error:
        repl.console.print(str(error).replace("--at", "N"), style="yellow")
        return
    repl.active = open_session(new_id, False, channel=repl.active.loop.channel, **repl.options)
    forked_at = store.last_seq(repl.active.loop.conn, new_id) - 1
    repl.console.print(
        f"forked {source} at event {forked_at}: now in session {new_id}", style="dim"
    )
