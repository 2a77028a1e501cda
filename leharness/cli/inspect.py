"""`lh inspect`: serve sessions.db with Datasette on 127.0.0.1 and open it.

The port is bound here before the server starts, so a busy port is a
one-line error and the browser never races the server. Every prompt and tool
output is in that file, so another address is only served when `--host` asks
for it, with a warning; requests for another site's name are refused (DNS
rebinding), and every request needs the per-launch token of the printed URL,
so another user of the machine cannot read it either (inspector/guard.py).
"""

from __future__ import annotations

import errno
from contextlib import closing
from typing import TYPE_CHECKING

import click

from .completion import session_ids
from .errors import UserError

if TYPE_CHECKING:
    import socket


@click.command("inspect")
@click.argument("session", required=False, shell_complete=session_ids)
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    envvar="LEHARNESS_INSPECT_PORT",
    help="Port on 127.0.0.1 (0: any free one)  [env LEHARNESS_INSPECT_PORT]",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback exposes every session (warned).",
)
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
def inspect_command(session: str | None, port: int, host: str, no_open: bool) -> None:
    """Browse sessions.db in Datasette; with SESSION, open that session's page.

    The URL carries a token made for this launch (or LEHARNESS_INSPECT_TOKEN); a
    request without it is refused."""
    from leharness import projections, store

    with closing(store.open_existing()) as conn:  # migrate it if an older lh made it
        session_id = projections.resolve_session_id(conn, session) if session else None
    from leharness.inspector.app import make_datasette

    datasette = make_datasette(store.db_path(), allowed_hosts=(host,))
    if not is_loopback(host):
        click.echo(
            f"warning: serving on {host}: anyone who can reach it reads every session's "
            "prompts and tool outputs (there is no login)",
            err=True,
        )
    token = launch_token()
    sock = bind(port, host)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    port = sock.getsockname()[1]
    url = f"http://{shown}:{port}/"
    if session_id:
        url += f"{store.db_path().stem}/-/session/{session_id}"
    url += f"?token={token}"
    click.echo(f"Inspecting {store.db_path()} at {url}  (Ctrl-C to stop)")
    if not no_open:
        import threading
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    serve(datasette, sock, token)


def launch_token() -> str:
    """LEHARNESS_INSPECT_TOKEN (for the REPL's /inspect, or a script), else a new one.
    An environment variable, not an option: other users can read a command line."""
    import os
    import re
    import secrets

    given = os.environ.get("LEHARNESS_INSPECT_TOKEN", "").strip()
    if given and not re.fullmatch(r"[A-Za-z0-9_-]+", given):
        raise UserError("LEHARNESS_INSPECT_TOKEN must be ASCII letters, digits, - or _")
    return given or secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: not known to stay on this machine
        return False


def bind(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on host:port; connections queue until the server runs."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is in use: pick another with --port") from None
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    except socket.gaierror as error:
        sock.close()
        raise UserError(f"cannot listen on {host}: {error.strerror}") from None
    sock.listen(128)
    return sock


def serve(datasette, sock: socket.socket, token: str) -> None:
    """Run Datasette's ASGI app, behind the token guard, with uvicorn on `sock` until
    Ctrl-C or SIGTERM."""
    import asyncio

    import uvicorn

    from leharness.inspector.guard import TokenGuard

    asyncio.run(datasette.invoke_startup())
    app = TokenGuard(datasette.app(), token, sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
