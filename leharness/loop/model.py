"""The model adapter: Chat Completions over httpx (`transport.py`), streamed.

It turns the event stream into our own `Reply` at the boundary, retries what
is worth retrying (429 honouring Retry-After, 5xx, connection errors,
timeouts, a stream cut half-way or ended before its `finish_reason`,
malformed chunks) with jittered backoff, and raises `ProviderError` for the
rest. A stream is an answer only when it finished; whatever a failed attempt
streamed is discarded (the sink tells the screen). The API key stays inside
the client: it is never part of a Reply, an error message or an event.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .reply import ProviderError, Reply, StreamFold, StreamSink
from .transport import ChatTransport, StatusError, TransportError

__all__ = [
    "ModelClient",
    "OpenAICompatibleModel",
    "ProviderError",
    "Reply",
    "RetryPolicy",
    "StreamFold",
    "StreamSink",
]


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
    jitter: float = 0.25  # up to this fraction of a backoff is taken off at random

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The provider's Retry-After when it gave one, else exponential backoff with jitter
        (so many clients refused at once do not come back at once)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        backoff = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        return backoff * (1 - self.jitter * random.random())


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
                sink.discard()
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
        fold = StreamFold(sink, self.where)
        # The raw SSE lines are parsed here with json.loads (the SDK's pydantic
        # chunk objects cost ~2 ms per turn); the transport drains what follows
        # `[DONE]` so the connection goes back to the pool.
        async with self._client.stream(body) as response:
            async for line in response.lines():
                if not fold.line(line):
                    break
        return fold.reply()

    @property
    def where(self) -> str:
        return f"{self.provider} at {self.base_url or 'https://api.openai.com/v1'}"

    def _classify(self, error: Exception, attempt: int) -> ProviderError:
        if isinstance(error, ProviderError):
            error.attempts = attempt
            return error
        where = self.where
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
    """An error of the HTTP layer while reading the stream body (the transport wraps
    only the errors before a response): httpx's error family, matched by class name."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"TransportError", "StreamError"}) or isinstance(error, ConnectionError)


_RETRYABLE = {"rate_limit", "timeout", "unreachable", "stream", "server", "malformed"}


def _retry_after(error: Exception) -> float | None:
    """Seconds the provider asks us to wait: `retry-after-ms` (OpenAI's), else
    `Retry-After` as seconds or as an HTTP date."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            if name == "retry-after":
                return _seconds_until(value)
            continue
        # float() reads "nan" and "inf" too: asyncio.sleep(nan) never returns.
        return seconds if math.isfinite(seconds) else None
    return None


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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
