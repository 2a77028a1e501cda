"""File tools stay inside the session's working tree (symlinks resolved) and --allow-path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from leharness.tools import ToolContext, ToolError, default_registry

REGISTRY = default_registry()


def call(name: str, ctx: ToolContext, **arguments) -> str:
    return asyncio.run(REGISTRY.invoke(name, json.dumps(arguments), ctx))


@pytest.fixture
def layout(tmp_path: Path, isolated_home: Path) -> dict[str, Path]:
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the model\n")
    (work / "ok.txt").write_text("fine\n")
    (work / "escape").symlink_to(outside)
    (work / "link.txt").symlink_to(outside / "secret.txt")
    (work / "inner.txt").symlink_to(work / "ok.txt")
    return {"work": work, "outside": outside, "home": isolated_home}


def refused(name: str, ctx: ToolContext, **arguments) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call(name, ctx, **arguments)
    assert caught.value.kind == "outside_workspace", caught.value
    assert "--allow-path" in str(caught.value) or "lh's own folder" in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    "path", ["../outside/secret.txt", "{outside}/secret.txt", "link.txt", "escape/secret.txt"]
)
def test_reads_outside_the_working_tree_are_refused(layout, path):
    ctx = ToolContext(cwd=layout["work"])
    error = refused("read_file", ctx, path=path.format(**layout))
    assert str(layout["work"]) in str(error)  # it says what is allowed


@pytest.mark.parametrize("path", ["../outside/new.txt", "escape/new.txt", "link.txt"])
def test_writes_and_edits_outside_are_refused_and_change_nothing(layout, path):
    ctx = ToolContext(cwd=layout["work"])
    refused("write_file", ctx, path=path, content="x")
    refused("edit_file", ctx, path=path, old_string="not", new_string="NOT")
    assert sorted(p.name for p in layout["outside"].iterdir()) == ["secret.txt"]
    assert (layout["outside"] / "secret.txt").read_text() == "not for the model\n"


def test_symlinks_inside_the_tree_and_plain_paths_work(layout):
    ctx = ToolContext(cwd=layout["work"])
    assert "fine" in call("read_file", ctx, path="inner.txt")
    assert "created" in call("write_file", ctx, path="sub/new.txt", content="hello")
    assert (layout["work"] / "sub" / "new.txt").read_text() == "hello"


def test_allow_path_widens_the_tree(layout):
    ctx = ToolContext(cwd=layout["work"], allowed_paths=(layout["outside"],))
    assert "not for the model" in call("read_file", ctx, path="link.txt")
    call("write_file", ctx, path="escape/new.txt", content="allowed")
    assert (layout["outside"] / "new.txt").read_text() == "allowed"


def test_list_files_and_grep_do_not_follow_links_out(layout):
    ctx = ToolContext(cwd=layout["work"])
    assert "secret" not in call("list_files", ctx)
    assert call("grep", ctx, pattern="model") == "no matches for 'model'"
    refused("grep", ctx, pattern="model", path="../outside")
    refused("list_files", ctx, path="escape")
    wide = ToolContext(cwd=layout["work"], allowed_paths=(layout["outside"],))
    assert "link.txt:1:not for the model" in call("grep", wide, pattern="model")


def test_the_harness_folder_is_readable_for_artifacts_but_never_writable(layout):
    home = layout["home"]  # outside the working tree in this layout
    artifact = home / "artifacts" / "s1" / "a1"
    artifact.parent.mkdir(parents=True)
    artifact.write_text("big output\n")
    ctx = ToolContext(cwd=layout["work"], home=home)
    assert "big output" in call("read_file", ctx, path=str(artifact))
    refused("write_file", ctx, path=str(artifact), content="tampered")
    inside_home = ToolContext(cwd=home.parent, home=home)  # home inside the cwd
    error = refused("write_file", inside_home, path="home/sessions.db", content="x")
    assert "lh's own folder" in str(error)
    assert artifact.read_text() == "big output\n"


def test_a_deleted_working_directory_is_a_clear_tool_error(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    ctx = ToolContext(cwd=gone)
    gone.rmdir()
    for name, args in [
        ("read_file", {"path": "a.txt"}),
        ("write_file", {"path": "a.txt", "content": "x"}),
        ("list_files", {}),
        ("bash", {"command": "ls"}),
    ]:
        with pytest.raises(ToolError) as caught:
            call(name, ctx, **args)
        assert caught.value.kind == "bad_cwd" and "does not exist" in str(caught.value)
    assert not gone.exists()  # write_file did not recreate it


def test_lh_allow_path_end_to_end(layout):
    from leharness.testing import Call, ScriptedServer, Text, ToolCalls

    from .e2e_helpers import lh_env, query, run_lh

    target = str(layout["outside"] / "secret.txt")
    steps = [ToolCalls(Call("read_file", {"path": target})), Text("done")]
    with ScriptedServer(steps * 2) as server:
        env = lh_env(layout["home"], server.base_url)
        denied = run_lh("read it", env=env, cwd=layout["work"])
        allowed = run_lh(
            "--allow-path", str(layout["outside"]), "read it", env=env, cwd=layout["work"]
        )
        missing = run_lh("--allow-path", "/no/such/dir", "read it", env=env, cwd=layout["work"])
    assert denied.returncode == allowed.returncode == 0, denied.stderr + allowed.stderr
    rows = query(layout["home"], "SELECT status, error_kind FROM tool_calls ORDER BY requested_at")
    assert rows == [("failed", "outside_workspace"), ("completed", None)]
    assert missing.returncode == 2 and "/no/such/dir" in missing.stderr


def test_a_symlink_loop_is_a_clear_error(layout):
    (layout["work"] / "loop").symlink_to(layout["work"] / "loop")
    ctx = ToolContext(cwd=layout["work"])
    with pytest.raises(ToolError) as caught:
        call("read_file", ctx, path="loop")
    assert caught.value.kind == "bad_path" and "cannot resolve loop" in str(caught.value)
    listed = call("list_files", ctx, pattern="*").splitlines()
    assert "ok.txt" in listed and "loop" not in listed  # the loop is skipped, not a crash
