"""`lh inspect`: serve sessions.db with Datasette on 127.0.0.1 and open it.

The port is bound here before the server starts, so a busy port is a
one-line error and the browser never races the server. Only loopback unless
`--host` says otherwise, and then lh warns: the history holds prompts, file
contents and command output, and Datasette asks for no password.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import webbrowser
from contextlib import closing

import click

from .errors import UserError, user_errors


@click.command("inspect")
@click.argument("session", required=False)
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
    help="Address to listen on. Anything but loopback shows your whole history, "
    "unauthenticated, to whoever can reach it (lh warns).",
)
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@user_errors
def inspect_command(session: str | None, port: int, host: str, no_open: bool) -> None:
    """Browse sessions.db in Datasette; with SESSION, open that session's page."""
    from leharness import projections, store

    with closing(store.open_store()) as conn:  # create and migrate it on first use
        session_id = projections.resolve_session_id(conn, session) if session else None
    from .inspector.app import make_datasette

    datasette = make_datasette(store.db_path())
    sock = bind(port, host)
    if not is_loopback(host):
        click.echo(
            f"warning: lh inspect listens on {host}: anyone who can reach it reads every "
            "session (prompts, file contents, command output) with no password",
            err=True,
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{sock.getsockname()[1]}/"
    if session_id:
        url += f"{store.db_path().stem}/-/session/{session_id}"
    click.echo(f"Inspecting {store.db_path()} at {url}  (Ctrl-C to stop)")
    if not no_open:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    serve(datasette, sock)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on `host`; connections queue until the server runs."""
    try:
        family, *_rest, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as error:
        raise UserError(f"cannot listen on {host}: {error.strerror or error}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is in use: pick another with --port") from None
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    return sock


def serve(datasette, sock: socket.socket) -> None:
    """Run Datasette's ASGI app with uvicorn on `sock` until Ctrl-C or SIGTERM."""
    import asyncio

    import uvicorn

    asyncio.run(datasette.invoke_startup())
    config = uvicorn.Config(datasette.app(), log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
