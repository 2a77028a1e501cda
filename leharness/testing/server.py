"""A scripted OpenAI-compatible Chat Completions server on 127.0.0.1.

Tests, benchmarks and users' own tests drive `lh` through its real HTTP
client against it. Each request takes the next scripted step (or asks a
responder function), answers it streamed (SSE with tool-call deltas) or not,
and is recorded so tests can assert on the exact messages sent. When the
script runs out it answers 500 and sets `exhausted`, so a test fails loudly.

It is strict like OpenAI: a conversation that breaks the provider's rules
(`rules.py`: every tool call answered once, right after its assistant
message) gets OpenAI's 400 and is listed in `refused`, taking no step. Faults
a provider produces are steps too: `HttpError`, `Cut` (a broken or a cleanly
ended but unfinished stream), `Hang`, `Raw` (any body: malformed SSE, HTML…).
`tls=(certfile, keyfile)` serves https (see `testing.tls.self_signed`), and
`connections` counts the TCP connections accepted.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .rules import conversation_problems


@dataclass(frozen=True)
class Text:
    """A text answer; `reasoning` is sent inside <think> tags before it."""

    text: str
    reasoning: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)  # str: sent as is
    id: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    """A reply asking for one or more tool calls, optionally with text."""

    calls: tuple[Call, ...]
    text: str = ""
    prompt_tokens: int | None = None

    def __init__(self, *calls: Call, text: str = "", prompt_tokens: int | None = None) -> None:
        object.__setattr__(self, "calls", tuple(calls))
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "prompt_tokens", prompt_tokens)


@dataclass(frozen=True)
class HttpError:
    """An HTTP error in OpenAI's error shape, e.g. 429 with Retry-After."""

    status: int
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    kind: str = "scripted_error"  # OpenAI's error `type`


@dataclass(frozen=True)
class Slow:
    """Wrap a step: wait `delay_s` between stream chunks."""

    step: Text | ToolCalls
    delay_s: float = 0.05


@dataclass(frozen=True)
class Cut:
    """Wrap a step: send `after_chunks` stream chunks, then drop the connection.

    `clean=True` ends the HTTP body properly instead: the response is whole, but the
    stream stops with no `finish_reason` and no `[DONE]` (a proxy or provider timing out).
    """

    step: Text | ToolCalls
    after_chunks: int = 2
    clean: bool = False


@dataclass(frozen=True)
class Raw:
    """Answer with exactly this body (malformed SSE, an HTML page, JSON instead of a stream).

    `Raw.events(...)` builds an event stream: each item is sent as one `data:` line,
    a str as is, anything else as JSON.
    """

    body: str
    content_type: str = "text/event-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def events(*items: Any, done: bool = True) -> Raw:
        lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
        if done:
            lines.append("[DONE]")
        return Raw("".join(f"data: {line}\n\n" for line in lines))


@dataclass(frozen=True)
class Hang:
    """Accept the request and answer nothing for `seconds`."""

    seconds: float = 30.0


Step = Text | ToolCalls | HttpError | Slow | Cut | Hang | Raw
Responder = Callable[[dict[str, Any]], Step]


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes = b""  # the body's bytes as they arrived

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])


class ScriptedServer:
    """`with ScriptedServer([Text("hi")]) as server: ... server.base_url ...`

    `report_usage=False` answers without token usage, as some providers do.
    `strict=False` accepts conversations OpenAI would refuse (only to test that refusal).
    """

    def __init__(
        self,
        steps: Iterable[Step] = (),
        responder: Responder | None = None,
        report_usage: bool = True,
        strict: bool = True,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self._steps: deque[Step] = deque(steps)
        self._responder = responder
        self.report_usage = report_usage
        self.strict = strict
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.refused: list[tuple[Recorded, list[str]]] = []  # 400s for breaking the rules
        self.exhausted = False
        self._httpd: ThreadingHTTPServer | None = None
        self.tls = tls  # (certfile, keyfile): serve https
        self.connections = 0  # TCP connections accepted: a session should need one
        # CPU time (ns, the handling thread's) of each POST from its first byte read to its
        # last written: what the server itself spends on a request, for benchmarks.
        self.handling_ns: list[int] = []

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> ScriptedServer:
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- script -------------------------------------------------------------

    def push(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    @property
    def remaining(self) -> int:
        return len(self._steps)

    def next_step(
        self, body: dict[str, Any], headers: dict[str, str], raw: bytes = b""
    ) -> Step | None:
        with self._lock:
            recorded = Recorded(body, headers, raw)
            self.requests.append(recorded)
            problems = conversation_problems(recorded.messages) if self.strict else []
            if problems:
                self.refused.append((recorded, problems))
                return HttpError(400, problems[0], code=None, kind="invalid_request_error")
            if self._responder is not None:
                return self._responder(body)
            if self._steps:
                return self._steps.popleft()
            self.exhausted = True
            return None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up (cut streams, closed keep-alives) are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms ACK stall
    server_ref: ScriptedServer
    # While not None, what is written collects here and goes out in one send
    # (a response whose timing is not part of the script: no Slow, no Cut).
    _pending: bytearray | None = None
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's, which typeshed leaves out

    def flush_headers(self) -> None:
        if self._pending is None:
            super().flush_headers()
        else:
            self._pending += b"".join(self._headers_buffer)
            self._headers_buffer = []

    def _send_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self.wfile.write(bytes(pending))

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        with self.server_ref._lock:
            self.server_ref.connections += 1
        super().setup()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._json(404, _error("not found", "not_found"))

    def do_POST(self) -> None:
        started = time.thread_time_ns()
        try:
            self._post()
        finally:
            self.server_ref.handling_ns.append(time.thread_time_ns() - started)

    def _post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = json.loads(raw or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, _error(f"no route {self.path}", "not_found"))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        step = self.server_ref.next_step(body, headers, raw)
        if step is None:
            self._json(500, _error("scripted server: the script is exhausted", "exhausted"))
            return
        self._answer(step, body)

    def _answer(self, step: Step, body: dict[str, Any]) -> None:
        delay, cut_after = 0.0, None
        if isinstance(step, Hang):
            time.sleep(step.seconds)
            self.close_connection = True
            return
        if isinstance(step, HttpError):
            self._json(step.status, _error(step.message, step.code, step.kind), step.headers)
            return
        if isinstance(step, Raw):
            self._raw(step)
            return
        if isinstance(step, Slow):
            delay, step = step.delay_s, step.step
        clean = False
        if isinstance(step, Cut):
            cut_after, clean, step = step.after_chunks, step.clean, step.step
        if body.get("stream"):
            self._stream(step, body, delay, cut_after, clean)
        else:
            self._json(200, _completion(step, body, self.server_ref.report_usage))

    def _stream(
        self,
        step: Text | ToolCalls,
        body: dict[str, Any],
        delay: float,
        cut: int | None,
        clean: bool = False,
    ) -> None:
        if not delay and cut is None:
            self._pending = bytearray()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunks = list(_chunks(step))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and self.server_ref.report_usage:
            chunks.append({"choices": [], "usage": _usage(step, body)})
        for index, chunk in enumerate(chunks):
            if cut is not None and index >= cut:
                self.close_connection = True
                if clean:  # the body ends properly, the answer does not
                    self.wfile.write(b"0\r\n\r\n")
                # else no terminating chunk: the body is incomplete
                self.wfile.flush()
                return
            if delay:
                time.sleep(delay)
            payload = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body.get("model", "scripted"),
                **chunk,
            }
            self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self._write(b"0\r\n\r\n")
        self._send_pending()

    def _write_chunk(self, data: bytes) -> None:
        self._write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _write(self, data: bytes) -> None:
        if self._pending is None:
            self.wfile.write(data)
            self.wfile.flush()
        else:
            self._pending += data

    def _raw(self, step: Raw) -> None:
        data = step.body.encode()
        self.send_response(step.status)
        self.send_header("Content-Type", step.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in step.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self._pending = bytearray()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._write(data)
        self._send_pending()


def _error(message: str, code: str | None = None, kind: str = "scripted_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _content(step: Text | ToolCalls) -> str:
    if isinstance(step, Text) and step.reasoning:
        return f"<think>{step.reasoning}</think>{step.text}"
    return step.text


def _arguments(call: Call) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def _call_ids(step: ToolCalls) -> list[str]:
    return [call.id or f"call_{i + 1}" for i, call in enumerate(step.calls)]


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chunks(step: Text | ToolCalls) -> Iterable[dict[str, Any]]:
    """Stream chunks: content in pieces, then each call's name and argument pieces."""
    yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    for piece in _pieces(_content(step)):
        yield {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
    if isinstance(step, ToolCalls):
        for index, (call, call_id) in enumerate(zip(step.calls, _call_ids(step), strict=True)):
            first = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield {
                "choices": [{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}]
            }
            for piece in _pieces(_arguments(call)):
                part = {"index": index, "function": {"arguments": piece}}
                yield {
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}
                    ]
                }
    finish = "tool_calls" if isinstance(step, ToolCalls) else "stop"
    yield {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}


def _usage(step: Text | ToolCalls, body: dict[str, Any]) -> dict[str, int]:
    prompt = step.prompt_tokens
    if prompt is None:  # about four characters a token, as providers roughly count
        prompt = len(json.dumps(body.get("messages", []))) // 4
    completion = getattr(step, "completion_tokens", None) or max(1, len(_content(step)) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(
    step: Text | ToolCalls, body: dict[str, Any], report_usage: bool = True
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": _content(step) or None}
    if isinstance(step, ToolCalls):
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments(call)},
            }
            for call, call_id in zip(step.calls, _call_ids(step), strict=True)
        ]
    finish = "tool_calls" if isinstance(step, ToolCalls) else "stop"
    completion = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "scripted"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if report_usage:
        completion["usage"] = _usage(step, body)
    return completion
