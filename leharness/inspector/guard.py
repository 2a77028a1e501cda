"""Who may read the inspector: two ASGI guards in front of Datasette.

Every prompt and tool output is in sessions.db, and Datasette has no login.
- `HostGuard` (installed by the plugin, so plain `datasette sessions.db` has it
  too) refuses a request whose Host header is not the address the connection
  came in on, a loopback address, `localhost`, or a name configured in the
  plugin's `allowed_hosts`. A web page that uses DNS rebinding to point its own
  name at 127.0.0.1 sends its own name as Host, and is refused.
- `TokenGuard` (added by `lh inspect`) asks for the per-launch token in the URL
  it printed, as Jupyter does, so that another user of the same machine, who can
  connect to 127.0.0.1 too, cannot read it. The first request with
  `?token=…` sets a cookie (HttpOnly, SameSite=Strict), so the links Datasette
  draws work without it; `Authorization: Bearer …` works for scripts.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def host_name(header: str) -> str:
    """`example.com:8001` -> `example.com`; `[::1]:8001` -> `::1`; lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str | None, server: str | None, names: Iterable[str] = ()) -> bool:
    """Whether a request with this Host header may be answered by a server that took
    the connection on address `server`."""
    if header is None:  # HTTP/1.0 without Host: not a browser, nothing to rebind
        return True
    name = host_name(header)
    if name == "localhost" or name in {n.lower() for n in names}:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # a name only this machine's user chose may be used (allowed_hosts)
    if address.is_loopback:
        return True
    try:
        return server is not None and address == ipaddress.ip_address(server)
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Any, status: int, text: str) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """Refuse requests whose Host header names another site (DNS rebinding)."""

    def __init__(self, app: ASGIApp, names: Iterable[str] = ()) -> None:
        self.app = app
        self.names = tuple(names)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            host = _header(scope, b"host")
            server = (scope.get("server") or (None,))[0]
            if not host_allowed(host, server, self.names):
                await _refuse(
                    send,
                    403,
                    f"refused: Host {host!r} is not this server's address. The inspector "
                    "answers only requests for localhost, a loopback address or the address "
                    "it listens on (a guard against DNS rebinding).\n",
                )
                return
        await self.app(scope, receive, send)


class TokenGuard:
    """Answer only requests that carry the launch's token (URL, cookie or header)."""

    def __init__(self, app: ASGIApp, token: str, port: int) -> None:
        self.app = app
        self.token = token
        self.cookie = f"lh_inspect_{port}"  # cookies ignore ports: one name per server

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
        given = [value for key, value in query if key == "token"]
        if given and self._valid(given[-1]):
            rest = urlencode([(k, v) for k, v in query if k != "token"]).encode()
            await self.app({**scope, "query_string": rest}, receive, self._setting_cookie(send))
            return
        if self._valid(self._cookie(scope)) or self._valid(self._bearer(scope)):
            await self.app(scope, receive, send)
            return
        await _refuse(
            send,
            403,
            "refused: this lh inspect needs its token: open the URL it printed "
            "(…?token=…), which sets a cookie for the rest of the visit.\n",
        )

    def _valid(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    def _cookie(self, scope: Scope) -> str | None:
        from http.cookies import CookieError, SimpleCookie

        raw = _header(scope, b"cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(self.cookie)
        return morsel.value if morsel else None

    def _bearer(self, scope: Scope) -> str | None:
        raw = _header(scope, b"authorization") or ""
        scheme, _, value = raw.partition(" ")
        return value.strip() if scheme.lower() in ("bearer", "token") else None

    def _setting_cookie(self, send: Any) -> Any:
        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"set-cookie", cookie)]
                message = {**message, "headers": headers}
            await send(message)

        return sending
