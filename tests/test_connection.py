"""One TCP (and TLS) connection serves a whole `lh` session: each streamed
response is read to its end, so the connection goes back to the pool."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from leharness.loop import transport
from leharness.loop.model import OpenAICompatibleModel, RetryPolicy, StreamSink
from leharness.loop.transport import Body, folder_context, trusted_context
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.testing.tls import self_signed

from .e2e_helpers import event_types, lh_env, run_lh

TURNS = [ToolCalls(Call("bash", {"command": f"echo {n}"})) for n in range(3)] + [Text("done")]


def test_a_four_request_run_opens_one_connection(isolated_home, tmp_path):
    with ScriptedServer(TURNS) as server:
        done = run_lh("echo three times", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == 4
    assert server.connections == 1


def test_https_with_a_certificate_trusted_through_ssl_cert_file(isolated_home, tmp_path):
    cert, key = self_signed(tmp_path)
    with ScriptedServer(TURNS, tls=(str(cert), str(key))) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
        env = lh_env(isolated_home, server.base_url)
        env["SSL_CERT_FILE"] = str(cert)
        done = run_lh("echo three times", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert (len(server.requests), server.connections) == (4, 1)
    assert event_types(isolated_home).count("model.completed") == 4


def test_an_untrusted_certificate_is_a_one_line_error(isolated_home, tmp_path):
    cert, key = self_signed(tmp_path)
    with ScriptedServer([Text("never")], tls=(str(cert), str(key))) as server:
        done = run_lh("hi", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode != 0
    assert "cannot reach" in done.stderr and "Traceback" not in done.stderr
    assert server.requests == []


def test_the_one_shot_path_does_not_import_the_openai_sdk(isolated_home, tmp_path):
    with ScriptedServer([Text("hi")]) as server:
        env = lh_env(isolated_home, server.base_url)
        env["PYTHONPROFILEIMPORTTIME"] = "1"
        done = run_lh("hi", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "httpx" in imported and "httpcore" in imported
    assert not {name for name in imported if name.split(".")[0] == "openai"}


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.sent = 0

    async def __aiter__(self):
        for part in self.parts:
            self.sent += 1
            yield part


def test_body_lines_are_whole_wherever_the_chunks_split_and_drain_reads_the_rest():
    raw = 'data: {"a": "é"}\r\n\r\ndata: [DONE]\n\n'.encode()
    stream = _Chunks([raw[i : i + 1] for i in range(len(raw))] + [b"tail", b"more"])
    body = Body(httpx.Response(200, stream=stream))

    async def read() -> list[str]:
        lines = []
        async for line in body.lines():
            lines.append(line)
            if line == "data: [DONE]":
                break
        await body.drain()
        return lines

    assert asyncio.run(read()) == ['data: {"a": "é"}', "", "data: [DONE]"]
    assert stream.sent == len(raw) + 2  # the bytes after [DONE] were read, not dropped


def test_https_is_verified_against_the_ca_folder_first_which_loads_nothing_up_front(
    monkeypatch,
):
    """The whole bundle cost ~21 ms of CPU at every https start; the hashed folder is read
    one certificate at a time, as a chain needs it. (SSL_CERT_FILE or SSL_CERT_DIR, when
    set, are used as they were.)"""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    folder = folder_context()
    if folder is None:
        pytest.skip("no hashed CA folder on this system: the full store is used at once")
    assert folder.cert_store_stats()["x509"] == 0
    assert trusted_context().cert_store_stats()["x509"] > 0
    assert (folder.verify_mode, folder.check_hostname) == (ssl.CERT_REQUIRED, True)


def hashed_folder(folder: Path, *certificates: Path) -> Path:
    """A CA folder as c_rehash makes one: each certificate under `<subject hash>.0`."""
    folder.mkdir()
    for certificate in certificates:
        done = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(certificate)],
            capture_output=True,
            text=True,
            check=True,
        )
        shutil.copy(certificate, folder / f"{done.stdout.strip()}.0")
    return folder


def ask(server: ScriptedServer) -> str:
    model = OpenAICompatibleModel("openai", "m", server.base_url, "k", RetryPolicy(retries=0))
    messages = [{"role": "user", "content": "hi"}]
    return asyncio.run(model.complete(messages, [], StreamSink())).text


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to name the folder")
def test_a_server_the_ca_folder_vouches_for_needs_no_other_store(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")
    folder = hashed_folder(tmp_path / "cas", other, cert)
    monkeypatch.setattr(
        transport.ssl,
        "get_default_verify_paths",
        lambda: SimpleNamespace(openssl_capath=str(folder)),
    )
    monkeypatch.setattr(transport, "trusted_context", lambda: pytest.fail("full store loaded"))
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer([Text("over the folder")], tls=(str(cert), str(key))) as server:
        assert ask(server) == "over the folder"
    assert (len(server.requests), server.connections) == (1, 1)


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to name the folder")
def test_a_server_the_ca_folder_does_not_vouch_for_is_verified_by_the_full_store(
    tmp_path, monkeypatch
):
    """The folder is part of the full store: where it says no, the full store decides,
    on a second handshake, before anything was sent."""
    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")
    folder = hashed_folder(tmp_path / "cas", other)  # a folder without the server's CA
    monkeypatch.setattr(
        transport.ssl,
        "get_default_verify_paths",
        lambda: SimpleNamespace(openssl_capath=str(folder)),
    )
    full = ssl.create_default_context(cafile=str(cert))  # the bundle holds it
    used: list[ssl.SSLContext] = []
    monkeypatch.setattr(transport, "trusted_context", lambda: used.append(full) or full)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer([Text("over the full store")], tls=(str(cert), str(key))) as server:
        assert ask(server) == "over the full store"
    assert len(server.requests) == 1 and used == [full]
