"""Hooks from settings.toml: pre_tool can block a call, every run is a hook.ran event,
a hung hook is killed, bad configuration is a one-line error."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

from leharness import store
from leharness.loop import hooks as loop_hooks
from leharness.store import events as ev
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools.hooks import HookConfigError, parse_hooks

from .e2e_helpers import event_types, lh_env, query, run_lh
from .loop_helpers import make_session

POLICY = """\
import json, sys
event = json.load(sys.stdin)
with open("hook-log.jsonl", "a") as log:
    log.write(json.dumps(event) + "\\n")
if "rm " in event.get("tool_input", {}).get("command", ""):
    print("policy: rm is not allowed here", file=sys.stderr)
    sys.exit(2)
"""

LOGGER = """\
import json, sys
event = json.load(sys.stdin)
with open("hook-log.jsonl", "a") as log:
    log.write(json.dumps(event) + "\\n")
"""


def _write_settings(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text(textwrap.dedent(text))


def test_pre_tool_blocks_a_call_and_every_hook_run_is_an_event(isolated_home, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "policy.py").write_text(POLICY)
    (work / "logger.py").write_text(LOGGER)
    (work / "keep.txt").write_text("precious")
    py = sys.executable
    _write_settings(
        isolated_home,
        f"""
        [[hooks.pre_tool]]
        match = "ba*"
        command = "{py} policy.py"
        timeout_s = 20

        [[hooks.post_tool]]
        match = "bash"
        command = "{py} logger.py"

        [[hooks.invocation_start]]
        command = "{py} logger.py"

        [[hooks.invocation_end]]
        command = "{py} logger.py"
        """,
    )
    with ScriptedServer() as server:
        server.push(
            ToolCalls(Call("bash", {"command": "rm keep.txt"})),
            ToolCalls(Call("bash", {"command": "echo fine"})),
            Text("done"),
        )
        done = run_lh("tidy up", env=lh_env(isolated_home, server.base_url), cwd=work)
        assert done.returncode == 0, done.stderr
        second = server.requests[1].messages
    assert (work / "keep.txt").read_text() == "precious"  # the blocked call never ran
    assert second[-1]["role"] == "tool"
    assert "policy: rm is not allowed here" in second[-1]["content"]
    types = event_types(isolated_home)
    assert types.count("hook.ran") == 5  # start, 2 pre_tool, 1 post_tool (the run call), end
    rows = query(
        isolated_home,
        "SELECT json_extract(data, '$.hook'), json_extract(data, '$.exit_code'), "
        "json_extract(data, '$.blocked'), json_extract(data, '$.stderr_tail') "
        "FROM events WHERE type = 'hook.ran' ORDER BY seq",
    )
    assert [r[0] for r in rows] == [
        "invocation_start",
        "pre_tool",
        "pre_tool",
        "post_tool",
        "invocation_end",
    ]
    assert rows[1][:3] == ("pre_tool", 2, 1)
    assert "rm is not allowed" in rows[1][3]
    failed = query(
        isolated_home,
        "SELECT json_extract(data, '$.kind') FROM events WHERE type = 'tool.failed'",
    )
    assert failed == [("hook_blocked",)]
    logged = [json.loads(line) for line in (work / "hook-log.jsonl").read_text().splitlines()]
    assert [e["hook"] for e in logged] == [
        "invocation_start",
        "pre_tool",
        "pre_tool",
        "post_tool",
        "invocation_end",
    ]
    assert logged[1]["tool_input"] == {"command": "rm keep.txt"}
    assert logged[3]["event"]["type"] == "tool.completed"
    assert logged[4]["event"]["type"] == "agent.finished"


def test_a_hung_hook_is_killed_after_its_timeout(isolated_home, tmp_path):
    _write_settings(
        isolated_home,
        """
        [[hooks.pre_tool]]
        command = "sleep 30"
        timeout_s = 0.5
        """,
    )
    with ScriptedServer() as server:
        server.push(ToolCalls(Call("bash", {"command": "echo ran"})), Text("ok"))
        done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert server.requests[1].messages[-1]["content"].startswith("ran")
    (row,) = query(
        isolated_home,
        "SELECT json_extract(data, '$.exit_code'), json_extract(data, '$.timed_out'), "
        "json_extract(data, '$.duration_ms') FROM events WHERE type = 'hook.ran'",
    )
    assert row[0] is None and row[1] == 1 and row[2] < 10_000


def test_compaction_hooks_run_after_a_compaction(isolated_home, tmp_path):
    from leharness.tools.hooks import Hooks

    class NoModel:
        provider, model = "test", "m"

    session = make_session(NoModel(), cwd=tmp_path)
    session.hooks = parse_hooks({"compaction": [{"command": "cat > compaction.json"}]})
    assert isinstance(session.hooks, Hooks) and session.hooks
    session.record(ev.CompactionCompleted(tier="T3", details={}))
    asyncio.run(loop_hooks.run_queued(session))
    payload = json.loads((tmp_path / "compaction.json").read_text())
    assert payload["hook"] == "compaction" and payload["event"]["data"]["tier"] == "T3"
    last = list(store.read_events(session.conn, session.session_id))[-1]
    assert last.type == "hook.ran" and last.data.exit_code == 0
    session.conn.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"before_tool": []}, "unknown hook point"),
        ({"pre_tool": {"command": "x"}}, "[[hooks.pre_tool]]"),
        ({"pre_tool": [{"command": ""}]}, "command must be"),
        ({"pre_tool": [{"command": "x", "timeout_s": 0}]}, "timeout_s"),
        ({"invocation_end": [{"command": "x", "match": "bash"}]}, "tool hooks only"),
        ({"pre_tool": [{"command": "x", "when": 1}]}, "unknown key"),
    ],
)
def test_bad_hook_configuration_is_refused(table, message):
    with pytest.raises(HookConfigError, match=message.replace("[", r"\[")):
        parse_hooks(table)


def test_a_bad_hooks_table_in_settings_is_a_one_line_error(isolated_home):
    _write_settings(isolated_home, '[[hooks.pre_tool]]\nmatch = "bash"\n')
    done = run_lh("hi", env=lh_env(isolated_home, "http://127.0.0.1:9"))
    assert done.returncode == 2
    assert "settings.toml: hooks.pre_tool: command must be a non-empty string" in done.stderr
    assert "Traceback" not in done.stderr
