"""One TCP (and TLS) connection serves a whole `lh` session: each streamed
response is read to its end, so the connection goes back to the pool."""

from __future__ import annotations

import asyncio

import httpx

from leharness.loop.transport import Body
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
