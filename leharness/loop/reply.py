"""What a model call gives back, and the fold of an event stream into it.

`Reply` is our own answer type (no SDK object crosses this line), `StreamSink`
where streamed output goes while it arrives, `ProviderError` every way a
provider can fail. `StreamFold` reads a Chat Completions event stream line by
line: a stream is an answer only once it finished, and anything malformed is a
ProviderError, never an uncaught exception. Imports no HTTP client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leharness.errors import ProviderError
from leharness.store import jsontext
from leharness.store.events import ToolCall, Usage
from leharness.store.text import storable

from .think import ThinkSplitter


@dataclass
class Reply:
    text: str
    reasoning: str
    tool_calls: list[ToolCall]
    usage: Usage | None
    attempts: int = 1
    duration_ms: int = 0


@dataclass
class StreamSink:
    """Where streamed output goes while it arrives; keeps the partial text for a cancel."""

    on_text: Callable[[str], None] = lambda _delta: None
    on_reasoning: Callable[[str], None] = lambda _delta: None
    on_retry: Callable[[int, str, float], None] = lambda _attempt, _error, _delay: None
    # what a failed attempt streamed (text, reasoning): shown, but not the answer
    on_discard: Callable[[str, str], None] = lambda _text, _reasoning: None
    text: str = ""
    reasoning: str = ""

    def add(self, text: str, reasoning: str) -> None:
        if reasoning:
            self.reasoning += reasoning
            self.on_reasoning(reasoning)
        if text:
            self.text += text
            self.on_text(text)

    def reset(self) -> None:
        self.text = self.reasoning = ""

    def discard(self) -> None:
        """The attempt failed: what it streamed is not the answer."""
        if self.text or self.reasoning:
            self.on_discard(self.text, self.reasoning)
        self.reset()


class StreamFold:
    """One attempt's event stream, folded line by line into text, reasoning, tool calls
    and usage. Anything malformed raises ProviderError("malformed"); a stream that ends
    with neither a finish_reason nor [DONE] is no answer (ProviderError("stream")).

    Lines follow the SSE rules: `data:` lines accumulate until a blank line ends the
    event; comments (`:`) and other fields (`event:`, `id:`, `retry:`) are skipped.
    """

    def __init__(self, sink: StreamSink, where: str) -> None:
        self.sink, self.where = sink, where
        self.splitter = ThinkSplitter()
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Usage | None = None
        self.finished = False  # a choice came with its finish_reason
        self.done = False  # [DONE] arrived
        self.events = 0
        self.data: list[str] = []
        self.other: list[str] = []  # lines that are no SSE at all (a JSON or HTML body)

    def line(self, line: str) -> bool:
        """Fold one line; False once the stream said [DONE]."""
        if not line:
            return self._dispatch()
        name, colon, value = line.partition(":")
        if name == "data":
            self.data.append(value[1:] if value.startswith(" ") else value)
        elif colon and name in ("", "event", "id", "retry"):
            pass
        elif len(self.other) < 40:
            self.other.append(line)
        return True

    def reply(self) -> Reply:
        self._dispatch()
        if not self.events and self.other:
            raise self._not_a_stream()
        if not (self.finished or self.done):
            raise ProviderError(
                f"the stream from {self.where} ended before the answer did "
                "(no finish_reason, no [DONE])",
                "stream",
            )
        self.sink.add(*self.splitter.flush())
        try:
            # A lone surrogate (a JSON escape like \ud800) in a call's id or name: the id is
            # looked up in the store before any event holds it (runner.unique_call_ids).
            tool_calls = [
                ToolCall(
                    id=storable(c["id"]), name=storable(c["name"]), arguments=c["arguments"] or "{}"
                )
                for _, c in sorted(self.calls.items())
            ]
        except (TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
            raise ProviderError(
                f"{self.where} sent malformed tool calls: {error}", "malformed"
            ) from None
        return Reply(self.sink.text, self.sink.reasoning, tool_calls, self.usage)

    def _dispatch(self) -> bool:
        if not self.data:
            return True
        data, self.data = "\n".join(self.data).strip(), []
        self.events += 1
        if data == "[DONE]":
            self.done = True
            return False
        try:
            self._chunk(jsontext.loads(data))
        except (TypeError, AttributeError, ValueError, KeyError):
            raise ProviderError(
                f"{self.where} sent a malformed stream chunk: {data[:120]!r}", "malformed"
            ) from None
        return True

    def _chunk(self, chunk: dict[str, Any]) -> None:
        if not isinstance(chunk, dict):
            raise TypeError("a chunk is a JSON object")
        if chunk.get("error"):
            raise ProviderError(f"{self.where} stream error: {chunk['error']}", "stream")
        if chunk.get("usage"):
            self.usage = Usage(
                prompt_tokens=_tokens(chunk["usage"].get("prompt_tokens")),
                completion_tokens=_tokens(chunk["usage"].get("completion_tokens")),
            )
        for choice in chunk.get("choices") or ():
            self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self.finished = True

    def _delta(self, delta: dict[str, Any]) -> None:
        """Fold one streamed delta into the sink (text, reasoning) and the tool calls."""
        native = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(native, str) and native:
            self.sink.add("", native)
        content = delta.get("content")
        if content:
            if not isinstance(content, str):
                raise TypeError("content is a string")
            self.sink.add(*self.splitter.feed(content))
        for part in delta.get("tool_calls") or ():
            index = part.get("index", 0)
            if not isinstance(index, int):
                raise TypeError("a tool call's index is an integer")
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            call_id = part.get("id") or ""
            function = part.get("function") or {}
            name, arguments = function.get("name") or "", function.get("arguments") or ""
            if not all(isinstance(v, str) for v in (call_id, name, arguments)):
                raise TypeError("a tool call's id, name and arguments are strings")
            call["id"] = call["id"] or call_id
            call["name"] += name
            call["arguments"] += arguments

    def _not_a_stream(self) -> ProviderError:
        body = "\n".join(self.other)
        if body.lstrip().startswith("<"):
            return ProviderError(
                f"{self.where} answered with an HTML page instead of an event stream "
                f"(is the base URL right?): {' '.join(body.split())[:120]}",
                "bad_response",
            )
        try:
            parsed = jsontext.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict | str):
            error = parsed["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            return ProviderError(f"{self.where} answered with an error: {message}", "bad_response")
        what = "JSON" if parsed is not None else "something else"
        return ProviderError(
            f"{self.where} answered with {what} instead of an event stream: "
            f"{' '.join(body.split())[:120]}",
            "bad_response",
        )


def _tokens(value: Any) -> int:
    """A token count as the provider reported it; 0 (not known) for anything that is not
    a count: a negative number, or one no reader of the usage could hold (SQLite reads
    a sum past 2**63 as a float), would be recorded and break every report after it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        return 0
    return value
