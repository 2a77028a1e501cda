"""Opening the session a command runs, as the CLI shows it: the app builds it
(app/session.py); the CLI picks the channel it renders on and prints warnings."""

from __future__ import annotations

import os
from typing import Any

from leharness.app.session import ActiveSession, model_client
from leharness.app.session import open_session as open_app_session
from leharness.loop import runner

from .errors import UserError
from .mcp import warn
from .render import JsonChannel, TerminalChannel

__all__ = ["ActiveSession", "model_client", "open_session"]

KILL_AT = "LEHARNESS_TEST_KILL_AT"


def open_session(
    session_ref: str | None,
    continue_: bool,
    *,
    as_json: bool = False,
    channel: runner.Channel | None = None,
    **options: Any,
) -> ActiveSession:
    """`app.session.open_session` on the terminal's channel (JSON lines with --json)."""
    channel = kill_switch(channel or (JsonChannel() if as_json else TerminalChannel()))
    return open_app_session(session_ref, continue_, channel=channel, warn=warn, **options)


def kill_switch(channel: runner.Channel) -> runner.Channel:
    """The channel, or the test-only kill switch around it when LEHARNESS_TEST_KILL_AT is
    set. The switch ships only in a source checkout (the wheel leaves leharness.testing.crash
    out), so an installed lh refuses the variable in one line."""
    if not os.environ.get(KILL_AT):
        return channel
    try:
        from leharness.testing.crash import kill
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("leharness.testing"):
            raise
        raise UserError(f"{KILL_AT} is for leharness's own tests (a source checkout)") from None
    return kill.wrap(channel)
