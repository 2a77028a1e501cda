"""The one recorded model: serves recorded model outputs in order, with no network and no key.

`lh demo` runs a bundled recording through the real loop with it, tests script
the loop with it, and `lh replay` re-runs a stored session against the current
harness with it (`rerun.recorded_model(recording)`). It serves replies,
failures and cancels as they were recorded, and fails loudly when the
recording runs out. Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from leharness.loop.model import ProviderError, Reply, StreamSink
from leharness.store import events as ev

Outcome = ev.ModelCompleted | ev.ModelFailed | ev.ModelCancelled
SummaryOutcome = ev.CompactionSummary | ev.CompactionSummaryFailed


class RecordedModel:
    """Serves `outcomes` in order, one per call.

    - `by_prompt`: a subagent's calls (recognised by its prompt, the first user
      message) are served from its own queue instead.
    - `summaries`: compaction's summariser (the only caller that bounds its output)
      is served these in order; None: it takes the next outcome like any call.
    - `chunk`: a reply's text streams in pieces of this many characters, like a real
      provider; 0: in one piece, as a replay of a stored session serves it.
    - `estimate_usage`: a reply recorded without usage reports one estimated from the
      request (4 characters a token); a replay serves the usage as recorded.
    """

    def __init__(
        self,
        outcomes: Iterable[Outcome],
        *,
        provider: str = "replay",
        model: str = "recorded",
        by_prompt: Mapping[str, list[Outcome]] | None = None,
        summaries: Iterable[SummaryOutcome] | None = None,
        chunk: int = 12,
        estimate_usage: bool = True,
    ) -> None:
        self.provider = provider
        self.model = model
        self._replies = list(outcomes)
        self._held = len(self._replies)
        self._next = 0
        self._by_prompt = {prompt: list(queue) for prompt, queue in (by_prompt or {}).items()}
        self._summaries = None if summaries is None else list(summaries)
        self._chunk = chunk
        self._estimate_usage = estimate_usage
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
        if max_tokens is not None and self._summaries is not None:
            return await self._summary()
        recorded = self._take(messages)
        if not self._chunk:
            await asyncio.sleep(0)
        match recorded:
            case ev.ModelFailed(error=error, kind=kind, attempts=attempts):
                raise ProviderError(error, kind, attempts)
            case ev.ModelCancelled(text=text, reasoning=reasoning):
                sink.add(text, reasoning)
                raise asyncio.CancelledError  # as when the user pressed Ctrl-C mid-answer
        await self._stream(recorded, sink)
        usage = recorded.usage
        if usage is None and self._estimate_usage:
            usage = ev.Usage(
                prompt_tokens=sum(len(str(m.get("content") or "")) for m in messages) // 4,
                completion_tokens=len(recorded.text) // 4,
            )
        return Reply(recorded.text, recorded.reasoning, list(recorded.tool_calls), usage)

    def _take(self, messages: list[dict[str, Any]]) -> Outcome:
        first = next((m.get("content") for m in messages if m.get("role") == "user"), None)
        queue = self._by_prompt.get(first) if isinstance(first, str) else None
        if queue is not None:
            if not queue:
                raise ProviderError(
                    "the recording has no model output left for this call", "exhausted"
                )
            return queue.pop(0)
        if self._next >= len(self._replies):
            raise ProviderError(self._exhausted(), "exhausted")
        self._next += 1
        return self._replies[self._next - 1]

    def _exhausted(self) -> str:
        if self._summaries is not None:  # a replay of a stored session
            return "the recording has no model output left for this call"
        return f"the recording has no reply left (it held {self._held})"

    async def _stream(self, recorded: ev.ModelCompleted, sink: StreamSink) -> None:
        if not self._chunk:
            sink.add(recorded.text, recorded.reasoning)
            return
        if recorded.reasoning:
            sink.add("", recorded.reasoning)
        for start in range(0, len(recorded.text), self._chunk):
            sink.add(recorded.text[start : start + self._chunk], "")
            await asyncio.sleep(0)  # a real stream yields between chunks; so does this one

    async def _summary(self) -> Reply:
        """The recorded summariser answer, in order: the summary, or the same failure."""
        assert self._summaries is not None
        if not self._summaries:
            raise ProviderError("the recording has no summary left for this call", "exhausted")
        recorded = self._summaries.pop(0)
        await asyncio.sleep(0)
        match recorded:
            case ev.CompactionSummaryFailed(kind="cancelled"):
                raise asyncio.CancelledError
            case ev.CompactionSummaryFailed(kind="empty"):
                return Reply("", "", [], None)
            case ev.CompactionSummaryFailed(error=error, kind=kind):
                raise ProviderError(error, kind)
        return Reply(recorded.summary, "", [], None)
