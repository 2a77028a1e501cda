"""End to end: the real `lh` process, the real openai client, a scripted server."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from leharness.testing import Call, Cut, HttpError, ScriptedServer, Slow, Text, ToolCalls

from .e2e_helpers import LH, TEST_KEY, event_types, lh_env, query, run_lh
from .util import ONE_TOOL_ROUND_TRIP

ROUND_TRIP = ONE_TOOL_ROUND_TRIP


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


def test_echo_tool_round_trip(server, isolated_home, tmp_path):
    server.push(ToolCalls(Call("bash", {"command": "echo hi"})), Text("The command printed hi."))
    done = run_lh("say hi", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The command printed hi."
    assert "→ bash: echo hi" in done.stderr and "lh --session" in done.stderr
    assert event_types(isolated_home) == ROUND_TRIP
    second = server.requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[1]["content"] == "say hi"
    assert second[3]["content"] == "hi\n[exit: 0]"
    assert server.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert server.requests[0].body["stream"] is True
    assert TEST_KEY.encode() not in (isolated_home / "sessions.db").read_bytes()


def test_resume_sends_the_first_turn_and_continue_picks_the_latest(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    server.push(Text("first answer"))
    assert run_lh("first question", env=env).returncode == 0
    (session_id,) = query(isolated_home, "SELECT id FROM sessions")[0]
    server.push(Text("second answer"))
    assert run_lh("--session", session_id[:10], "second question", env=env).returncode == 0
    contents = [m["content"] for m in server.requests[1].messages[1:]]
    assert contents == ["first question", "first answer", "second question"]
    server.push(Text("third answer"))
    assert run_lh("-c", "third question", env=env).returncode == 0
    assert len(server.requests[2].messages) == 6
    assert query(isolated_home, "SELECT count(*) FROM sessions") == [(1,)]


def test_json_mode_prints_every_event_as_a_line(server, isolated_home):
    server.push(ToolCalls(Call("bash", {"command": "echo hi"})), Text("done"))
    done = run_lh("--json", "go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["type"] for line in lines] == ROUND_TRIP
    assert lines[-1]["data"] == {"reason": "no_tool_calls", "text": "done"}


def test_retry_then_success_records_the_attempts(server, isolated_home):
    server.push(
        HttpError(429, headers={"Retry-After": "0"}), HttpError(500), Cut(Text("x" * 80), 3)
    )
    server.push(Text("finally"))
    done = run_lh("go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    # The cut stream's partial text was already on screen; the stored answer is the retry's.
    assert done.stdout.strip().endswith("finally")
    assert query(
        isolated_home,
        "SELECT text FROM (SELECT json_extract(data, '$.text') AS text "
        "FROM events WHERE type = 'model.completed')",
    ) == [("finally",)]
    assert "retrying" in done.stderr
    attempts = query(
        isolated_home,
        "SELECT json_extract(data, '$.attempts') FROM events WHERE type = 'model.completed'",
    )
    assert attempts == [(4,)]


def test_model_failure_after_retries(server, isolated_home):
    server.push(*[HttpError(500, "upstream broke")] * 3)
    done = run_lh("go", env=lh_env(isolated_home, server.base_url, LEHARNESS_RETRIES="2"))
    assert done.returncode == 1
    assert event_types(isolated_home)[-2:] == ["model.failed", "agent.finished"]
    failed = query(isolated_home, "SELECT data FROM events WHERE type = 'model.failed'")[0][0]
    assert json.loads(failed)["attempts"] == 3 and "upstream broke" in failed
    assert TEST_KEY not in failed


def test_a_401_is_one_clear_line_and_no_retry(server, isolated_home):
    server.push(HttpError(401, "Incorrect API key provided"))
    done = run_lh("go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 2
    assert "rejected the API key (401): check OPENAI_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(server.requests) == 1


def test_missing_key_says_how_to_fix_it(isolated_home):
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1")
    del env["OPENAI_API_KEY"]
    done = run_lh("--provider", "openai", "go", env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "Error: OPENAI_API_KEY is not set: export OPENAI_API_KEY=sk-... "
        "or use a local model with --provider ollama"
    )


def test_unreachable_ollama_says_how_to_fix_it(isolated_home):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = lh_env(
        isolated_home,
        "unused",
        LEHARNESS_OLLAMA_BASE_URL=f"http://127.0.0.1:{port}/v1",
        LEHARNESS_RETRIES="1",
    )
    del env["OPENAI_API_KEY"]
    done = run_lh("go", env=env)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: cannot reach ollama at http://127.0.0.1:{port}/v1")
    assert "ollama serve" in last and "LEHARNESS_OLLAMA_BASE_URL" in last
    assert "Traceback" not in done.stderr


def test_malformed_arguments_and_unknown_tools_get_one_more_turn(server, isolated_home):
    server.push(ToolCalls(Call("bash", "{not json", id="a"), Call("teleport", {}, id="b")))
    server.push(Text("sorry"))
    done = run_lh("go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0
    tool_messages = [m for m in server.requests[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["a", "b"]
    assert "not valid JSON" in tool_messages[0]["content"]
    assert "unknown tool 'teleport'" in tool_messages[1]["content"]
    assert event_types(isolated_home).count("tool.failed") == 2


def test_think_reasoning_is_stored_but_not_sent_back(server, isolated_home):
    server.push(Text("Four.", reasoning="2+2 is 4"), Text("Yes."))
    env = lh_env(isolated_home, server.base_url)
    done = run_lh("what is 2+2", env=env)
    assert done.stdout.strip() == "Four."
    stored = query(
        isolated_home, "SELECT content, reasoning FROM messages WHERE role = 'assistant'"
    )
    assert stored == [("Four.", "2+2 is 4")]
    run_lh("-c", "sure?", env=env)
    assert "2+2 is 4" not in json.dumps(server.requests[1].messages)


def test_max_steps(isolated_home):
    def always_a_tool(_body):
        return ToolCalls(Call("bash", {"command": "echo again"}))

    with ScriptedServer(responder=always_a_tool) as server:
        env = lh_env(isolated_home, server.base_url, LEHARNESS_MAX_STEPS="3")
        done = run_lh("loop forever", env=env)
    assert done.returncode == 1
    assert "stopped after 3 steps" in done.stderr
    assert event_types(isolated_home).count("step.started") == 3
    reason = query(isolated_home, "SELECT finish_reason FROM sessions")
    assert reason == [("max_steps",)]


def test_ctrl_c_during_the_stream_keeps_the_partial_text(server, isolated_home):
    server.push(Slow(Text("word " * 200), delay_s=0.02), Text("resumed fine"))
    env = lh_env(isolated_home, server.base_url)
    process = subprocess.Popen(
        [LH, "tell me a story"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, stdin=subprocess.DEVNULL,  # an open pipe would be read as piped input
    )  # fmt: skip
    assert process.stdout.read(10)  # the stream has started
    process.send_signal(signal.SIGINT)
    _out, _err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert event_types(isolated_home)[-2:] == ["model.cancelled", "agent.finished"]
    partial = json.loads(
        query(isolated_home, "SELECT data FROM events WHERE type = 'model.cancelled'")[0][0]
    )
    assert partial["text"].startswith("word word")
    done = run_lh("-c", "go on", env=env)
    assert done.returncode == 0
    assert {"role": "assistant", "content": partial["text"]} in server.requests[1].messages


def test_demo_runs_offline_and_says_how_to_inspect(isolated_home):
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1")
    del env["OPENAI_API_KEY"]
    started = time.monotonic()
    done = run_lh("demo", env=env)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert (isolated_home / "demo" / "hello.py").exists()
    assert "Hello from leharness" in done.stdout or "Hello from leharness" in done.stderr
    assert "lh show" in done.stderr and "datasette" in done.stderr
    assert "lh inspect" in done.stderr
    types = event_types(isolated_home)
    assert types[-1] == "agent.finished" and types.count("tool.completed") == 3
    shown = run_lh("show", query(isolated_home, "SELECT id FROM sessions")[0][0], env=env)
    assert shown.returncode == 0
    assert "write_file: hello.py" in shown.stdout and "[exit: 0]" in shown.stdout


def test_help_does_not_import_openai_or_datasette():
    code = (
        "import sys\nfrom leharness.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('openai', 'datasette', 'rich', 'pydantic') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_one_shot_waits_for_its_background_task_and_lets_the_model_react(server, isolated_home):
    server.push(
        ToolCalls(Call("bash", {"command": "sleep 1; echo bg-done", "inline_ms": 0})),
        Text("Started it in the background."),
        Text("The background task printed bg-done."),
    )
    done = run_lh("run it in the background", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert "The background task printed bg-done." in done.stdout
    notice = server.requests[2].messages[-1]
    assert notice["role"] == "user" and notice["content"].startswith("[background task task_")
    assert "bg-done" in notice["content"]
    types = event_types(isolated_home)
    assert types.count("task.completed") == 1 and types.count("task.delivered") == 1


def test_a_task_orphaned_by_a_killed_lh_is_recovered_on_resume(server, isolated_home):
    server.push(
        ToolCalls(Call("bash", {"command": "echo partial-out; sleep 60", "inline_ms": 0})),
        Text("Started; waiting for it."),
        Text("Resumed after the crash."),
    )
    env = lh_env(isolated_home, server.base_url)
    process = subprocess.Popen(
        [LH, "start a long job"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    rows: list = []
    while time.monotonic() < deadline:
        if (isolated_home / "sessions.db").exists():
            try:
                rows = query(isolated_home, "SELECT task_id, pid FROM tasks")
            except sqlite3.OperationalError:  # the file exists before its schema does
                time.sleep(0.05)
                continue
            logs = list((isolated_home / "artifacts").glob("*/*.log"))
            if (
                rows
                and logs
                and b"partial-out" in logs[0].read_bytes()
                and len(server.requests) >= 2
            ):
                break
        time.sleep(0.05)
    assert rows, "the background task never started"
    process.kill()  # SIGKILL: no chance to clean up
    process.wait(timeout=10)
    task_id, pid = rows[0]
    assert _group_alive(pid)  # the orphaned command outlived lh
    done = run_lh("-c", "what happened?", env=env)
    assert done.returncode == 0, done.stderr
    cancelled = query(isolated_home, "SELECT data FROM events WHERE type = 'task.cancelled'")
    data = json.loads(cancelled[0][0])
    assert data["task_id"] == task_id and data["reason"] == "process_exited"
    assert "partial-out" in data["output"]
    deadline = time.monotonic() + 5
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(pid)
    notice = [m for m in server.requests[-1].messages if m["role"] == "user"]
    assert any("process_exited" in m["content"] for m in notice)


def _group_alive(pgid: int) -> bool:
    import os

    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    from pathlib import Path

    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
