"""Checkpoints, `lh diff` and `lh rewind`: a session edits three files and runs a command
that creates one; rewinding to the middle restores every file byte for byte, forks the
conversation there, and reports (never overwrites) a file edited by hand meanwhile."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from leharness import store
from leharness.cli import cli
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools import checkpoints

from .e2e_helpers import lh_env, query, run_lh

FILES = ("a.txt", "b.txt", "c.txt", "d.txt", "ignored.log")


def _state(work: Path) -> dict[str, bytes | None]:
    return {n: (work / n).read_bytes() if (work / n).exists() else None for n in FILES}


@pytest.fixture
def session(isolated_home, tmp_path):
    """Three turns in a git work tree: edit a; write b, edit c; a command makes d, grows a."""
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / ".gitignore").write_text("ignored.log\n")
    (work / "a.txt").write_text("alpha\n")
    (work / "b.txt").write_bytes(b"bravo\r\nno newline at the end")
    (work / "c.txt").write_text("charlie\n")
    states = {"start": _state(work)}
    with ScriptedServer() as server:
        env = lh_env(isolated_home, server.base_url)
        server.push(
            ToolCalls(
                Call("edit_file", {"path": "a.txt", "old_string": "alpha", "new_string": "ALPHA"})
            ),
            Text("did one"),
        )
        assert run_lh("one", env=env, cwd=work).returncode == 0
        states["one"] = _state(work)
        server.push(
            ToolCalls(Call("write_file", {"path": "b.txt", "content": "new b\n"})),
            ToolCalls(
                Call("edit_file", {"path": "c.txt", "old_string": "charlie", "new_string": "C"})
            ),
            Text("did two"),
        )
        assert run_lh("-c", "two", env=env, cwd=work).returncode == 0
        states["two"] = _state(work)
        command = "echo made > d.txt && printf more >> a.txt && echo log > ignored.log"
        server.push(ToolCalls(Call("bash", {"command": command})), Text("did three"))
        assert run_lh("-c", "three", env=env, cwd=work).returncode == 0
        states["three"] = _state(work)
    (session_id,) = query(isolated_home, "SELECT id FROM sessions")[0]
    ends = [seq for (seq,) in query(
        isolated_home,
        "SELECT session_seq FROM events WHERE session_id = ? AND type = 'agent.finished' "
        "ORDER BY session_seq",
        session_id,
    )]  # fmt: skip
    return work, session_id, ends, states


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_every_change_is_checkpointed_with_both_hashes(session, isolated_home):
    work, session_id, _, states = session
    rows = query(
        isolated_home,
        "SELECT kind, path, before, after, tool FROM checkpoints WHERE session_id = ? "
        "ORDER BY session_seq",
        session_id,
    )
    assert [(r[0], Path(r[1]).name, r[4]) for r in rows] == [
        ("file", "a.txt", "edit_file"),
        ("file", "b.txt", "write_file"),
        ("file", "c.txt", "edit_file"),
        ("tree", work.name, "bash"),
    ]
    home = isolated_home
    assert checkpoints.read_blob(home, rows[0][2]) == states["start"]["a.txt"]
    assert checkpoints.read_blob(home, rows[1][3]) == b"new b\n"
    tree = rows[3]
    git_dir = Path(query(home, "SELECT git_dir FROM checkpoints WHERE kind = 'tree'")[0][0])
    assert git_dir.is_relative_to(home / "snapshots")
    assert sorted(checkpoints.changed_paths(git_dir, tree[2], tree[3])) == ["a.txt", "d.txt"]
    assert not (work / ".git" / "index").exists()  # the project repo: never staged into
    checked = run("doctor")  # the checkpoints projection is what a rebuild gives
    assert checked.exit_code == 0, checked.output


def test_identical_contents_are_stored_once(isolated_home):
    first = checkpoints.keep(isolated_home, b"same")
    second = checkpoints.keep(isolated_home, b"same")
    assert first == second
    assert len(list(checkpoints.blobs_dir(isolated_home).rglob("*"))) == 2  # one folder, one blob


def test_diff_shows_what_the_session_changed(session):
    _, session_id, ends, _ = session
    whole = run("diff", session_id).output
    assert "--- a/a.txt\n+++ b/a.txt\n" in whole
    assert "-alpha\n+ALPHA\n+more\n\\ No newline at end of file\n" in whole
    assert "--- /dev/null\n+++ b/d.txt\n" in whole and "+made" in whole
    assert "ignored.log" not in whole
    after_two = run("diff", session_id, "--at", str(ends[1])).output
    assert "b.txt" not in after_two and "c.txt" not in after_two
    assert "d.txt" in after_two


def test_rewind_to_the_middle_restores_every_file_byte_for_byte(session, isolated_home):
    work, session_id, ends, states = session
    (work / "c.txt").write_text("edited by hand\n")  # after turn two changed it
    asked = run("rewind", session_id, "--at", str(ends[0]), input="n\n")
    assert asked.exit_code == 1
    assert "changed outside lh since event" in asked.output and "c.txt" in asked.output
    assert "-made" in asked.output  # the diff: d.txt would go away
    assert _state(work)["d.txt"] == b"made\n"  # answered no: nothing changed
    done = run("rewind", session_id, "--at", str(ends[0]), "--yes")
    assert done.exit_code == 0, done.output
    expected = dict(states["one"], **{"c.txt": b"edited by hand\n", "ignored.log": b"log\n"})
    assert _state(work) == expected
    new_id = done.output.split("resume: lh --session ")[1].split()[0]
    messages = [
        r[0] for r in query(
            isolated_home,
            "SELECT content FROM messages WHERE session_id = ? ORDER BY session_seq",
            new_id,
        )
    ]  # fmt: skip
    assert messages[0] == "one" and messages[-1] == "did one"
    (restored,) = query(
        isolated_home,
        "SELECT data FROM events WHERE session_id = ? AND type = 'workspace.restored'",
        new_id,
    )
    data = json.loads(restored[0])
    assert data["skipped"] == [str(work / "c.txt")]
    assert sorted(Path(p).name for p in data["restored"]) == ["a.txt", "b.txt", "d.txt"]


def test_files_only_and_conversation_only_do_one_half(session, isolated_home):
    work, session_id, ends, states = session
    sessions_before = len(query(isolated_home, "SELECT id FROM sessions"))
    done = run("rewind", session_id, "--at", str(ends[1]), "--yes", "--files-only")
    assert done.exit_code == 0, done.output
    assert _state(work) == dict(states["two"], **{"ignored.log": b"log\n"})
    assert len(query(isolated_home, "SELECT id FROM sessions")) == sessions_before
    again = run("rewind", session_id, "--at", str(ends[0]), "--yes", "--conversation-only")
    assert again.exit_code == 0
    assert _state(work) == dict(states["two"], **{"ignored.log": b"log\n"})
    assert len(query(isolated_home, "SELECT id FROM sessions")) == sessions_before + 1


def test_bad_rewinds_are_one_line_errors(session):
    _, session_id, _, _ = session
    assert run("rewind", session_id, "--at", "0", "--yes").exit_code == 2
    both = run("rewind", session_id, "--at", "3", "--files-only", "--conversation-only")
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_a_command_outside_a_git_work_tree_takes_no_snapshot(isolated_home, tmp_path):
    with ScriptedServer() as server:
        server.push(ToolCalls(Call("bash", {"command": "echo x > made.txt"})), Text("ok"))
        done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert query(isolated_home, "SELECT count(*) FROM checkpoints") == [(0,)]
    assert store is not None


def test_rewind_in_the_interactive_session_lists_turns_asks_and_switches(monkeypatch, tmp_path):
    from leharness import projections

    from .test_repl import drive

    (tmp_path / "notes.txt").write_text("v0\n")
    edit = Call("edit_file", {"path": "notes.txt", "old_string": "v0", "new_string": "v1"})
    script = [Text("one"), ToolCalls(edit), Text("two")]
    lines = ["first", "second", "/rewind", "/rewind 2", "/rewind 2 yes", "/exit"]
    with ScriptedServer(script) as server:
        repl, screen = drive(lines, server, monkeypatch)
    assert "1  (event 2)  first" in screen and "second" in screen
    assert "Type /rewind 2 yes to do it." in screen
    assert "-v1\n+v0" in screen.replace("\r", "")
    assert (tmp_path / "notes.txt").read_text() == "v0\n"
    conn = repl.active.loop.conn
    prompts = [m.content for m in projections.all_messages(conn, repl.active.session_id)]
    assert prompts == ["first", "one"]
    assert "rewound to before turn 2" in screen


def test_a_restored_file_keeps_its_mode_or_gets_the_default_one(tmp_path):
    """Rewind writes as write_file does: a file that is gone comes back with the mode a new
    file gets (not the temporary file's 0600), an existing one keeps its own."""
    import os
    import stat

    from leharness.tools.rewind import _write

    umask = os.umask(0)
    os.umask(umask)
    gone = tmp_path / "sub" / "gone.txt"
    _write(gone, b"back\n")
    assert gone.read_bytes() == b"back\n"
    assert stat.S_IMODE(gone.stat().st_mode) == 0o666 & ~umask
    script = tmp_path / "run.sh"
    script.write_text("old\n")
    script.chmod(0o750)
    _write(script, b"new\n")
    assert script.read_bytes() == b"new\n" and stat.S_IMODE(script.stat().st_mode) == 0o750
