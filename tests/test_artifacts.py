"""Outputs over 8 KiB live on disk as artifacts; the model sees a stub and pages with read_file."""

from __future__ import annotations

import asyncio
import hashlib
import json
from contextlib import closing

from leharness import projections, store
from leharness.app.doctor import artifact_problems
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall
from leharness.tools import default_registry
from leharness.tools.artifacts import locate

from .loop_helpers import make_session


def bash_then_done(command: str) -> RecordedModel:
    call = ToolCall(id="c0", name="bash", arguments=json.dumps({"command": command}))
    return RecordedModel([ModelCompleted(tool_calls=[call]), ModelCompleted(text="done")])


def run(session: runner.LoopSession) -> None:
    asyncio.run(runner.run_invocation(session, "go"))


def test_a_24_kib_output_becomes_an_artifact_with_a_stub(isolated_home):
    model = bash_then_done("python3 -c \"print('x' * 24575)\"")
    session = make_session(model, tools=default_registry())
    session.home = isolated_home
    run(session)
    (artifact,) = projections.artifacts(session.conn, session.session_id)
    # Recorded relative to the home, so a moved home still finds it.
    assert artifact.path == f"artifacts/{session.session_id}/{artifact.artifact_id}"
    path = locate(isolated_home, artifact.path)
    assert path.parent == isolated_home / "artifacts" / session.session_id
    data = path.read_bytes()
    assert artifact.bytes == len(data) > 24 * 1024
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert data.startswith(b"x" * 100) and data.endswith(b"[exit: 0]")
    (call,) = projections.tool_calls(session.conn, session.session_id)
    assert call.artifact_id == artifact.artifact_id
    tool_message = next(m for m in model.requests[1] if m["role"] == "tool")
    assert tool_message["content"].startswith("[output too large to show: ")
    assert str(path) in tool_message["content"] and "read_file" in tool_message["content"]
    assert len(tool_message["content"]) < 1000
    # The model pages through it with read_file.
    page = asyncio.run(
        default_registry().invoke(
            "read_file", json.dumps({"path": str(path), "limit": 1}), session_ctx(session)
        )
    )
    assert "lines 1-1 of 2; next offset: 2" in page


def session_ctx(session):
    from leharness.tools import ToolContext

    return ToolContext(cwd=session.cwd)


def test_small_outputs_stay_inline(isolated_home):
    model = bash_then_done("printf '%0100d' 0")
    session = make_session(model, tools=default_registry())
    run(session)
    assert projections.artifacts(session.conn, session.session_id) == []
    tool_message = next(m for m in model.requests[1] if m["role"] == "tool")
    assert tool_message["content"] == "0" * 100 + "\n[exit: 0]"


def test_an_artifact_that_cannot_be_written_fails_the_call_cleanly(isolated_home):
    (isolated_home / "artifacts").parent.mkdir(parents=True, exist_ok=True)
    (isolated_home / "artifacts").write_text("a file where the folder should be")
    model = bash_then_done("python3 -c \"print('y' * 20000)\"")
    session = make_session(model, tools=default_registry())
    session.home = isolated_home
    run(session)
    types = [e.type for e in store.read_events(session.conn, session.session_id)]
    assert "artifact.created" not in types and types.count("tool.failed") == 1
    failed = next(
        e for e in store.read_events(session.conn, session.session_id) if e.type == "tool.failed"
    )
    assert failed.data.kind == "artifact_error" and "could not be saved" in failed.data.error


def test_a_moved_home_still_finds_its_artifacts(isolated_home, tmp_path):
    model = bash_then_done("python3 -c \"print('y' * 20000)\"")
    session = make_session(model, tools=default_registry())
    session.home = isolated_home
    run(session)
    session.conn.close()
    moved = tmp_path / "elsewhere" / "home"
    moved.parent.mkdir()
    isolated_home.rename(moved)
    with closing(store.open_store(moved / "sessions.db")) as conn:
        (artifact,) = projections.artifacts(conn, session.session_id)
        assert locate(moved, artifact.path).read_bytes().startswith(b"y" * 100)
        assert artifact_problems(conn) == []  # doctor finds it under the moved home


def test_an_old_absolute_path_still_resolves_before_and_after_a_move(db, isolated_home, tmp_path):
    session_id = store.create_session(db)
    folder = isolated_home / "artifacts" / session_id
    folder.mkdir(parents=True)
    (folder / "a1").write_bytes(b"old style")
    old_style = {
        "type": "artifact.created",
        "artifact_id": "a1",
        "kind": "tool_output",
        "path": str(folder / "a1"),  # what events recorded before paths were relative
        "bytes": 9,
        "sha256": hashlib.sha256(b"old style").hexdigest(),
    }
    store.append(db, session_id, old_style)
    (row,) = projections.artifacts(db, session_id)
    assert locate(isolated_home, row.path) == folder / "a1"
    assert artifact_problems(db) == []
    db.close()
    moved = tmp_path / "moved-home"
    isolated_home.rename(moved)
    assert locate(moved, row.path).read_bytes() == b"old style"
    with closing(store.open_store(moved / "sessions.db")) as conn:
        assert artifact_problems(conn) == []
    outside = tmp_path / "kept-outside.txt"  # an absolute path outside any home stays as is
    assert locate(moved, str(outside)) == outside
