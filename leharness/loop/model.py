"""The model adapter: Chat Completions over httpx (`transport.py`), streamed.

It turns the event stream into our own `Reply` at the boundary, retries what
is worth retrying (429 honouring Retry-After, 5xx, connection errors,
timeouts, a stream cut half-way) and raises `ProviderError` for the rest.
The API key stays inside the client: it is never part of a Reply, an error
message or an event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from leharness.store.events import ToolCall, Usage

from .think import ThinkSplitter
from .transport import ChatTransport, StatusError, TransportError


class ProviderError(Exception):
    """The provider could not give an answer (after retries where they make sense)."""

    def __init__(self, message: str, kind: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


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


class ModelClient(Protocol):
    provider: str
    model: str

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        sink: StreamSink,
        max_tokens: int | None = None,
    ) -> Reply: ...


@dataclass
class RetryPolicy:
    retries: int = 3  # attempts = retries + 1
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        return min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)


@dataclass
class OpenAICompatibleModel:
    """Any Chat Completions server: OpenAI, Ollama, vLLM, LM Studio, DeepSeek…"""

    provider: str
    model: str
    base_url: str | None
    api_key: str = field(repr=False, default="")
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        # No retries below us: we retry ourselves so attempts are counted and recorded.
        self._client = ChatTransport(self.base_url, self.api_key, self.timeout_s)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        sink: StreamSink,
        max_tokens: int | None = None,
    ) -> Reply:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            sink.reset()
            try:
                reply = await self._stream_once(messages, tools, sink, max_tokens)
            except Exception as error:  # classified below; anything unknown re-raises
                failure = self._classify(error, attempt)
                if failure.kind not in _RETRYABLE or attempt > self.retry.retries:
                    raise failure from None
                delay = self.retry.delay(attempt, _retry_after(error))
                sink.on_retry(attempt, str(failure), delay)
                await asyncio.sleep(delay)
                continue
            reply.attempts = attempt
            reply.duration_ms = int((time.monotonic() - started) * 1000)
            return reply

    async def _stream_once(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        sink: StreamSink,
        max_tokens: int | None = None,
    ) -> Reply:
        body: dict[str, Any] = {
            "messages": messages,
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = tools
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        splitter = ThinkSplitter()
        calls: dict[int, dict[str, str]] = {}
        usage: Usage | None = None
        # The raw SSE lines are parsed here with json.loads (the SDK's pydantic
        # chunk objects cost ~2 ms per turn); the transport drains what follows
        # `[DONE]` so the connection goes back to the pool.
        async with self._client.stream(body) as response:
            async for line in response.lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise ProviderError(f"{self.provider} stream error: {chunk['error']}", "stream")
                if chunk.get("usage"):
                    usage = Usage(
                        prompt_tokens=chunk["usage"].get("prompt_tokens") or 0,
                        completion_tokens=chunk["usage"].get("completion_tokens") or 0,
                    )
                for choice in chunk.get("choices") or ():
                    _apply_delta(choice.get("delta") or {}, splitter, calls, sink)
        sink.add(*splitter.flush())
        tool_calls = [
            ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"] or "{}")
            for _, c in sorted(calls.items())
        ]
        return Reply(sink.text, sink.reasoning, tool_calls, usage)

    def _classify(self, error: Exception, attempt: int) -> ProviderError:
        if isinstance(error, ProviderError):
            error.attempts = attempt
            return error
        where = f"{self.provider} at {self.base_url or 'https://api.openai.com/v1'}"
        if isinstance(error, StatusError) and error.status_code == 401:
            hint = "check OPENAI_API_KEY" if self.provider == "openai" else "check the API key"
            return ProviderError(f"{where} rejected the API key (401): {hint}", "auth", attempt)
        if isinstance(error, StatusError) and error.status_code == 429:
            return ProviderError(f"{where} is rate limiting (429)", "rate_limit", attempt)
        if isinstance(error, TransportError):
            if error.timed_out:
                return ProviderError(f"{where} timed out", "timeout", attempt)
            return ProviderError(f"cannot reach {where}", "unreachable", attempt)
        if _is_transport_error(error):
            return ProviderError(f"the stream from {where} broke off: {error}", "stream", attempt)
        if isinstance(error, StatusError):
            message = _error_message(error)
            if error.status_code >= 500:
                return ProviderError(
                    f"{where} failed ({error.status_code}): {message}", "server", attempt
                )
            if _is_context_length(error, message):
                return ProviderError(
                    f"the prompt is too long for {self.model}: {message}", "context_length", attempt
                )
            if error.status_code == 404:
                return ProviderError(
                    f"{where}: model {self.model!r} not found: {message}", "not_found", attempt
                )
            return ProviderError(
                f"{where} refused the request ({error.status_code}): {message}",
                "bad_request",
                attempt,
            )
        raise error


def _is_transport_error(error: Exception) -> bool:
    """An error of the HTTP layer while reading the stream body (httpx's family,
    matched by class name as it was when the SDK's own httpx raised them)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"TransportError", "StreamError"}) or isinstance(error, ConnectionError)


def _apply_delta(
    delta: dict[str, Any],
    splitter: ThinkSplitter,
    calls: dict[int, dict[str, str]],
    sink: StreamSink,
) -> None:
    """Fold one streamed delta into the sink (text, reasoning) and the tool calls."""
    native = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(native, str) and native:
        sink.add("", native)
    if delta.get("content"):
        sink.add(*splitter.feed(delta["content"]))
    for part in delta.get("tool_calls") or ():
        call = calls.setdefault(part.get("index", 0), {"id": "", "name": "", "arguments": ""})
        call["id"] = call["id"] or (part.get("id") or "")
        function = part.get("function") or {}
        call["name"] += function.get("name") or ""
        call["arguments"] += function.get("arguments") or ""


_RETRYABLE = {"rate_limit", "timeout", "unreachable", "stream", "server"}


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_message(error: StatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    try:
        return json.dumps(body)[:300] if body is not None else error.message
    except TypeError:
        return error.message


def _is_context_length(error: StatusError, message: str) -> bool:
    code = getattr(error, "code", None)
    lowered = message.lower()
    return (
        code == "context_length_exceeded"
        or "context length" in lowered
        or "maximum context" in lowered
    )
