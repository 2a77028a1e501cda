"""MCP servers end to end: a real SDK server over stdio and streamable HTTP, the real loop.

The server is tests/mcp_servers/echo.py (written with the official SDK). `lh`
runs as a subprocess against the scripted model server, so the tool specs the
model receives, the events and the exit code are all the real ones.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .e2e_helpers import lh_env, query, run_lh

ECHO_SERVER = Path(__file__).parent / "mcp_servers" / "echo.py"
STDIO_ENTRY = {"command": sys.executable, "args": [str(ECHO_SERVER)]}
HTTP_TOKEN = "mcp-secret-token-0123456789"


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


@pytest.fixture
def http_echo():
    """The echo server on streamable HTTP at 127.0.0.1 (a free port); yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "the HTTP echo server exited"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def write_config(home: Path, servers: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "mcp.json").write_text(json.dumps({"mcpServers": servers}))


def events(home: Path, *types: str) -> list[tuple[str, dict]]:
    rows = query(home, "SELECT type, data FROM events ORDER BY seq")
    return [(t, json.loads(d)) for t, d in rows if not types or t in types]


def listed_schemas() -> dict[str, dict]:
    """The echo server's tools as the SDK itself lists them, independently of leharness."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    async def fetch() -> dict[str, dict]:
        params = StdioServerParameters(command=sys.executable, args=[str(ECHO_SERVER)])
        with open("/dev/null", "w") as quiet:
            async with (
                stdio_client(params, errlog=quiet) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                tools = (await session.list_tools()).tools
        return {tool.name: tool.input_schema for tool in tools}

    return asyncio.run(fetch())


def offered(request_body: dict) -> dict[str, dict]:
    return {t["function"]["name"]: t["function"] for t in request_body.get("tools", [])}


def test_stdio_round_trip_schema_passes_through_byte_identical(server, isolated_home):
    write_config(isolated_home, {"echo": STDIO_ENTRY})
    arguments = '{"text": "hi",  "style": {"repeat": 2, "case": "upper"}, "tags": ["a", "b"]}'
    payload = '{"z": 1, "a": [1.5, "é", null, {"deep": true}], "m": {}}'
    server.push(
        ToolCalls(Call("echo__echo", arguments), Call("echo__dump", f'{{"payload": {payload}}}')),
        Text("it said HI HI"),
    )
    done = run_lh("say hi", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    tools = offered(server.requests[0].body)
    assert {"echo__echo", "echo__fail", "echo__crash", "echo__env", "bash"} <= set(tools)
    for name, schema in listed_schemas().items():
        sent = tools[f"echo__{name}"]["parameters"]
        assert json.dumps(sent) == json.dumps(schema)  # same keys, same order, same values
    assert tools["echo__echo"]["description"] == "Say TEXT back, styled."
    assert tools["echo__echo"]["parameters"]["title"] == "echoArguments"  # nothing stripped
    assert "$defs" in tools["echo__echo"]["parameters"]
    (connected,) = events(isolated_home, "mcp.connected")
    assert connected[1] == {
        "server": "echo",
        "transport": "stdio",
        "tools": [f"echo__{n}" for n in ("echo", "dump", "fail", "crash", "sleep", "env")],
    }
    completed, dumped = events(isolated_home, "tool.completed")
    assert completed[1]["name"] == "echo__echo"
    assert completed[1]["result"] == "HI HI [a, b]"
    assert server.requests[1].messages[-2]["content"] == "HI HI [a, b]"
    assert dumped[1]["result"] == payload  # what the model sent is what the server got
    types = [t for t, _ in events(isolated_home)]
    assert types[:3] == ["session.created", "mcp.connected", "invocation.received"]


def test_is_error_result_is_a_tool_failure_and_the_server_stays(server, isolated_home):
    write_config(isolated_home, {"echo": STDIO_ENTRY})
    server.push(
        ToolCalls(Call("echo__fail", {"reason": "not today"})),
        ToolCalls(Call("echo__echo", {"text": "still here"})),
        Text("ok"),
    )
    done = run_lh("try", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    (failed,) = events(isolated_home, "tool.failed")
    assert failed[1]["kind"] == "tool_error"
    assert "refused: not today" in failed[1]["error"]
    (completed,) = events(isolated_home, "tool.completed")
    assert completed[1]["result"] == "still here"
    assert not events(isolated_home, "mcp.failed")
    assert "echo__echo" in offered(server.requests[2].body)


def test_a_crashing_server_fails_the_call_and_its_tools_are_withdrawn(server, isolated_home):
    write_config(isolated_home, {"echo": STDIO_ENTRY})
    server.push(
        ToolCalls(Call("echo__crash", {})),
        ToolCalls(Call("echo__echo", {"text": "anyone?"}), Call("bash", {"command": "echo up"})),
        Text("the server is gone"),
    )
    done = run_lh("crash it", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    crash, withdrawn = events(isolated_home, "tool.failed")
    assert crash[1]["kind"] == "mcp_crashed"
    assert "MCP server 'echo' stopped" in crash[1]["error"]
    assert "about to crash: goodbye" in crash[1]["error"]  # its stderr tail
    assert withdrawn[1]["kind"] == "withdrawn"
    (failed,) = events(isolated_home, "mcp.failed")
    assert failed[1]["server"] == "echo" and failed[1]["kind"] == "crash"
    assert "about to crash: goodbye" in failed[1]["stderr_tail"]
    later = offered(server.requests[1].body)
    assert "bash" in later and not any(name.startswith("echo__") for name in later)
    (completed,) = events(isolated_home, "tool.completed")
    assert completed[1]["name"] == "bash"  # the session went on
    types = [t for t, _ in events(isolated_home)]
    assert types.index("mcp.failed") < types.index("tool.failed")


def test_bad_entries_warn_and_the_others_still_load(server, isolated_home):
    write_config(
        isolated_home,
        {
            "echo": STDIO_ENTRY,
            "nothing": {"command": "/nonexistent/mcp-server"},
            "quits": {"command": sys.executable, "args": ["-c", QUITS]},
            "nocommand": {"args": ["x"]},
            "old": {"type": "sse", "url": "http://127.0.0.1:1/sse"},
            "secret": {"command": "x", "env": {"TOKEN": "${LH_TEST_UNSET_VARIABLE}"}},
            "off": {"command": "/nonexistent", "disabled": True},
        },
    )
    server.push(Text("fine"))
    done = run_lh("hello", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0, done.stderr
    assert "warning: mcp.json: server 'nocommand' skipped: command: Field required" in done.stderr
    assert "unsupported type 'sse'" in done.stderr
    assert "LH_TEST_UNSET_VARIABLE is not set" in done.stderr
    assert "MCP server 'nothing' failed to start: No such file or directory" in done.stderr
    assert "missing MY_TOKEN" in done.stderr  # the stderr tail of the server that quit
    failures = {d["server"]: d for _, d in events(isolated_home, "mcp.failed")}
    assert set(failures) == {"nocommand", "old", "secret", "nothing", "quits"}
    assert failures["old"]["kind"] == "config" and failures["nothing"]["kind"] == "start"
    assert failures["quits"]["stderr_tail"] == "missing MY_TOKEN: set it in mcp.json"
    assert [d["server"] for _, d in events(isolated_home, "mcp.connected")] == ["echo"]
    names = set(offered(server.requests[0].body))
    assert "echo__echo" in names and not any(n.startswith(("nothing", "quits")) for n in names)


QUITS = "import sys; print('missing MY_TOKEN: set it in mcp.json', file=sys.stderr); sys.exit(1)"


def test_a_broken_mcp_json_warns_and_the_run_goes_on(server, isolated_home):
    isolated_home.mkdir(parents=True)
    (isolated_home / "mcp.json").write_text('{"mcpServers": {')
    server.push(Text("fine"))
    done = run_lh("hello", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 0
    assert "warning: MCP servers not loaded" in done.stderr and "not valid JSON" in done.stderr
    listed = run_lh("mcp", "list", env=lh_env(isolated_home, server.base_url))
    assert listed.returncode == 2 and "not valid JSON" in listed.stderr


def test_http_round_trip_with_headers_from_the_environment(server, isolated_home, http_echo):
    entry = {"type": "http", "url": http_echo, "headers": {"Authorization": "Bearer ${MCP_TOKEN}"}}
    write_config(isolated_home, {"web": entry})
    server.push(
        ToolCalls(Call("web__echo", {"text": "over http", "style": {"case": "upper"}})),
        ToolCalls(Call("web__fail", {"reason": "http says no"})),
        ToolCalls(Call("web__crash", {})),
        Text("done"),
    )
    env = lh_env(isolated_home, server.base_url, MCP_TOKEN=HTTP_TOKEN)
    done = run_lh("go", env=env)
    assert done.returncode == 0, done.stderr
    tools = offered(server.requests[0].body)
    for name, schema in listed_schemas().items():
        assert json.dumps(tools[f"web__{name}"]["parameters"]) == json.dumps(schema)
    (connected,) = events(isolated_home, "mcp.connected")
    assert connected[1]["transport"] == "http" and "web__echo" in connected[1]["tools"]
    (completed,) = events(isolated_home, "tool.completed")
    assert completed[1]["result"] == "OVER HTTP"
    failed, crashed = events(isolated_home, "tool.failed")
    assert failed[1]["kind"] == "tool_error" and "http says no" in failed[1]["error"]
    assert crashed[1]["kind"] == "mcp_crashed" and "MCP server 'web' stopped" in crashed[1]["error"]
    (down,) = events(isolated_home, "mcp.failed")
    assert down[1]["server"] == "web" and down[1]["kind"] == "crash"
    assert not any(name.startswith("web__") for name in offered(server.requests[3].body))
    assert HTTP_TOKEN.encode() not in (isolated_home / "sessions.db").read_bytes()


def test_mcp_list_shows_servers_status_and_tools(isolated_home, http_echo):
    write_config(
        isolated_home,
        {"echo": STDIO_ENTRY, "web": {"type": "http", "url": http_echo}, "bad": {"url": "ftp://x"}},
    )
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1", COLUMNS="200")
    table = run_lh("mcp", "list", env=env)
    assert table.returncode == 1, table.stderr  # one server is invalid
    lines = table.stdout.splitlines()
    assert any(line.split()[:3] == ["echo", "stdio", "connected"] for line in lines)
    assert any(line.split()[:3] == ["web", "http", "connected"] for line in lines)
    assert "echo__echo, echo__dump, echo__fail" in table.stdout
    rows = {
        row["server"]: row for row in json.loads(run_lh("mcp", "list", "--json", env=env).stdout)
    }
    assert rows["web"]["tools"] == [
        "web__echo",
        "web__dump",
        "web__fail",
        "web__crash",
        "web__sleep",
        "web__env",
    ]
    assert rows["bad"]["status"] == "invalid" and "http://" in rows["bad"]["error"]
    assert "\nbad: " in table.stdout  # the error is shown in full under the table
    assert not (isolated_home / "sessions.db").exists() or query(
        isolated_home, "SELECT count(*) FROM events"
    ) == [(0,)]


def test_mcp_list_shows_a_failed_servers_stderr_and_fits_the_terminal(isolated_home):
    tools = {"command": sys.executable, "args": [str(ECHO_SERVER)]}
    write_config(
        isolated_home, {"echo": tools, "quits": {"command": sys.executable, "args": ["-c", QUITS]}}
    )
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1", COLUMNS="50")
    done = run_lh("mcp", "list", env=env)
    assert done.returncode == 1
    assert "missing MY_TOKEN: set it in mcp.json" in done.stdout  # the stderr tail
    assert max(len(line) for line in done.stdout.splitlines() if "echo__" in line) <= 50
    only_good = lh_env(isolated_home, "http://127.0.0.1:9/v1")
    write_config(isolated_home, {"echo": tools})
    assert run_lh("mcp", "list", env=only_good).returncode == 0


def test_no_mcp_json_costs_nothing(isolated_home):
    """Without mcp.json a session opens without importing the SDK or recording anything."""
    code = (
        "import sys\n"
        "from leharness.cli.session import open_session\n"
        "s = open_session(None, False, provider='openai', model='m', base_url='http://127.0.0.1:9/v1',"
        " max_steps=1)\n"
        "print(len(s.loop.tools.names()), 'mcp' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=lh_env(isolated_home, "http://127.0.0.1:9/v1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "False"
    assert [t for t, _ in events(isolated_home)] == ["session.created"]


PICTURE_SERVER = Path(__file__).parent / "mcp_servers" / "picture.py"


@pytest.mark.parametrize(("model", "sent"), [("gpt-4o-mini", True), ("deepseek-chat", False)])
def test_an_mcp_image_reaches_a_model_that_accepts_images(server, isolated_home, model, sent):
    import base64

    write_config(isolated_home, {"pic": {"command": sys.executable, "args": [str(PICTURE_SERVER)]}})
    server.push(ToolCalls(Call("pic__picture", {})), Text("a red dot indeed"))
    env = lh_env(isolated_home, server.base_url, LEHARNESS_MODEL=model)
    done = run_lh("describe it", env=env)
    assert done.returncode == 0, done.stderr
    (completed,) = events(isolated_home, "tool.completed")
    assert "a red dot" in completed[1]["result"] and "[image: image/png, " in completed[1]["result"]
    (artifact,) = events(isolated_home, "artifact.created")
    assert artifact[1]["kind"] == "mcp_image"
    messages = server.requests[1].body["messages"]
    if not sent:
        assert messages[-1]["role"] == "tool"  # the marker alone: this model takes no images
        return
    assert [m["role"] for m in messages[-3:]] == ["assistant", "tool", "user"]
    image_message = messages[-1]
    assert image_message["role"] == "user"
    url = image_message["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\x89PNG")
    assert url not in (isolated_home / "sessions.db").read_bytes().decode("latin-1")
