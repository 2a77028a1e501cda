"""Connections to MCP servers through the official SDK, kept open on a background loop.

Each server lives in its own task on one background event loop (a daemon
thread), so the SDK's task groups can neither outlive nor cancel the caller's
asyncio loops: `lh` runs several `asyncio.run` calls in one process, and a
dying server must not take the session down with it. Callers on any loop
await `Hub.call`; a server that stops answering is marked failed with its
stderr tail and never called again. Nothing here writes events or prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from leharness.errors import LeharnessError

from .config import HttpServer, McpConfig, ServerConfig, StdioServer

TAIL_LINES = 20
TAIL_BYTES = 4000
Status = Literal["connecting", "connected", "failed", "closed"]


class ServerDown(LeharnessError):
    """The server is not (or no longer) usable; `first` is True for the call that found out."""

    def __init__(self, message: str, first: bool = False) -> None:
        super().__init__(message)
        self.first = first


class CallFailed(LeharnessError):
    """The server answered a call with a protocol error (bad params, timeout, …)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Connection:
    """One MCP server: its session while it runs, its tools, or why it failed."""

    config: ServerConfig
    status: Status = "connecting"
    tools: list[Any] = field(default_factory=list)  # mcp_types.Tool, schemas untouched
    error: str = ""
    failed_during: str = "start"  # start | crash
    session: Any = None
    _errlog: Any = None  # the stdio server's stderr, a temporary file
    _tail: str = ""  # kept when the file is closed
    _stop: asyncio.Event | None = None
    _task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr (stdio servers only)."""
        if self._errlog is None:
            return self._tail
        with contextlib.suppress(OSError, ValueError):
            fd = self._errlog.fileno()
            size = os.fstat(fd).st_size
            start = max(0, size - TAIL_BYTES)
            data = os.pread(fd, size - start, start).decode("utf-8", "replace")
            lines = data.splitlines()[1:] if start else data.splitlines()
            return self.redact("\n".join(line.rstrip() for line in lines[-TAIL_LINES:]))
        return ""

    def redact(self, text: str) -> str:
        """Hide the values of headers, env entries and URL queries (secrets never enter events)."""
        config = self.config
        secrets = list(config.env.values() if isinstance(config, StdioServer) else [])
        if isinstance(config, HttpServer):
            secrets += [*config.headers.values(), urlsplit(config.url).query]
            secrets += [value.split(" ", 1)[-1] for value in config.headers.values()]
        for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    async def open(self, timeout_s: float) -> None:
        """Start the server, initialize, list its tools; on any failure, record why."""
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._serve(ready))
        try:
            self.tools = await asyncio.wait_for(asyncio.shield(ready), timeout_s)
            self.status = "connected"
        except TimeoutError:
            self._fail(f"no answer to initialize within {timeout_s:g} s", "start")
            await self.close()
        except Exception as error:
            self._fail(describe(error), "start")
            await self.close()

    async def _serve(self, ready: asyncio.Future[list[Any]]) -> None:
        from mcp import ClientSession

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                tools = await list_tools(session)
                self.session = session
                ready.set_result(tools)
                await self._stop.wait()  # type: ignore[union-attr]
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
        except BaseException as error:  # ExceptionGroup from the SDK's task groups, too
            if not ready.done():
                ready.set_exception(error if isinstance(error, Exception) else RuntimeError(error))
            elif self.status == "connected":
                self._fail(describe(error), "crash")
        finally:
            self.session = None

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        """The SDK's (read, write) streams for this server's transport."""
        config = self.config
        if isinstance(config, StdioServer):
            from mcp import StdioServerParameters, stdio_client

            self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            params = StdioServerParameters(
                command=config.command, args=config.args, env=config.env, cwd=config.cwd
            )
            async with stdio_client(params, errlog=self._errlog) as streams:
                yield streams
            return
        assert isinstance(config, HttpServer)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=config.headers, timeout=timeout) as client,
            streamable_http_client(config.url, http_client=client) as streams,
        ):
            yield streams

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        """tools/call; ServerDown if the server is gone, CallFailed for a protocol error."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        if self.status != "connected" or self.session is None:
            raise ServerDown(self.down_message())
        try:
            return await self.session.call_tool(tool, arguments, read_timeout_seconds=timeout_s)
        except MCPError as error:
            if error.error.code == REQUEST_TIMEOUT:
                raise CallFailed(f"no answer within {timeout_s:g} s", "timeout") from None
            if error.error.code != CONNECTION_CLOSED:
                raise CallFailed(error.error.message, "mcp_error") from None
            cause = "the server closed the connection"
        except Exception as error:
            cause = describe(error)
        first = self.status == "connected"
        if first:
            self._fail(cause, "crash")
            await asyncio.sleep(0.05)  # let a dying process finish writing its stderr
            self._stop.set()  # type: ignore[union-attr]  # the transport reaps the process
        raise ServerDown(self.down_message(), first)

    def _fail(self, error: str, during: str) -> None:
        self.status, self.error, self.failed_during = "failed", self.redact(error), during

    def down_message(self) -> str:
        what = "stopped" if self.failed_during == "crash" else "failed to start"
        message = f"MCP server {self.name!r} {what}: {self.error or self.status}"
        tail = self.stderr_tail()
        return f"{message}\nstderr (last lines):\n{tail}" if tail else message

    async def close(self) -> None:
        if self.status in ("connected", "connecting"):
            self.status = "closed"  # first: an error while shutting down is no crash
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            if self.session is None:  # still starting (timeout, failure): stop waiting for it
                self._task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        self.session = None
        if self._errlog is not None:
            self._tail, errlog = self.stderr_tail(), self._errlog
            self._errlog = None
            errlog.close()


async def list_tools(session: Any) -> list[Any]:
    """Every tool of the server, following pagination cursors."""
    from mcp_types import PaginatedRequestParams

    tools: list[Any] = []
    cursor = None
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def describe(error: BaseException) -> str:
    """One line for an error, unwrapping the SDK's exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename:
        text = f"{error.strerror}: {error.filename}"
    return text.splitlines()[0] if text else type(error).__name__


class Hub:
    """All configured servers of this process, connected on one background loop."""

    def __init__(self, config: McpConfig) -> None:
        self.config = config
        self.connections = [Connection(server) for server in config.servers]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> Hub:
        """Connect every server (together); blocks until each is connected or failed."""
        if self._loop is None and self.connections:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="lh-mcp", daemon=True
            )
            self._thread.start()
            opening = [c.open(timeout_s) for c in self.connections]
            self._submit(_gather(opening)).result()
        return self

    def _submit(self, coroutine: Any) -> Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def call(self, server: str, tool: str, arguments: dict[str, Any], timeout_s: float):
        """Call from any event loop; cancelling the caller cancels the call."""
        connection = next(c for c in self.connections if c.name == server)
        if self._loop is None:
            raise ServerDown(connection.down_message())
        return await asyncio.wrap_future(self._submit(connection.call(tool, arguments, timeout_s)))

    def close(self) -> None:
        """Close every connection (stdio servers are stopped) and the background loop."""
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        with contextlib.suppress(Exception):
            closing = [c.close() for c in self.connections]
            asyncio.run_coroutine_threadsafe(_gather(closing), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if not loop.is_running():
            loop.close()


async def _gather(coroutines: list[Any]) -> None:
    await asyncio.gather(*coroutines, return_exceptions=True)
