"""A model that serves recorded replies in order, with no network and no key.

`lh demo` runs a bundled recording through the real loop with it, and a
replay of a stored session uses it to re-run the session against the current
harness. It streams each reply's text in small pieces like a real provider,
and fails loudly when the recording runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from leharness.store.events import ModelCompleted, Usage

from .model import ProviderError, Reply, StreamSink


class ReplayModel:
    provider = "replay"

    def __init__(
        self, replies: Iterable[ModelCompleted], model: str = "recorded", chunk: int = 12
    ) -> None:
        self.model = model
        self._replies = list(replies)
        self._next = 0
        self._chunk = chunk
        self.requests: list[list[dict[str, Any]]] = []

    @property
    def remaining(self) -> int:
        return len(self._replies) - self._next

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        sink: StreamSink,
        max_tokens: int | None = None,
    ) -> Reply:
        self.requests.append(messages)
        if self._next >= len(self._replies):
            raise ProviderError(
                f"the recording has no reply left (it held {len(self._replies)})", "exhausted"
            )
        recorded = self._replies[self._next]
        self._next += 1
        if recorded.reasoning:
            sink.add("", recorded.reasoning)
        for start in range(0, len(recorded.text), self._chunk):
            sink.add(recorded.text[start : start + self._chunk], "")
            await asyncio.sleep(0)  # a real stream yields between chunks; so does this one
        usage = recorded.usage or Usage(
            prompt_tokens=sum(len(str(m.get("content") or "")) for m in messages) // 4,
            completion_tokens=len(recorded.text) // 4,
        )
        return Reply(recorded.text, recorded.reasoning, list(recorded.tool_calls), usage)
