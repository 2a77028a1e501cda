"""Crash-proof resume: SIGKILL the real `lh` at each crash point, resume, check the history."""

from __future__ import annotations

import json
import signal

import pytest

from leharness.testing import Call, ScriptedServer, Text, ToolCalls, crash
from leharness.testing.crash import sweep

from .e2e_helpers import event_types, lh_env, query, run_lh


@pytest.mark.parametrize(
    "point",
    [pytest.param(point, id=point.name.replace(" ", "-")) for point in crash.POINTS],
)
def test_a_session_killed_at_this_point_resumes_cleanly(point, tmp_path):
    outcome = crash.run_point(point, tmp_path)
    assert outcome.problems == []


def test_the_checks_catch_a_tool_call_without_exactly_one_result():
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    unanswered = {"messages": [{"role": "assistant", "tool_calls": [call]}]}
    twice = {
        "messages": [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "a"},
            {"role": "tool", "tool_call_id": "c1", "content": "b"},
            {"role": "tool", "tool_call_id": "c9", "content": "stray"},
        ]
    }
    problems = crash.check_pairing([unanswered, twice])
    assert problems == [
        "request 1 after resume: call c1 has 0 results",
        "request 2 after resume: call c1 has 2 results",
        "request 2 after resume: result for unknown call c9",
    ]


def test_the_checks_catch_an_event_the_killed_run_printed_but_the_log_lacks(tmp_path):
    with ScriptedServer([Text("hello")]) as server:
        env = lh_env(tmp_path / "home", server.base_url)
        done = run_lh("--json", "hi", env=env)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    session_id = events[0]["session_id"]
    ghost = {**events[1], "id": "01GHOST"}
    path = tmp_path / "home" / "sessions.db"
    point = crash.POINTS[0]
    assert crash.check_history(path, session_id, events, [], point) == []
    problems = crash.check_history(path, session_id, [events[0], ghost], [], point)
    assert "events printed by the killed run are not the stored log's start" in problems


def test_a_malformed_kill_spec_is_a_clear_error(isolated_home):
    with ScriptedServer([]) as server:
        env = lh_env(isolated_home, server.base_url, LEHARNESS_TEST_KILL_AT="tool.started:x")
        done = run_lh("hi", env=env)
    assert done.returncode == 2
    assert "LEHARNESS_TEST_KILL_AT must look like" in done.stderr


def test_without_the_test_package_the_kill_variable_is_refused(monkeypatch):
    """An installed lh has no leharness.testing.crash (the wheel leaves it out): the
    variable is refused in one line instead of killing anything; unset, nothing is wrapped."""
    import sys

    from leharness.cli.errors import UserError
    from leharness.cli.session import kill_switch
    from leharness.loop.channel import NullChannel

    channel = NullChannel()
    monkeypatch.delenv("LEHARNESS_TEST_KILL_AT", raising=False)
    assert kill_switch(channel) is channel
    monkeypatch.setenv("LEHARNESS_TEST_KILL_AT", "tool.started")
    assert type(kill_switch(channel)).__name__ == "KillSwitch"
    monkeypatch.setitem(sys.modules, "leharness.testing.crash", None)
    with pytest.raises(UserError, match="LEHARNESS_TEST_KILL_AT is for leharness's own tests"):
        kill_switch(channel)


def test_a_short_random_kill_sweep_holds_every_invariant(tmp_path):
    result = sweep.run_sweep(2, seed=7, workdir=tmp_path)
    assert all(kill.problems == {} for kill in result.kills), result.kills


def test_the_sweep_checks_catch_a_user_message_between_a_call_and_its_result():
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    body = {
        "messages": [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "user", "content": "go on"},
            {"role": "tool", "tool_call_id": "c1", "content": "interrupted"},
        ]
    }
    problems = sweep.check_requests([body])
    assert len(problems) == 2 and all(p.startswith("request 1: messages.") for p in problems)
    assert "did not have response messages: c1" in problems[0]
    assert "must be a response to a preceeding message with 'tool_calls'" in problems[1]


def test_the_sweep_checks_accept_a_file_killed_before_its_schema(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "sessions.db").close()  # lh died while creating it
    assert sweep.check_database(tmp_path / "sessions.db", None, [], []) == {}


def test_resume_after_a_kill_inside_a_tool_call_answers_the_call_before_the_new_prompt(tmp_path):
    """SIGKILL while a tool call runs, then `lh -c "go on"`: the request is user,
    assistant(tool_calls), tool, user (OpenAI refuses a user message in between)."""
    home = tmp_path / "home"
    bash = Call("bash", {"command": "sleep 2", "inline_ms": 60_000})
    with ScriptedServer([ToolCalls(bash), Text("resumed")]) as server:
        env = lh_env(home, server.base_url)
        killed = run_lh("--json", "start", env={**env, "LEHARNESS_TEST_KILL_AT": "tool.started"})
        assert killed.returncode == -signal.SIGKILL
        resumed = run_lh("-c", "go on", env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert server.refused == []
        roles = [(m["role"], m.get("tool_call_id")) for m in server.requests[-1].messages]
    assert roles == [
        ("system", None), ("user", None), ("assistant", None), ("tool", "call_1"), ("user", None)
    ]  # fmt: skip
    types = event_types(home)
    assert types[types.index("tool.started") :][:3] == [
        "tool.started", "tool.failed", "invocation.received"
    ]  # fmt: skip
    (error,) = query(
        home, "SELECT json_extract(data, '$.kind') FROM events WHERE type = 'tool.failed'"
    )
    assert error == ("interrupted",)
