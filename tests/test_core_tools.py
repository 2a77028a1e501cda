"""The core tools on real files and real processes (no mocks)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from leharness.tools import CORE_TOOLS, ToolContext, ToolError, default_registry

REGISTRY = default_registry()


def call(name: str, ctx: ToolContext, **arguments) -> str:
    return asyncio.run(REGISTRY.invoke(name, json.dumps(arguments), ctx))


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(cwd=tmp_path)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_bash_echo_and_exit_codes(ctx):
    assert call("bash", ctx, command="echo hi") == "hi\n[exit: 0]"
    assert call("bash", ctx, command="echo oops >&2; exit 3") == "oops\n[exit: 3]"
    assert call("bash", ctx, command="pwd").startswith(str(ctx.cwd))


def test_bash_timeout_kills_the_whole_process_group(ctx):
    out = call("bash", ctx, command="sleep 30 & echo child $!; sleep 30", timeout_s=1)
    assert "[timed out after 1 s; process group killed]" in out
    child = int(out.split("child ")[1].split()[0])
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_bash_cancellation_kills_the_process_group(ctx, tmp_path):
    pid_file = tmp_path / "pid"

    async def main():
        task = asyncio.ensure_future(
            REGISTRY.invoke("bash", json.dumps({"command": f"echo $$ > {pid_file}; sleep 30"}), ctx)
        )
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_bash_in_a_missing_directory_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match="does not exist"):
        call("bash", ToolContext(cwd=tmp_path / "gone"), command="ls")


def test_read_file_pages_with_a_footer(ctx):
    (ctx.cwd / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    first = call("read_file", ctx, path="f.txt", limit=4)
    assert first.splitlines()[0].endswith("\tline 1")
    assert "lines 1-4 of 10; next offset: 5" in first
    last = call("read_file", ctx, path="f.txt", offset=9)
    assert "line 10" in last and "of 10" in last and "next offset" not in last
    with pytest.raises(ToolError, match="10"):
        call("read_file", ctx, path="f.txt", offset=50)
    with pytest.raises(ToolError):
        call("read_file", ctx, path="missing.txt")


def test_read_file_replaces_invalid_utf8_and_says_so(ctx):
    (ctx.cwd / "latin.txt").write_bytes(b"caf\xe9\n")
    out = call("read_file", ctx, path="latin.txt")
    assert "caf\ufffd" in out and "UTF-8" in out


def test_write_file_creates_parents_and_overwrites(ctx):
    assert "created" in call("write_file", ctx, path="a/b/c.txt", content="one")
    assert (ctx.cwd / "a/b/c.txt").read_text() == "one"
    assert "overwrote" in call("write_file", ctx, path="a/b/c.txt", content="two")
    assert (ctx.cwd / "a/b/c.txt").read_text() == "two"


def test_edit_file_needs_exactly_one_match(ctx):
    target = ctx.cwd / "code.py"
    target.write_text("x = 1\ny = 1\n")
    with pytest.raises(ToolError, match="not found"):
        call("edit_file", ctx, path="code.py", old_string="z = 1", new_string="z = 2")
    with pytest.raises(ToolError, match="2"):
        call("edit_file", ctx, path="code.py", old_string="= 1", new_string="= 2")
    assert target.read_text() == "x = 1\ny = 1\n"
    call("edit_file", ctx, path="code.py", old_string="y = 1", new_string="y = 2")
    assert target.read_text() == "x = 1\ny = 2\n"


def test_edit_file_keeps_dollar_and_backslashes_literally(ctx):
    target = ctx.cwd / "s.txt"
    target.write_text("price: X\n")
    call("edit_file", ctx, path="s.txt", old_string="X", new_string=r"$1 \1 \n")
    assert target.read_text() == "price: $1 \\1 \\n\n"


def test_list_files_and_grep(ctx):
    (ctx.cwd / "pkg").mkdir()
    (ctx.cwd / "pkg" / "a.py").write_text("import os\nTODO = 1\n")
    (ctx.cwd / "pkg" / "b.txt").write_text("todo later\n")
    (ctx.cwd / ".git").mkdir()
    (ctx.cwd / ".git" / "config").write_text("TODO hidden\n")
    assert call("list_files", ctx, pattern="**/*.py") == "pkg/a.py"
    assert ".git" not in call("list_files", ctx)
    assert call("grep", ctx, pattern="TODO") == "pkg/a.py:2:TODO = 1"
    both = call("grep", ctx, pattern="todo", ignore_case=True).splitlines()
    assert both == ["pkg/a.py:2:TODO = 1", "pkg/b.txt:1:todo later"]
    assert call("grep", ctx, pattern="todo", glob="*.txt") == "pkg/b.txt:1:todo later"
    with pytest.raises(ToolError, match="invalid regular expression"):
        call("grep", ctx, pattern="(")


def test_registry_reports_bad_calls_with_a_kind(ctx):
    with pytest.raises(ToolError) as unknown:
        asyncio.run(REGISTRY.invoke("nope", "{}", ctx))
    assert unknown.value.kind == "unknown_tool"
    for arguments in ("{bad", "[1]", '{"command": 5}', '{"command": "ls", "extra": 1}'):
        with pytest.raises(ToolError) as bad:
            asyncio.run(REGISTRY.invoke("bash", arguments, ctx))
        assert bad.value.kind == "bad_arguments", arguments


def test_every_core_tool_has_a_valid_function_spec():
    names = [tool.name for tool in CORE_TOOLS]
    assert names == [
        "bash",
        "read_file",
        "write_file",
        "edit_file",
        "list_files",
        "grep",
        "wait_task",
        "read_task",
        "cancel_task",
        "list_tasks",
        "spawn_agent",
        "load_skill",
    ]
    for tool in CORE_TOOLS:
        spec = tool.spec()
        assert spec["type"] == "function"
        assert spec["function"]["description"]
        assert spec["function"]["parameters"]["type"] == "object"
    assert os.environ.get("LEHARNESS_HOME")  # the autouse fixture isolates every test
