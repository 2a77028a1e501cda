"""HTTP to an OpenAI-compatible Chat Completions endpoint, over httpx directly.

`lh` parses the event stream itself, so the `openai` SDK only ever served as
the transport, and importing it cost ~410 ms of a ~780 ms one-shot run (its
types for Responses, evals and graders, which `lh` never touches). httpx is the
SDK's own transport: the request, its headers and the errors below are the
ones the SDK produced, so retries, messages and exit codes stay the same.

A response is always read to its end before it is closed, so the connection
goes back to the pool: one TCP (and TLS) connection serves a whole session.

An https connection is first verified against the system's hashed CA folder
alone, which OpenSSL reads one certificate at a time as a chain needs it;
loading the whole bundle as well cost ~21 ms of CPU at every start. The folder
is a part of the full trust store, so it can only vouch for less: when it does
not vouch for the server, the handshake fails before anything is sent and the
full store decides, exactly as before.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from leharness import __version__
from leharness.errors import LeharnessError
from leharness.store import jsontext

from .request import encode_body

# httpx's __init__ imports its command-line client (click, rich, pygments:
# ~70 ms of CPU) whenever those are installed, which they are beside lh; a None
# entry makes that import fail, and httpx then stands in a stub `main`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402

OPENAI_URL = "https://api.openai.com/v1"


class TransportError(LeharnessError):
    """No response: the server could not be reached or did not answer in time."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class StatusError(LeharnessError):
    """The server answered with an HTTP error status; `body` is its parsed JSON if any."""

    def __init__(self, response: httpx.Response, body: Any) -> None:
        self.response = response  # its headers carry Retry-After
        status_code = self.status_code = response.status_code
        # As the SDK did: `body` is the inner `error` object when there is one.
        self.body = body.get("error", body) if isinstance(body, dict) else body
        inner = self.body if isinstance(self.body, dict) else {}
        self.code = inner.get("code")
        message = inner.get("message")
        self.message = f"Error code: {status_code}" + (
            f" - {message}" if isinstance(message, str) and message else ""
        )
        super().__init__(self.message)


class ChatTransport:
    """POST /chat/completions with `stream: true`; `stream()` yields the response `Body`."""

    def __init__(self, base_url: str | None, api_key: str, timeout_s: float) -> None:
        # The SDK read OPENAI_BASE_URL itself when no URL was given: keep that.
        url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
        self.url = url.rstrip("/") + "/chat/completions"
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"leharness/{__version__} (python {sys.version.split()[0]})",
            "Authorization": f"Bearer {api_key or 'not-needed'}",
        }
        for header, variable in (
            ("OpenAI-Organization", "OPENAI_ORG_ID"),
            ("OpenAI-Project", "OPENAI_PROJECT_ID"),
        ):
            if os.environ.get(variable):
                headers[header] = os.environ[variable]
        # A plain-http URL never needs certificates: loading the CA bundle
        # cost 22-33 ms of every start. https keeps full verification.
        self._https = self.url.startswith("https:")
        self._headers = headers
        self._timeout = httpx.Timeout(timeout_s)
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._narrow = True  # verifying against the CA folder alone (see the docstring)

    def _verify(self) -> ssl.SSLContext | bool:
        if not self._https:
            return False
        if self._narrow and (context := folder_context()) is not None:
            return context
        self._narrow = False
        return trusted_context()

    def _pooled(self) -> httpx.AsyncClient:
        """The client of the running event loop. Its pooled connection belongs to
        that loop: a later `asyncio.run` (the next invocation in one process)
        gets a client of its own instead of a socket of a closed loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                timeout=self._timeout,
                verify=self._verify(),
            )
            self._loop = loop
        return self._client

    async def _send(self, request: httpx.Request) -> httpx.Response:
        client = self._pooled()
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as error:
            if not (self._narrow and _unverified(error)):
                raise
        # The CA folder alone did not vouch for the server (nothing was sent yet):
        # the full trust store decides, for this connection and every later one.
        self._narrow = False
        await client.aclose()
        self._client = None
        return await self._pooled().send(request, stream=True)

    @asynccontextmanager
    async def stream(self, body: dict[str, Any]) -> AsyncIterator[Body]:
        request = self._pooled().build_request("POST", self.url, content=encode_body(body))
        try:
            response = await self._send(request)
        except httpx.TimeoutException as error:
            raise TransportError(f"request timed out: {error}", timed_out=True) from None
        except httpx.TransportError as error:
            raise TransportError(f"connection error: {error}", timed_out=False) from None
        try:
            if response.status_code >= 400:
                raw = await response.aread()
                raise StatusError(response, _json_or_text(raw))
            streamed = Body(response)
            yield streamed
            await streamed.drain()
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_HASHED = re.compile(r"[0-9a-f]{8}\.\d+")  # OpenSSL's <subject hash>.<n> names


def folder_context() -> ssl.SSLContext | None:
    """Verification against the system's hashed CA folder alone (see the module's
    docstring), where `trusted_context` would use the system's defaults and that folder
    holds hashed names; None elsewhere (then `trusted_context` is used at once)."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return None
    if not sys.platform.startswith("linux"):
        return None
    folder = ssl.get_default_verify_paths().openssl_capath
    try:
        with os.scandir(folder) as entries:
            if not any(_HASHED.fullmatch(entry.name) for entry in entries):
                return None
    except OSError:
        return None
    return ssl.create_default_context(capath=folder)


def _unverified(error: BaseException) -> bool:
    """Whether `error` came from a certificate that failed verification."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def trusted_context() -> ssl.SSLContext:
    """Certificates verified as the SDK verified them: SSL_CERT_FILE or
    SSL_CERT_DIR when set, else the system's trust store (OpenSSL's paths on
    Linux, the OS's own on macOS and Windows through truststore), not the
    certifi bundle httpx would load; certifi only when the system has none."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    if sys.platform in ("darwin", "win32"):
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    paths = ssl.get_default_verify_paths()
    if os.path.isfile(paths.openssl_cafile) or os.path.isdir(paths.openssl_capath):
        return ssl.create_default_context()
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class Body:
    """A streamed response body read as lines (`\n` or `\r\n`, UTF-8).

    The caller may stop at `[DONE]`; `drain()` then reads the rest from the
    same byte iterator (the chunked terminator), so that httpx returns the
    connection to the pool: closing a body not read to its end drops the
    connection, and the next request paid a new TCP (and TLS) handshake.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_bytes()
        self._rest = b""

    async def lines(self) -> AsyncIterator[str]:
        async for chunk in self._chunks:
            *complete, self._rest = (self._rest + chunk).split(b"\n")
            for line in complete:
                yield line.removesuffix(b"\r").decode("utf-8", "replace")
        if self._rest:
            rest, self._rest = self._rest, b""
            yield rest.removesuffix(b"\r").decode("utf-8", "replace")

    async def drain(self) -> None:
        try:
            async for _ in self._chunks:
                pass
        except httpx.HTTPError:
            pass  # the answer is complete; a broken tail only costs the connection


def _json_or_text(raw: bytes) -> Any:
    """The body as the SDK kept it: parsed JSON, else the stripped text (maybe "")."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        return jsontext.loads(text)
    except ValueError:
        return text
