"""`lh inspect` listens on loopback only, unless --host says otherwise, and then warns:
checked on the socket the kernel reports (/proc/net/tcp), not just on the flag. It
answers only requests for its own address (no DNS rebinding) that carry the launch's
token; plain `datasette sessions.db` gets the Host check from the plugin."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from leharness import store
from leharness.inspector.guard import host_allowed

from .e2e_helpers import LH, lh_env

PROC_TCP = Path("/proc/net/tcp")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket LISTENs on for `port`, read from /proc/net/tcp."""
    found = set()
    for line in PROC_TCP.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


TOKEN = "test-token-0123456789abcdef"


def serve(home: Path, *args: str, command: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    """Start `lh inspect` (with a known LEHARNESS_INSPECT_TOKEN) or `command` on a free
    port, once its database exists, and wait until it answers."""
    store.open_store(home / "sessions.db").close()
    port = free_port()
    argv = [*command, "--port", str(port)] if command else [LH, "inspect", "--no-open"]
    process = subprocess.Popen(
        [*argv, *([] if command else ["--port", str(port)]), *args],
        env=lh_env(home, "http://127.0.0.1:9/v1", LEHARNESS_INSPECT_TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(f"http://127.0.0.1:{port}/?token={TOKEN}")[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"the inspector did not start: {process.communicate()}")


def get(url: str, **headers: str) -> tuple[int, str, Any]:
    """(status, body, headers) of a GET, without following redirects."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def stop(process: subprocess.Popen) -> tuple[str, str]:
    process.terminate()
    try:
        return process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


@pytest.mark.skipif(not PROC_TCP.exists(), reason="needs /proc/net/tcp")
@pytest.mark.parametrize(
    ("args", "address", "warned"),
    [((), "127.0.0.1", False), (("--host", "0.0.0.0"), "0.0.0.0", True)],
)
def test_loopback_by_default_and_a_warning_for_any_other_host(isolated_home, args, address, warned):
    process, port = serve(isolated_home, *args)
    try:
        assert listening_addresses(port) == {address}
    finally:
        out, err = stop(process)
    assert f"http://127.0.0.1:{port}/?token={TOKEN}" in out
    assert ("warning: serving on 0.0.0.0" in err) is warned
    assert "no login" in err if warned else err.strip() == ""


def test_a_host_that_cannot_be_resolved_is_one_line(isolated_home, db):
    done = subprocess.run(
        [LH, "inspect", "--no-open", "--host", "no-such-host.invalid"],
        env=lh_env(isolated_home, "http://127.0.0.1:9/v1"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "Error: cannot listen on no-such-host.invalid" in done.stderr
    assert "Traceback" not in done.stderr


EVENTS = "/sessions/events.json"


def test_lh_inspect_refuses_other_hosts_and_requests_without_its_token(isolated_home):
    process, port = serve(isolated_home)
    base = f"http://127.0.0.1:{port}"
    try:
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends it.
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io"):
            status, body, _ = get(f"{base}{EVENTS}?token={TOKEN}", Host=host)
            assert status == 403 and "DNS rebinding" in body, host
            assert '"rows"' not in body
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert get(f"{base}{EVENTS}?token={TOKEN}", Host=host)[0] == 200, host

        # Another local user can connect too, but has no token.
        for url, headers in (
            (f"{base}{EVENTS}", {}),
            (f"{base}{EVENTS}?token=wrong", {}),
            (f"{base}{EVENTS}", {"Cookie": f"lh_inspect_{port}=wrong"}),
            (f"{base}{EVENTS}", {"Authorization": "Bearer wrong"}),
        ):
            status, body, _ = get(url, **headers)
            assert status == 403 and "needs its token" in body and '"rows"' not in body

        # The printed URL's token sets a cookie for the rest of the visit; scripts may
        # send it as a bearer token.
        status, _, headers = get(f"{base}/?token={TOKEN}")
        cookie = headers["Set-Cookie"]
        assert status == 200 and cookie.startswith(f"lh_inspect_{port}={TOKEN};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert get(f"{base}{EVENTS}", Cookie=cookie.split(";")[0])[0] == 200
        assert get(f"{base}{EVENTS}", Authorization=f"Bearer {TOKEN}")[0] == 200
        # The token is not passed on to Datasette, so its pages do not repeat it in links.
        assert TOKEN not in get(f"{base}/sessions/events?token={TOKEN}")[1]
    finally:
        stop(process)


def test_every_launch_makes_its_own_token(isolated_home):
    store.open_store(isolated_home / "sessions.db").close()
    tokens = []
    for _ in range(2):
        process = subprocess.Popen(
            [LH, "inspect", "--no-open", "--port", "0"],
            env=lh_env(isolated_home, "http://127.0.0.1:9/v1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        try:
            line = process.stdout.readline()
        finally:
            stop(process)
        tokens.append(line.split("?token=")[1].split()[0])
    assert tokens[0] != tokens[1] and min(len(t) for t in tokens) >= 32


def test_plain_datasette_gets_the_host_check_from_the_plugin(isolated_home):
    datasette = str(Path(LH).with_name("datasette"))
    db = str(isolated_home / "sessions.db")
    process, port = serve(isolated_home, command=[datasette, "serve", db])
    base = f"http://127.0.0.1:{port}"
    try:
        assert get(f"{base}{EVENTS}")[0] == 200  # no token: that is lh inspect's
        status, body, _ = get(f"{base}{EVENTS}", Host=f"evil.example:{port}")
        assert status == 403 and "DNS rebinding" in body
    finally:
        stop(process)


@pytest.mark.parametrize(
    ("host", "server", "allowed"),
    [
        ("localhost:8001", "127.0.0.1", True),
        ("127.0.0.1:8001", "127.0.0.1", True),
        ("[::1]:8001", "::1", True),
        ("127.0.0.2", "127.0.0.1", True),  # loopback
        ("192.168.1.5:8001", "192.168.1.5", True),  # --host 0.0.0.0, reached over the LAN
        ("192.168.1.6:8001", "192.168.1.5", False),
        ("evil.example:8001", "127.0.0.1", False),
        ("localhost.evil.example", "127.0.0.1", False),
        ("[::1", "127.0.0.1", False),
        (None, "127.0.0.1", True),  # HTTP/1.0 without Host: not a browser
    ],
)
def test_host_allowed(host, server, allowed):
    assert host_allowed(host, server) is allowed


def test_a_name_given_with_host_is_allowed():
    assert host_allowed("mybox.lan:8001", "192.168.1.5", ["mybox.lan"])
    assert not host_allowed("other.lan:8001", "192.168.1.5", ["mybox.lan"])
