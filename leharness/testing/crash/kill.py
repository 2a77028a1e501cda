"""Test-only fault injection: SIGKILL this `lh` process at a chosen point of a run.

`LEHARNESS_TEST_KILL_AT=<point>[:<nth>]` where <point> is an event type
(`model.completed`, `tool.started`, …) or `text` for a streamed text delta;
the process kills itself right after the nth such event (default 1st) has been
rendered, so the event is committed and printed. Unset, nothing is wrapped.
The CLI wraps its channel with it (cli/session.py), not the loop: the loop has
no notion of being killed. Test-only: the wheel leaves it out with the crash points.
"""

from __future__ import annotations

import os
import signal
import sys

from leharness.errors import UserError
from leharness.loop.channel import Channel, PassingChannel
from leharness.store import Event

ENV = "LEHARNESS_TEST_KILL_AT"


class KillSwitch(PassingChannel):
    """A channel that passes everything on, then SIGKILLs the process at the chosen point."""

    def __init__(self, inner: Channel, point: str, nth: int = 1) -> None:
        super().__init__(inner)
        self.point = point
        self.remaining = nth

    def event(self, event: Event) -> None:
        self.inner.event(event)
        self._count(event.type)

    def text(self, delta: str) -> None:
        self.inner.text(delta)
        self._count("text")

    def _count(self, point: str) -> None:
        if point != self.point:
            return
        self.remaining -= 1
        if self.remaining == 0:
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def parse(spec: str) -> tuple[str, int]:
    point, _, nth = spec.partition(":")
    try:
        count = int(nth) if nth else 1
    except ValueError:
        count = 0
    if not point or count < 1:
        raise ValueError(f"{ENV} must look like 'tool.started' or 'text:2', not {spec!r}")
    return point, count


def wrap(channel: Channel) -> Channel:
    """The channel itself, or a KillSwitch around it when LEHARNESS_TEST_KILL_AT is set."""
    spec = os.environ.get(ENV)
    if not spec or isinstance(channel, KillSwitch):  # /new, /resume, /fork reuse the channel
        return channel
    try:
        point, nth = parse(spec)
    except ValueError as error:
        raise UserError(str(error)) from None
    return KillSwitch(channel, point, nth)
