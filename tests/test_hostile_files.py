"""A hostile filesystem: the harness's own folder, FIFOs, a symlink race, names that are
not UTF-8. Each ends in a clear tool error or works; none hangs, crashes or escapes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from leharness.tools import ToolContext, ToolError, default_registry

REGISTRY = default_registry()


def call(name: str, ctx: ToolContext, **arguments) -> str:
    return asyncio.run(REGISTRY.invoke(name, json.dumps(arguments), ctx))


def failure(name: str, ctx: ToolContext, **arguments) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call(name, ctx, **arguments)
    return caught.value


# -- 13.4: nothing of LEHARNESS_HOME but artifacts (read) --------------------------


@pytest.fixture
def home_in_tree(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    work = tmp_path / "work"
    home = work / ".leharness"
    for folder in ("locks", "skills/deploy", "artifacts/s1", "demo"):
        (home / folder).mkdir(parents=True)
    (home / "locks" / "01ABC.lock").write_text("4242\n")
    (home / "skills" / "deploy" / "SKILL.md").write_text("---\nname: deploy\n---\nbody\n")
    (home / "artifacts" / "s1" / "a1").write_text("big output\n")
    (home / "settings.toml").write_text('model = "x"\n')
    monkeypatch.setenv("LEHARNESS_HOME", str(home))
    return work, home


@pytest.mark.parametrize(
    "path",
    [
        ".leharness/locks/01ABC.lock",
        ".leharness/locks/new.lock",
        ".leharness/skills/deploy/SKILL.md",
        ".leharness/skills/evil/SKILL.md",
        ".leharness/artifacts/s1/a1",
        ".leharness/settings.toml",
        ".leharness/mcp.json",
        ".leharness/sessions.db",
    ],
)
def test_no_file_tool_writes_anywhere_in_the_harness_home(home_in_tree, path):
    work, home = home_in_tree
    ctx = ToolContext(cwd=work, home=home)
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    for name, args in [
        ("write_file", {"content": "taken over"}),
        ("edit_file", {"old_string": "4242", "new_string": "1"}),
    ]:
        error = failure(name, ctx, path=path, **args)
        assert error.kind == "outside_workspace" and "lh's own folder" in str(error)
    after = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert after == before


def test_reads_in_the_home_reach_only_artifacts_and_skills(home_in_tree):
    work, home = home_in_tree
    ctx = ToolContext(cwd=work, home=home)
    assert "big output" in call("read_file", ctx, path=".leharness/artifacts/s1/a1")
    assert "name: deploy" in call("read_file", ctx, path=".leharness/skills/deploy/SKILL.md")
    for path in (".leharness/locks/01ABC.lock", ".leharness/settings.toml"):
        assert failure("read_file", ctx, path=path).kind == "outside_workspace"
    # a session working in a folder of the home (lh demo's) uses that folder freely
    demo = ToolContext(cwd=home / "demo", home=home)
    assert "created" in call("write_file", demo, path="hello.py", content="print(1)\n")
    assert failure("write_file", demo, path="../locks/x.lock", content="1").kind == (
        "outside_workspace"
    )


# -- 14.4: a FIFO is refused, never read ---------------------------------------


def _unblock_later(fifo: Path, seconds: float) -> threading.Thread:
    """Open the FIFO's other ends late, so that a regression fails instead of hanging."""

    def run() -> None:
        time.sleep(seconds)
        for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, flags))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_file_tools_refuse_a_fifo_at_once(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    ctx = ToolContext(cwd=tmp_path)
    _unblock_later(fifo, 10)
    started = time.monotonic()
    for name, args in [
        ("read_file", {}),
        ("edit_file", {"old_string": "a", "new_string": "b"}),
        ("write_file", {"content": "x"}),
        ("grep", {"pattern": "x"}),
    ]:
        error = failure(name, ctx, path="pipe", **args)
        assert error.kind == "not_a_file" and "FIFO" in str(error), (name, error)
    assert time.monotonic() - started < 5
    assert fifo.exists() and not fifo.is_file()  # write_file did not replace it


# -- 14.5: what is checked is what is opened -----------------------------------

RACER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
while True:
    if libc.renameat2(-100, a, -100, b, 2) != 0:  # RENAME_EXCHANGE
        sys.exit("renameat2: errno %d" % ctypes.get_errno())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_a_folder_swapped_for_a_symlink_never_lets_a_call_out(tmp_path):
    work, outside = tmp_path / "work", tmp_path / "outside"
    (work / "d").mkdir(parents=True)
    outside.mkdir()
    (work / "d" / "f.txt").write_text("inside\n")
    (outside / "f.txt").write_text("OUTSIDE\n")
    (work / "s").symlink_to(outside)
    ctx = ToolContext(cwd=work)
    racer = subprocess.Popen([sys.executable, "-c", RACER, str(work / "d"), str(work / "s")])
    escapes = worked = 0
    try:
        for number in range(300):
            try:
                text = call("read_file", ctx, path="d/f.txt")
                worked += 1
                escapes += "OUTSIDE" in text
            except ToolError:
                pass
            try:
                call("write_file", ctx, path=f"d/w{number}.txt", content="x")
                worked += 1
            except ToolError:
                pass
            with contextlib.suppress(ToolError):
                call("edit_file", ctx, path="d/f.txt", old_string="OUTSIDE", new_string="PWNED")
        assert racer.poll() is None, "the racer stopped: the race did not run"
    finally:
        racer.kill()
        racer.wait()
    written = list(outside.glob("w*.txt"))
    assert (escapes, written) == (0, [])
    assert (outside / "f.txt").read_text() == "OUTSIDE\n"
    assert worked > 0


# -- 14.4: searches stream through ripgrep, have a time limit and can be cancelled --------

CATASTROPHIC = r"""
import asyncio, json, sys
from pathlib import Path
from leharness.tools import ToolContext, default_registry
ctx = ToolContext(cwd=Path(sys.argv[1]))
print(asyncio.run(default_registry().invoke("grep", json.dumps({"pattern": "^(a+)+$"}), ctx)))
"""


def test_a_catastrophic_pattern_does_not_block(tmp_path):
    (tmp_path / "a.txt").write_text("a" * 40 + "!\n" + "a" * 40 + "\n")
    done = subprocess.run(
        [sys.executable, "-c", CATASTROPHIC, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a.txt:2:" + "a" * 40


def test_searches_respect_gitignore_outside_a_repository_too(tmp_path):
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    for name in ("build/out.py", "run.log", "src/main.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("needle\n")
    ctx = ToolContext(cwd=tmp_path)
    assert call("grep", ctx, pattern="needle") == "src/main.py:1:needle"
    assert call("list_files", ctx, pattern="**/*").splitlines() == [".gitignore", "src/main.py"]
    assert call("list_files", ctx, pattern="*") == ".gitignore"  # pathlib's meaning: this folder


@pytest.fixture
def slow_rg(tmp_path, monkeypatch) -> Path:
    """A ripgrep that never answers, and the file where it writes its pid."""
    pid_file = tmp_path / "rg.pid"
    fake = tmp_path / "rg"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr("leharness.tools.search.rg_path", lambda: str(fake))
    (tmp_path / "work").mkdir()
    return pid_file


def _gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text()


def test_a_search_stops_at_its_time_limit_and_kills_ripgrep(slow_rg, monkeypatch):
    monkeypatch.setattr("leharness.tools.search.SEARCH_TIMEOUT_S", 0.5)
    ctx = ToolContext(cwd=slow_rg.parent / "work")
    started = time.monotonic()
    assert "stopped after 0.5 s" in call("grep", ctx, pattern="x")
    assert "stopped after 0.5 s" in call("list_files", ctx)
    assert time.monotonic() - started < 10
    assert _gone(slow_rg)


def test_a_cancelled_search_kills_ripgrep(slow_rg):
    ctx = ToolContext(cwd=slow_rg.parent / "work")

    async def cancel_it() -> None:
        job = asyncio.ensure_future(REGISTRY.invoke("grep", '{"pattern": "x"}', ctx))
        while not slow_rg.exists():
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(asyncio.wait_for(cancel_it(), 20))
    assert _gone(slow_rg)


# -- 14.3: names that are not UTF-8 --------------------------------------------

RAW = b"\xff-caf\xe9.txt"  # Latin-1 bytes: not UTF-8
ESCAPED = "\\xff-caf\\xe9.txt"


@pytest.fixture
def raw_named(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    with open(os.path.join(os.fsencode(tmp_path / "sub"), RAW), "wb") as handle:
        handle.write(b"needle one\n")
    return tmp_path


def test_names_that_are_not_utf8_are_shown_escaped_and_usable(raw_named):
    ctx = ToolContext(cwd=raw_named)
    assert call("list_files", ctx) == f"sub/{ESCAPED}"
    assert call("grep", ctx, pattern="needle") == f"sub/{ESCAPED}:1:needle one"
    assert "needle one" in call("read_file", ctx, path=f"sub/{ESCAPED}")
    assert "overwrote" in call("write_file", ctx, path=f"sub/{ESCAPED}", content="needle two\n")
    call("edit_file", ctx, path=f"sub/{ESCAPED}", old_string="two", new_string="three")
    assert "created" in call("write_file", ctx, path="new-\\xe9.txt", content="x")
    raw_file = os.path.join(os.fsencode(raw_named / "sub"), RAW)
    assert Path(os.fsdecode(raw_file)).read_bytes() == b"needle three\n"
    assert os.path.exists(os.path.join(os.fsencode(raw_named), b"new-\xe9.txt"))


def test_names_that_are_not_utf8_survive_the_event_log_and_a_resume(raw_named, tmp_path):
    from leharness.testing import Call, ScriptedServer, Text, ToolCalls
    from leharness.tools.redact import storable

    from .e2e_helpers import lh_env, query, run_lh

    (raw_named / "sub" / "link").symlink_to(os.fsdecode(b"\xfe-gone"))  # dangling, raw target
    calls = ToolCalls(
        Call("list_files", {}),
        Call("grep", {"pattern": "needle"}),
        Call("read_file", {"path": f"sub/{ESCAPED}"}),
        Call("read_file", {"path": "sub/link"}),
    )
    # a step of its own: calls in one reply run together, and list_files or grep could
    # meet the write's temporary file
    write = ToolCalls(Call("write_file", {"path": f"sub/{ESCAPED}", "content": "needle two\n"}))
    home = tmp_path.parent / (tmp_path.name + "-home")
    with ScriptedServer([calls, write, Text("done"), Text("again")]) as server:
        env = lh_env(home, server.base_url)
        first = run_lh("look", env=env, cwd=raw_named)
        second = run_lh("-c", "go on", env=env, cwd=raw_named)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    rows = query(
        home,
        "SELECT json_extract(data, '$.name'), type, coalesce(json_extract(data, '$.result'), "
        "json_extract(data, '$.error')) FROM events "
        "WHERE type IN ('tool.completed', 'tool.failed') ORDER BY seq",
    )
    assert [kind for _, kind, _ in rows] == ["tool.completed"] * 3 + ["tool.failed"] + [
        "tool.completed"
    ]
    assert rows[3][2] == "file not found: sub/link"
    results = {name: result for name, _, result in rows}
    assert results["list_files"] == f"sub/{ESCAPED}"  # a dangling link is no file
    assert results["grep"] == f"sub/{ESCAPED}:1:needle one"
    raw_file = os.path.join(os.fsencode(raw_named / "sub"), RAW)
    assert Path(os.fsdecode(raw_file)).read_bytes() == b"needle two\n"
    assert storable("\udcfe") == "\\xfe"


def test_command_line_text_that_is_not_utf8_runs_or_is_refused_in_one_line(isolated_home, tmp_path):
    """A prompt or a session id holding a byte that is not UTF-8 (`lh "… $(ls)"` in a
    folder with such a name) stopped lh with a traceback: the prompt could not be stored,
    the id could not be looked up. The prompt is stored and sent with the byte as \\xNN;
    an id with one is no session's."""
    from leharness.testing import ScriptedServer, Text

    from .e2e_helpers import lh_env, query, run_lh

    prompt = os.fsdecode(b"summarize caf\xe9.txt")  # as Python hands argv over
    with ScriptedServer([Text("done")]) as server:
        env = lh_env(isolated_home, server.base_url)
        done = run_lh(prompt, env=env, cwd=tmp_path)
        sent = server.requests[-1].messages[-1]
    assert done.returncode == 0, done.stderr
    assert sent == {"role": "user", "content": "summarize caf\\xe9.txt"}
    assert query(
        isolated_home,
        "SELECT json_extract(data, '$.text') FROM events WHERE type = 'invocation.received'",
    ) == [("summarize caf\\xe9.txt",)]
    bad_id = os.fsdecode(b"01\xff")
    commands = (["show", bad_id], ["export", bad_id], ["fork", bad_id], ["--session", bad_id, "x"])
    for args in commands:
        refused = run_lh(*args, env=env, cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stderr)
        assert refused.stderr.strip() == "Error: no session '01\\xff' (`lh sessions` lists them)"
    searched = run_lh("search", bad_id, env=env, cwd=tmp_path)
    assert "Traceback" not in searched.stderr and searched.returncode in (0, 2)
