"""Where the loop's output goes. The loop never prints; a channel renders.

Kept apart from the runner so renderers can import it without the model
adapter (and so without `openai`).
"""

from __future__ import annotations

from typing import Protocol

from leharness import store


class Channel(Protocol):
    """Where the loop's output goes: events as they are stored, deltas as they stream."""

    def event(self, event: store.Event) -> None: ...
    def text(self, delta: str) -> None: ...
    def reasoning(self, delta: str) -> None: ...
    def retry(self, attempt: int, message: str, delay_s: float) -> None: ...
    def discard(self, text: str, reasoning: str) -> None:
        """A failed model attempt had streamed this: it is not the answer (show that)."""


class NullChannel:
    def event(self, event: store.Event) -> None:
        pass

    def text(self, delta: str) -> None:
        pass

    def reasoning(self, delta: str) -> None:
        pass

    def retry(self, attempt: int, message: str, delay_s: float) -> None:
        pass

    def discard(self, text: str, reasoning: str) -> None:
        pass


class PassingChannel:
    """A channel that passes everything on to `inner`: a wrapper that steps in at some
    points (an event, a text delta) subclasses it and overrides only those."""

    def __init__(self, inner: Channel) -> None:
        self.inner = inner

    def event(self, event: store.Event) -> None:
        self.inner.event(event)

    def text(self, delta: str) -> None:
        self.inner.text(delta)

    def reasoning(self, delta: str) -> None:
        self.inner.reasoning(delta)

    def retry(self, attempt: int, message: str, delay_s: float) -> None:
        self.inner.retry(attempt, message, delay_s)

    def discard(self, text: str, reasoning: str) -> None:
        self.inner.discard(text, reasoning)
