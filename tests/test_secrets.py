"""Secret values never reach an event, an artifact, a task log or the model."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools.redact import Secret, StreamRedactor, redact, redact_json, secrets

from .e2e_helpers import TEST_KEY, lh_env, run_lh

GH_TOKEN = "ghp_0123456789abcdefXYZ"


def test_which_variables_are_secrets():
    env = {
        "OPENAI_API_KEY": "sk-aaaaaaaaaaaa",
        "GITHUB_TOKEN": "ghp-bbbbbbbbbbbb",
        "AWS_SECRET": "cccccccccccc",
        "SHORT_KEY": "abc",  # under 8 characters: not redacted (too many false hits)
        "HOME": "/home/someone-long",
        "KEYBOARD": "dddddddddddd",
    }
    assert sorted(s.name for s in secrets(env)) == ["AWS_SECRET", "GITHUB_TOKEN", "OPENAI_API_KEY"]
    found = secrets(env)
    text = "key sk-aaaaaaaaaaaa and ghp-bbbbbbbbbbbb, abc, /home/someone-long"
    assert redact(text, found) == (
        "key [redacted $OPENAI_API_KEY] and [redacted $GITHUB_TOKEN], abc, /home/someone-long"
    )


SECRET = Secret("X_TOKEN", b"s3cr3t-value-123")


@given(st.binary(max_size=200), st.binary(max_size=200), st.lists(st.integers(1, 64), min_size=1))
def test_a_secret_split_across_chunks_is_still_redacted(before, after, sizes):
    data = before + SECRET.value + after
    redactor = StreamRedactor([SECRET])
    out, at, index = b"", 0, 0
    while at < len(data):
        size = sizes[index % len(sizes)]
        out += redactor.feed(data[at : at + size])
        at, index = at + size, index + 1
    out += redactor.flush()
    assert SECRET.value not in out
    assert out == (before + SECRET.value + after).replace(SECRET.value, SECRET.marker)


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


def all_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def test_keys_printed_by_bash_never_reach_the_database_artifacts_or_model(server, isolated_home):
    big = "python3 -c \"import os; print(('x' * 50 + os.environ['GITHUB_TOKEN'] + '\\n') * 400)\""
    server.push(
        ToolCalls(
            Call("bash", {"command": "echo key=$OPENAI_API_KEY token=$GITHUB_TOKEN"}, id="a"),
            Call("bash", {"command": big}, id="b"),
            Call("bash", {"command": "sleep 0.5; echo bg $OPENAI_API_KEY", "inline_ms": 0}, id="c"),
        ),
        Text("started"),
        Text("all done"),
    )
    env = lh_env(isolated_home, server.base_url, GITHUB_TOKEN=GH_TOKEN)
    done = run_lh("--json", "show me the keys", env=env, cwd=isolated_home.parent)
    assert done.returncode == 0, done.stderr
    assert TEST_KEY not in done.stdout and GH_TOKEN not in done.stdout
    stored = all_bytes(isolated_home)
    assert list((isolated_home / "artifacts").rglob("*")), "the test should produce artifacts"
    assert TEST_KEY.encode() not in stored and GH_TOKEN.encode() not in stored
    first = json.loads(
        next(line for line in done.stdout.splitlines() if '"tool.completed"' in line)
    )
    assert first["data"]["result"] == (
        "key=[redacted $OPENAI_API_KEY] token=[redacted $GITHUB_TOKEN]\n[exit: 0]"
    )
    assert "bg [redacted $OPENAI_API_KEY]" in done.stdout  # the task's output, redacted
    sent = json.dumps([r.body for r in server.requests])
    assert TEST_KEY not in sent and GH_TOKEN not in sent


def test_read_file_of_a_dotenv_is_redacted(server, isolated_home):
    (isolated_home.parent / ".env").write_text(f"OPENAI_API_KEY={TEST_KEY}\nDEBUG=1\n")
    server.push(ToolCalls(Call("read_file", {"path": ".env"})), Text("ok"))
    done = run_lh("--json", "read .env", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert TEST_KEY.encode() not in all_bytes(isolated_home)
    tool_message = next(m for m in server.requests[1].messages if m["role"] == "tool")
    assert "OPENAI_API_KEY=[redacted $OPENAI_API_KEY]" in tool_message["content"]


def test_a_stream_holds_back_only_what_could_start_a_secret():
    redactor = StreamRedactor([SECRET])
    assert redactor.feed(b"partial-out\n") == b"partial-out\n"  # a live log is not behind
    assert redactor.feed(b"key: s3cr") == b"key: "  # could be the secret: wait and see
    assert redactor.feed(b"3t-value-123 done") == b"[redacted $X_TOKEN] done"
    assert redactor.feed(b" s3") == b" "
    assert redactor.flush() == b"s3"


def test_a_provider_error_that_echoes_the_key_is_redacted(server, isolated_home):
    from leharness.testing import HttpError

    server.push(*[HttpError(500, f"upstream rejected key {TEST_KEY}")] * 2)
    env = lh_env(isolated_home, server.base_url, LEHARNESS_RETRIES="1")
    done = run_lh("--json", "go", env=env)
    assert done.returncode == 1
    assert "upstream rejected key [redacted $OPENAI_API_KEY]" in done.stdout
    assert TEST_KEY not in done.stdout and TEST_KEY.encode() not in all_bytes(isolated_home)
    server.push(*[HttpError(500, f"upstream rejected key {TEST_KEY}")] * 2)
    shown = run_lh("go", env=env)  # the retry and failure lines on stderr too
    assert "retrying" in shown.stderr and TEST_KEY not in shown.stderr + shown.stdout


def test_a_secret_the_model_passes_as_an_argument_is_redacted_before_it_is_recorded(
    server, isolated_home
):
    work = isolated_home.parent
    command = f"echo {TEST_KEY} > out.txt"
    server.push(ToolCalls(Call("bash", {"command": command})), Text("done"))
    done = run_lh("--json", "save the key", env=lh_env(isolated_home, server.base_url), cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "out.txt").read_text() == TEST_KEY + "\n"  # the tool got what was sent
    assert TEST_KEY not in done.stdout and TEST_KEY.encode() not in all_bytes(isolated_home)
    with sqlite3.connect(isolated_home / "sessions.db") as conn:
        (arguments,) = conn.execute("SELECT arguments FROM tool_calls").fetchone()
    assert json.loads(arguments) == {"command": "echo [redacted $OPENAI_API_KEY] > out.txt"}
    assert TEST_KEY not in json.dumps(server.requests[1].body)  # the transcript sent back


def test_redact_json_also_finds_a_secret_json_escaped():
    found = [Secret("ODD_TOKEN", 'pa"ss\\wörd-123'.encode())]
    for arguments in (
        json.dumps({"x": 'pa"ss\\wörd-123'}),
        json.dumps({"x": 'pa"ss\\wörd-123'}, ensure_ascii=False),
    ):
        assert json.loads(redact_json(arguments, found)) == {"x": "[redacted $ODD_TOKEN]"}


def test_a_secret_set_only_in_mcp_json_is_redacted(server, isolated_home):
    import sys

    from .test_mcp import ECHO_SERVER

    token = "mcp-only-token-0123456789"
    entry = {"command": sys.executable, "args": [str(ECHO_SERVER)], "env": {"SERVICE_TOKEN": token}}
    isolated_home.mkdir(exist_ok=True)
    (isolated_home / "mcp.json").write_text(json.dumps({"mcpServers": {"echo": entry}}))
    server.push(
        ToolCalls(Call("bash", {"command": "echo mcp-only-token-0$((1000+234))56789"})),
        Text("done"),
    )
    done = run_lh("--json", "print it", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    stored = b"".join(
        p.read_bytes() for p in isolated_home.rglob("*") if p.is_file() and p.name != "mcp.json"
    )
    assert token not in done.stdout and token.encode() not in stored
    assert "[redacted $SERVICE_TOKEN]" in done.stdout


def test_mcp_json_registers_env_secrets_and_credential_headers_only(tmp_path):
    from leharness.tools import redact as redaction
    from leharness.tools.mcp import load_config

    servers = {
        "local": {"command": "x", "env": {"SVC_TOKEN": "tok-0123456789", "MODE": "production-x"}},
        "remote": {
            "url": "http://127.0.0.1:9/mcp",
            "headers": {"Authorization": "Bearer bear-0123456789", "Accept": "application/json"},
        },
    }
    (tmp_path / "mcp.json").write_text(json.dumps({"mcpServers": servers}))
    saved = dict(redaction._REGISTERED)
    try:
        load_config(tmp_path / "mcp.json")
        text = "tok-0123456789 bear-0123456789 production-x application/json"
        assert redact(text) == (
            "[redacted $SVC_TOKEN] [redacted $Authorization] production-x application/json"
        )
    finally:
        redaction._REGISTERED.clear()
        redaction._REGISTERED.update(saved)
