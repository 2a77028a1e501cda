"""`lh inspect` listens on loopback only, unless --host says otherwise, and then warns:
checked on the socket the kernel reports (/proc/net/tcp), not just on the flag."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

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


def serve(home: Path, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [LH, "inspect", "--no-open", "--port", str(port), *args],
        env=lh_env(home, "http://127.0.0.1:9/v1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"lh inspect did not start: {process.communicate()}")


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
    assert f"http://127.0.0.1:{port}/" in out
    assert ("warning: serving on 0.0.0.0" in err) is warned
    assert "no login" in err if warned else err.strip() == ""


def test_a_host_that_cannot_be_resolved_is_one_line(isolated_home):
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
