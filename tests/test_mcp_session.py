"""MCP in process: the loop with a real stdio server (cancel, timeout), the REPL's /mcp,
mcp.json parsing, and how raw-schema tools sit in the registry."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys

import pytest
from pydantic import BaseModel

from leharness import store
from leharness.app import mcp as app_mcp
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools import default_registry
from leharness.tools.base import Tool, ToolError, ToolRegistry
from leharness.tools.mcp import Hub, load_config, mcp_tools, offered_name, render_result
from leharness.tools.mcp.config import ConfigFileError, parse_config

from .loop_helpers import RecordingChannel, make_session
from .test_mcp import STDIO_ENTRY, write_config
from .test_repl import drive


@pytest.fixture(autouse=True)
def close_servers():
    yield
    app_mcp.close_all()


@pytest.fixture
def hub(isolated_home):
    write_config(isolated_home, {"echo": {**STDIO_ENTRY, "env": {"GREETING": "${USER_NAME}"}}})
    config = load_config(isolated_home / "mcp.json", {"USER_NAME": "ada"})
    connected = Hub(config).start(30)
    yield connected
    connected.close()


def reply(text: str = "", *calls: tuple[str, dict]) -> ModelCompleted:
    tool_calls = [
        ToolCall(id=f"c{i}", name=name, arguments=json.dumps(args))
        for i, (name, args) in enumerate(calls)
    ]
    return ModelCompleted(text=text, tool_calls=tool_calls)


def failures(session: runner.LoopSession) -> list[tuple[str, str]]:
    return [
        (e.data.name, e.data.kind)
        for e in store.read_events(session.conn, session.session_id)
        if e.type == "tool.failed"
    ]


def results(session: runner.LoopSession) -> list[str]:
    return [
        e.data.result
        for e in store.read_events(session.conn, session.session_id)
        if e.type == "tool.completed"
    ]


def test_cancel_during_an_mcp_call_keeps_the_server(hub):
    holder = {}

    def cancel_on_tool_start(event):
        if event is not None and event.type == "tool.started":
            asyncio.get_running_loop().call_later(0.3, holder["task"].cancel)

    tools = default_registry().extended(mcp_tools(hub))
    model = RecordedModel([reply("", ("echo__sleep", {"seconds": 30}))])
    session = make_session(model, tools=tools, channel=RecordingChannel(cancel_on_tool_start))

    async def main():
        holder["task"] = asyncio.ensure_future(runner.run_invocation(session, "go"))
        return await holder["task"]

    assert asyncio.run(main()).reason == "cancelled"
    assert failures(session) == [("echo__sleep", "interrupted")]
    session.model = RecordedModel([reply("", ("echo__env", {"name": "GREETING"})), reply("ok")])
    asyncio.run(runner.run_invocation(session, "again"))  # another event loop, same server
    assert results(session) == ["ada"]  # env from mcp.json, ${USER_NAME} expanded
    assert hub.connections[0].status == "connected"


def test_a_call_past_its_timeout_fails_and_the_server_stays(hub, monkeypatch):
    monkeypatch.setenv("LEHARNESS_MCP_CALL_TIMEOUT_S", "0.5")
    tools = default_registry().extended(mcp_tools(hub))
    first = reply("", ("echo__sleep", {"seconds": 20}))
    second = reply("", ("echo__echo", {"text": "after"}))
    session = make_session(RecordedModel([first, second, reply("ok")]), tools=tools)
    assert asyncio.run(runner.run_invocation(session, "go")).reason == "no_tool_calls"
    assert failures(session) == [("echo__sleep", "timeout")]
    assert results(session) == ["after"]


def test_repl_mcp_command_and_new_sessions_record_the_servers(isolated_home, monkeypatch):
    write_config(isolated_home, {"echo": STDIO_ENTRY, "bad": {"command": ""}})
    steps = [ToolCalls(Call("echo__echo", {"text": "from the repl"})), Text("done"), Text("two")]
    with ScriptedServer(steps) as server:
        repl, screen = drive(["first", "/mcp", "/new", "second", "/exit"], server, monkeypatch)
    assert "echo  stdio  connected\n  echo__echo\n" in screen
    assert "bad  -  invalid\n  command: must not be empty" in screen
    assert "⏺ echo__echo: from the repl" in screen
    conn = repl.active.loop.conn
    per_session = {}
    for session_id, kind in conn.execute(
        "SELECT session_id, type FROM events WHERE type LIKE 'mcp.%' ORDER BY seq"
    ):
        per_session.setdefault(session_id, []).append(kind)
    assert list(per_session.values()) == [["mcp.failed", "mcp.connected"]] * 2


def test_config_parsing_keeps_good_entries_and_names_bad_ones():
    text = json.dumps(
        {
            "mcpServers": {
                "local": {"command": "srv", "args": ["--root", "${ROOT:-/tmp}"], "env": {"A": "1"}},
                "web": {"url": "https://example.com/mcp", "headers": {"X-Key": "${KEY}"}},
                "typed": {"type": "streamable-http", "url": "http://127.0.0.1:1/mcp"},
                "off": {"command": "srv", "disabled": True},
                "bad name": {"command": "srv"},
                "list": ["not", "an", "object"],
                "nourl": {"type": "http"},
                "unset": {"command": "${NOPE}"},
            }
        }
    )
    config = parse_config(text, "mcp.json", {"KEY": "k-123"})
    servers = {s.name: s for s in config.servers}
    assert set(servers) == {"local", "web", "typed"}
    assert servers["local"].args == ["--root", "/tmp"] and servers["local"].env == {"A": "1"}
    assert servers["web"].transport == "http" and servers["web"].headers == {"X-Key": "k-123"}
    assert servers["typed"].transport == "http"
    problems = {p.server: p.error for p in config.problems}
    assert set(problems) == {"bad name", "list", "nourl", "unset"}
    assert problems["nourl"] == "url: Field required"
    assert problems["unset"] == "environment variable NOPE is not set (used as ${NOPE})"
    for broken in ("[1]", '{"mcpServers": []}', "{nope"):
        with pytest.raises(ConfigFileError):
            parse_config(broken, "mcp.json", {})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # json.loads raised RecursionError, which stopped lh with a traceback
        ('{"mcpServers": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        # lone surrogates reached the terminal and the events: UnicodeEncodeError
        ('{"mcpServers": {"x\\ud800": {"command": "srv"}}}', 'holds "x\\ud800"'),
        ('{"mcpServers": {"x": {"command": "srv", "args": ["\\udfff"]}}}', 'holds "\\udfff"'),
    ],
)
def test_a_config_nested_too_deep_or_with_lone_surrogates_is_a_config_error(text, said):
    with pytest.raises(ConfigFileError, match=re.escape(said)):
        parse_config(text, "mcp.json", {})


def test_missing_config_is_no_servers(tmp_path):
    config = load_config(tmp_path / "mcp.json")
    assert config.servers == [] and config.problems == []


class Args(BaseModel):
    """Typed."""

    n: int


async def _echo(args, ctx) -> str:
    return repr(args)


def test_raw_schema_tools_pass_schema_and_arguments_through_and_can_be_withdrawn():
    schema = {"type": "object", "title": "kept", "properties": {"n": {"type": "integer"}}}
    live = {"ok": True}
    raw = Tool("srv__t", None, _echo, schema=schema, about="Raw.", available=lambda: live["ok"])
    registry = ToolRegistry([Tool("typed", Args, _echo), raw])
    spec = registry.specs()[1]["function"]
    assert spec == {"name": "srv__t", "description": "Raw.", "parameters": schema}
    assert spec["parameters"] is schema
    _tool, arguments = registry.parse("srv__t", '{"n": "not an int", "extra": [1.50]}')
    assert arguments == {"n": "not an int", "extra": [1.50]}  # no validation, no coercion
    live["ok"] = False
    assert [s["function"]["name"] for s in registry.specs()] == ["typed"]
    with pytest.raises(ToolError) as withdrawn:
        registry.parse("srv__t", "{}")
    assert withdrawn.value.kind == "withdrawn"
    assert registry.only(["srv__t"]).specs() == []  # children see the withdrawal too


def test_offered_names_and_non_text_results():
    assert offered_name("gh", "repos.list/all") == "gh__repos_list_all"
    assert len(offered_name("s", "x" * 100)) == 64
    from mcp_types import CallToolResult, ImageContent, ResourceLink, TextContent

    result = CallToolResult(
        content=[
            TextContent(type="text", text="look:"),
            ImageContent(type="image", data="aGVsbG8=", mime_type="image/png"),
            ResourceLink(type="resource_link", uri="file:///x.txt", name="x"),
        ]
    )
    assert (
        render_result(result)
        == "look:\n[image: image/png, 5 bytes]\n[resource link: file:///x.txt]"
    )
    structured = CallToolResult(content=[], structured_content={"a": 1})
    assert render_result(structured) == '{"a": 1}'


def test_a_server_that_never_answers_times_out_at_start(isolated_home, monkeypatch):
    hang = "import time; time.sleep(60)"
    write_config(isolated_home, {"mute": {"command": sys.executable, "args": ["-c", hang]}})
    monkeypatch.setenv("LEHARNESS_MCP_TIMEOUT_S", "1")
    hub = app_mcp.current_hub()
    (connection,) = hub.connections
    assert connection.status == "failed"
    assert connection.error == "no answer to initialize within 1 s"
    assert mcp_tools(hub) == []
    screen = io.StringIO()
    print(app_mcp.describe_servers(hub), file=screen)
    assert "mute  stdio  failed" in screen.getvalue()


def test_secrets_in_errors_and_stderr_are_redacted():
    from leharness.tools.mcp.client import Connection
    from leharness.tools.mcp.config import HttpServer, StdioServer

    web = Connection(
        HttpServer(
            name="w", url="http://h/mcp?key=abc12345", headers={"Authorization": "Bearer tok-999"}
        )
    )
    web._fail("401 for http://h/mcp?key=abc12345 with tok-999", "start")
    assert web.error == "401 for http://h/mcp?[redacted] with [redacted]"
    local = Connection(StdioServer(name="s", command="x", env={"TOKEN": "s3cret-value"}))
    assert local.redact("bad token s3cret-value") == "bad token [redacted]"


def test_mcp_list_without_a_config_says_so(isolated_home):
    from click.testing import CliRunner

    from leharness.cli import cli

    result = CliRunner().invoke(cli, ["mcp", "list"])
    assert result.exit_code == 0 and "no MCP servers configured" in result.output
    result = CliRunner().invoke(cli, ["mcp", "list", "--json"])
    assert json.loads(result.output) == []


def test_the_demo_starts_no_mcp_server(isolated_home):
    from click.testing import CliRunner

    from leharness.cli import cli

    write_config(isolated_home, {"nothing": {"command": "/nonexistent/mcp-server"}})
    result = CliRunner().invoke(cli, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    types = [json.loads(line)["type"] for line in result.output.splitlines()]
    assert types[0] == "session.created" and not [t for t in types if t.startswith("mcp.")]
    assert app_mcp._HUBS == {}
