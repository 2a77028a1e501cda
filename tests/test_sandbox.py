"""bash under bubblewrap: real commands try to write outside what the sandbox mode allows."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools import ToolContext, default_registry
from leharness.tools.sandbox import prefix, unavailable

from .e2e_helpers import lh_env, query, run_lh

REGISTRY = default_registry()
needs_bwrap = pytest.mark.skipif(
    unavailable() is not None and not os.environ.get("LEHARNESS_REQUIRE_SANDBOX"),
    reason=f"no sandbox here: {unavailable()}",
)


def bash(ctx: ToolContext, command: str) -> str:
    arguments = json.dumps({"command": command})
    return asyncio.run(REGISTRY.invoke("bash", arguments, ctx))


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    folders = {name: tmp_path / name for name in ("work", "shared", "outside")}
    for folder in folders.values():
        folder.mkdir()
    folders["home"] = folders["work"] / ".leharness"  # lh's default place: inside the work tree
    folders["home"].mkdir()
    return folders


def test_off_adds_nothing_and_the_other_modes_bind_the_workspace(layout):
    assert prefix("off", layout["work"]) == []
    argv = prefix("workspace-write", layout["work"], (layout["shared"],), layout["home"])
    work, shared, home = (str(layout[name]) for name in ("work", "shared", "home"))
    triples = [argv[i : i + 3] for i in range(len(argv) - 2)]
    mounts = [t for t in triples if t[0].startswith("--") and t[1] == t[2] != "/"]
    assert mounts == [
        ["--bind", work, work],
        ["--bind", shared, shared],
        ["--ro-bind-try", home, home],  # after the work tree it lies in: read-only there
    ]
    assert argv[-3:] == ["--chdir", work, "--"]
    assert argv.index("--tmpfs") < argv.index("--bind")  # the work tree may lie under /tmp
    assert "--unshare-net" not in argv and "--unshare-net" in prefix("read-only", Path(work))


@needs_bwrap
def test_workspace_write_confines_writes_to_the_workspace(layout):
    ctx = ToolContext(
        cwd=layout["work"],
        home=layout["home"],
        allowed_paths=(layout["shared"],),
        sandbox="workspace-write",
    )
    private = f"/tmp/lh-sandbox-{uuid.uuid4().hex}"
    out = bash(
        ctx,
        f"touch {layout['outside']}/x; echo outside=$?; touch inside; echo inside=$?; "
        f"touch {layout['shared']}/s; echo shared=$?; touch .leharness/lock; echo home=$?; "
        f"touch {private} && ls {private} >/dev/null; echo tmp=$?; touch ~/.lh-probe; echo ~=$?",
    )
    assert "outside=1" in out and "inside=0" in out and "shared=0" in out, out
    assert "home=1" in out and "tmp=0" in out and "~=1" in out, out
    assert "Read-only file system" in out
    assert list(layout["outside"].iterdir()) == []
    assert (layout["work"] / "inside").exists() and (layout["shared"] / "s").exists()
    assert not (layout["home"] / "lock").exists() and not Path(private).exists()
    assert not Path("~/.lh-probe").expanduser().exists()


@needs_bwrap
def test_a_work_tree_inside_the_home_stays_writable(layout):
    demo = layout["home"] / "demo"  # lh demo's work tree lies inside the home
    demo.mkdir()
    ctx = ToolContext(cwd=demo, home=layout["home"], sandbox="workspace-write")
    out = bash(ctx, "touch mine; echo own=$?; touch ../lock; echo home=$?")
    assert "own=0" in out and "home=1" in out, out
    assert (demo / "mine").exists() and not (layout["home"] / "lock").exists()


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


@needs_bwrap
def test_read_only_writes_nothing_and_has_no_network(layout):
    connect = "python3 -c 'import socket,sys; socket.create_connection((\"127.0.0.1\", {}), 3)'"
    with _listener() as server:
        port = server.getsockname()[1]
        read_only = ToolContext(cwd=layout["work"], home=layout["home"], sandbox="read-only")
        out = bash(read_only, f"touch inside; echo inside=$?; {connect.format(port)}; echo net=$?")
        writable = ToolContext(cwd=layout["work"], home=layout["home"], sandbox="workspace-write")
        net = bash(writable, f"{connect.format(port)}; echo net=$?")
    assert "inside=1" in out and "net=1" in out, out
    assert not (layout["work"] / "inside").exists()
    assert "net=0" in net, net  # workspace-write keeps the network


def _run(layout, *flags: str, **env: str):
    target = layout["outside"] / "escaped.txt"
    steps = [ToolCalls(Call("bash", {"command": f"echo hi > {target}; echo rc=$?"})), Text("ok")]
    with ScriptedServer(steps) as server:
        done = run_lh(
            *flags, "go", env=lh_env(layout["home"], server.base_url, **env), cwd=layout["work"]
        )
    return done, target


@needs_bwrap
def test_lh_runs_bash_in_workspace_write_by_default_and_off_when_told(layout):
    done, target = _run(layout)
    assert done.returncode == 0, done.stderr
    assert not target.exists() and "sandbox" not in done.stderr
    (result,) = query(
        layout["home"],
        "SELECT json_extract(data, '$.result') FROM events WHERE type = ?",
        "tool.completed",
    )[-1:]
    assert "rc=1" in result[0]  # /tmp is private: the outside folder is not even there
    done, target = _run(layout, LEHARNESS_SANDBOX="off")
    assert done.returncode == 0 and target.read_text() == "hi\n"


def test_without_bubblewrap_lh_warns_once_or_refuses_a_mode_it_cannot_give(layout):
    no_bwrap = {"PATH": str(layout["outside"])}  # bash is /bin/bash: found without PATH
    done, target = _run(layout, **no_bwrap)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "sandbox" in line]
    assert len(warnings) == 1 and "bwrap" in warnings[0], done.stderr
    assert target.exists()  # ran unconfined, as the warning said
    target.unlink()
    done, target = _run(layout, "--sandbox", "read-only", **no_bwrap)
    assert done.returncode == 2 and not target.exists()
    assert "sandbox read-only (from --sandbox) cannot work" in done.stderr
    assert "Traceback" not in done.stderr


def test_lh_doctor_says_whether_the_sandbox_works(layout):
    done = run_lh("doctor", env=lh_env(layout["home"], "http://127.0.0.1:9/v1"))
    expected = "✓ sandbox: bubblewrap" if unavailable() is None else "! sandbox: off"
    assert done.stdout.startswith(expected), done.stdout
    no_bwrap = lh_env(layout["home"], "http://127.0.0.1:9/v1", PATH=str(layout["outside"]))
    assert (
        "! sandbox: off: bubblewrap (bwrap) is not installed"
        in run_lh("doctor", env=no_bwrap).stdout
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux only")
def test_the_bwrap_check_runs_in_the_background_and_says_why_it_failed(tmp_path, monkeypatch):
    """lh starts the check before loading the session's code and collects it afterwards
    (its 10-25 ms of namespaces overlap the imports); the answer is the same as before."""
    from leharness.tools import sandbox

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: no user namespaces' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sandbox, "_started", None)
    sandbox.unavailable.cache_clear()
    try:
        sandbox.start_probe()
        assert sandbox._started is not None and sandbox._started.args[0] == str(fake)
        reason = sandbox.unavailable()
        sandbox.start_probe()  # answered already: nothing more is started
    finally:
        sandbox.unavailable.cache_clear()
    assert reason == "bwrap cannot create a sandbox here: bwrap: no user namespaces"


def fake_bwrap(folder: Path, exit_code: int) -> tuple[Path, Path]:
    """A `bwrap` that counts its runs in `calls` and exits with `exit_code`."""
    calls = folder / "calls"
    fake = folder / "bwrap"
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'bwrap: nope' >&2\nexit {exit_code}\n")
    fake.chmod(0o755)
    return fake, calls


def fresh_process(sandbox, monkeypatch) -> None:
    """As a new `lh` process starts: nothing probed or answered yet."""
    monkeypatch.setattr(sandbox, "_started", None)
    monkeypatch.setattr(sandbox, "_remembered", None)
    sandbox.unavailable.cache_clear()


def runs(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux only")
def test_a_bwrap_success_is_remembered_until_what_it_depends_on_changes(
    tmp_path, monkeypatch, isolated_home
):
    """The check costs ~4 ms of CPU every `lh` start: a success is kept in the home, keyed
    by the boot, the binary, the user, the namespaces and the kernel's switches."""
    from leharness.tools import sandbox

    (isolated_home / "locks").mkdir(parents=True)  # a session ran here before
    fake, calls = fake_bwrap(tmp_path, 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        fresh_process(sandbox, monkeypatch)
        sandbox.start_probe()
        assert sandbox.unavailable() is None and runs(calls) == 1
        remembered = (isolated_home / sandbox.WORKS_FILE).read_text()
        assert remembered == sandbox.probe_key(str(fake))

        fresh_process(sandbox, monkeypatch)
        sandbox.start_probe()  # remembered: nothing is started
        assert sandbox._started is None
        assert sandbox.unavailable() is None and runs(calls) == 1

        fake.write_text(fake.read_text() + "# another build\n")  # the binary changed
        fresh_process(sandbox, monkeypatch)
        sandbox.start_probe()
        assert sandbox.unavailable() is None and runs(calls) == 2

        fresh_process(sandbox, monkeypatch)
        assert sandbox.unavailable(fresh=True) is None and runs(calls) == 3  # lh doctor
    finally:
        sandbox.unavailable.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux only")
def test_a_failed_bwrap_check_is_never_remembered_and_forgets_a_success(
    tmp_path, monkeypatch, isolated_home
):
    from leharness.tools import sandbox

    (isolated_home / "locks").mkdir(parents=True)
    monkeypatch.setenv("PATH", str(tmp_path))
    works = isolated_home / sandbox.WORKS_FILE
    try:
        fake_bwrap(tmp_path, 0)
        fresh_process(sandbox, monkeypatch)
        assert sandbox.unavailable() is None and works.exists()

        _, calls = fake_bwrap(tmp_path, 1)  # it stopped working
        fresh_process(sandbox, monkeypatch)
        assert sandbox.unavailable(fresh=True) == "bwrap cannot create a sandbox here: bwrap: nope"
        assert not works.exists()
        for _ in range(2):  # every later start checks again
            fresh_process(sandbox, monkeypatch)
            sandbox.start_probe()
            assert sandbox.unavailable() is not None
        assert runs(calls) == 4 and not works.exists()  # the success, then three checks
    finally:
        sandbox.unavailable.cache_clear()
