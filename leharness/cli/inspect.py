"""`lh inspect`: serve sessions.db with Datasette on 127.0.0.1 and open it.

The port is bound here before the server starts, so a busy port is a
one-line error and the browser never races the server.
"""

from __future__ import annotations

import errno
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
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@user_errors
def inspect_command(session: str | None, port: int, no_open: bool) -> None:
    """Browse sessions.db in Datasette; with SESSION, open that session's page."""
    from leharness import projections, store

    with closing(store.open_store()) as conn:  # create and migrate it on first use
        session_id = projections.resolve_session_id(conn, session) if session else None
    from .inspector.app import make_datasette

    datasette = make_datasette(store.db_path())
    sock = bind(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    if session_id:
        url += f"{store.db_path().stem}/-/session/{session_id}"
    click.echo(f"Inspecting {store.db_path()} at {url}  (Ctrl-C to stop)")
    if not no_open:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    serve(datasette, sock)


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1; connections queue until the server runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is in use: pick another with --port") from None
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
    sock.listen(128)
    return sock


def serve(datasette, sock: socket.socket) -> None:
    """Run Datasette's ASGI app with uvicorn on `sock` until Ctrl-C or SIGTERM."""
    import asyncio

    import uvicorn

    asyncio.run(datasette.invoke_startup())
    config = uvicorn.Config(datasette.app(), log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
