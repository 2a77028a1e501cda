"""Bad input from the model, the provider and the tools: each has a clear outcome.

Cases already pinned elsewhere (see the table in the README's "Bad input"
section): invalid JSON arguments, wrong argument types and unknown tools
(test_loop, test_e2e), reused call ids across replies (test_loop), a stream
cut once then retried, 429 then success, 500 repeatedly and 401 (test_e2e),
non-UTF-8 files in read_file (test_core_tools), a deleted cwd in the tools
(test_confinement).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import resource
import subprocess
from pathlib import Path

import pytest

from leharness import projections, store
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall
from leharness.testing import Call, Cut, Hang, HttpError, ScriptedServer, Text, ToolCalls
from leharness.tools import default_registry
from leharness.tools.artifacts import locate

from .e2e_helpers import LH, event_types, lh_env, query, run_lh
from .loop_helpers import make_session


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


def events_of(home: Path, kind: str) -> list[dict]:
    rows = query(home, "SELECT data FROM events WHERE type = ? ORDER BY seq", kind)
    return [json.loads(data) for (data,) in rows]


# -- from the model -----------------------------------------------------------


@pytest.mark.parametrize("reply", ["", "  \n\t "])
def test_an_empty_or_blank_reply_ends_the_run_and_says_so(server, isolated_home, reply):
    server.push(Text(reply), Text("second time lucky"))
    env = lh_env(isolated_home, server.base_url)
    done = run_lh("hello?", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert "(the model returned an empty answer)" in done.stderr
    assert events_of(isolated_home, "agent.finished") == [
        {"reason": "no_tool_calls", "text": reply}
    ]
    again = run_lh("-c", "try again", env=env)  # the session stays usable
    assert again.stdout.strip() == "second time lucky"
    roles = [m["role"] for m in server.requests[1].messages]
    assert roles[:2] == ["system", "user"] and roles[-1] == "user"


def test_a_call_id_reused_within_one_reply_gets_a_fresh_id(server, isolated_home):
    server.push(
        ToolCalls(
            Call("bash", {"command": "echo one"}, id="same"),
            Call("bash", {"command": "echo two"}, id="same"),
        ),
        Text("done"),
    )
    assert run_lh("go", env=lh_env(isolated_home, server.base_url)).returncode == 0
    ids = [m["tool_call_id"] for m in server.requests[1].messages if m["role"] == "tool"]
    assert ids[0] == "same" and ids[1] != "same" and len(set(ids)) == 2
    asked = [c["id"] for c in server.requests[1].messages[2]["tool_calls"]]
    assert asked == ids  # each call pairs with exactly one result


def test_a_stream_cut_every_time_fails_cleanly(server, isolated_home):
    server.push(*[Cut(Text("partial answer " * 20), 3)] * 3)
    done = run_lh("go", env=lh_env(isolated_home, server.base_url, LEHARNESS_RETRIES="2"))
    assert done.returncode == 1
    (failed,) = events_of(isolated_home, "model.failed")
    assert failed["kind"] == "stream" and failed["attempts"] == 3
    assert event_types(isolated_home)[-2:] == ["model.failed", "agent.finished"]
    assert events_of(isolated_home, "model.completed") == []  # no half answer stored


# -- from the provider ----------------------------------------------------------


def test_a_timeout_is_retried(server, isolated_home):
    server.push(Hang(5), Text("on time"))
    env = lh_env(isolated_home, server.base_url, LEHARNESS_TIMEOUT_S="0.5")
    done = run_lh("go", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "on time"
    assert "timed out" in done.stderr and "retrying" in done.stderr
    assert events_of(isolated_home, "model.completed")[0]["attempts"] == 2


def test_timeouts_every_time_fail_with_a_clear_message(server, isolated_home):
    server.push(Hang(5), Hang(5))
    env = lh_env(isolated_home, server.base_url, LEHARNESS_TIMEOUT_S="0.5", LEHARNESS_RETRIES="1")
    done = run_lh("go", env=env)
    assert done.returncode == 1
    (failed,) = events_of(isolated_home, "model.failed")
    assert failed["kind"] == "timeout" and failed["attempts"] == 2
    assert "timed out" in failed["error"]


CONTEXT_ERROR = HttpError(
    400,
    "This model's maximum context length is 8192 tokens; your messages resulted in 9000",
    code="context_length_exceeded",
)


def test_a_context_length_error_without_compaction_is_clear_and_not_retried(server, isolated_home):
    server.push(CONTEXT_ERROR)
    done = run_lh("go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 1
    assert len(server.requests) == 1
    (failed,) = events_of(isolated_home, "model.failed")
    assert failed["kind"] == "context_length"
    assert "the prompt is too long" in failed["error"] and "8192" in failed["error"]


@pytest.mark.skipif(
    importlib.util.find_spec("leharness.loop.compaction") is None,
    reason="compaction (T6) is built on another branch: leharness.loop.compaction is missing",
)
def test_a_context_length_error_compacts_then_retries_once(isolated_home):
    answered = {"requests": 0, "context_errors": 0}

    def responder(body):
        answered["requests"] += 1
        if answered["requests"] == 3:  # the third prompt's first request is "too long"
            answered["context_errors"] += 1
            return CONTEXT_ERROR
        return Text("fits now" if answered["requests"] > 3 else f"answer {answered['requests']}")

    with ScriptedServer(responder=responder) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("first " + "x" * 2000, env=env).returncode == 0
        assert run_lh("-c", "second " + "y" * 2000, env=env).returncode == 0
        done = run_lh("-c", "third", env=env)
    assert done.returncode == 0, done.stderr
    assert answered["context_errors"] == 1
    assert any(t.startswith("compaction.") for t in event_types(isolated_home))
    assert events_of(isolated_home, "model.completed")[-1]["text"] == "fits now"
    assert [f["kind"] for f in events_of(isolated_home, "model.failed")] == ["context_length"]


# -- from the tools -------------------------------------------------------------


def bash_then_done(command: str) -> RecordedModel:
    call = ToolCall(id="c0", name="bash", arguments=json.dumps({"command": command}))
    return RecordedModel([ModelCompleted(tool_calls=[call]), ModelCompleted(text="done")])


def run(session: runner.LoopSession) -> runner.Result:
    return asyncio.run(runner.run_invocation(session, "go"))


def test_200_mb_of_output_keeps_memory_bounded(isolated_home):
    model = bash_then_done("head -c 200000000 /dev/zero | tr '\\0' 'a'; echo; echo the-end")
    session = make_session(model, tools=default_registry())
    session.home = isolated_home
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert run(session).reason == "no_tool_calls"
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"memory grew by {grown_mib:.0f} MiB"
    (artifact,) = projections.artifacts(session.conn, session.session_id)
    assert artifact.bytes < 2 * 1024 * 1024
    data = locate(isolated_home, artifact.path).read_bytes()
    assert b"bytes of output dropped" in data and data.endswith(b"the-end\n[exit: 0]")
    tool_message = next(m for m in model.requests[1] if m["role"] == "tool")
    assert tool_message["content"].startswith("[output too large to show:")


def test_binary_output_is_shown_with_replacements_and_a_note(isolated_home):
    model = bash_then_done("printf 'head\\000\\377\\376tail'")
    session = make_session(model, tools=default_registry())
    run(session)
    (call,) = projections.tool_calls(session.conn, session.session_id)
    assert call.status == "completed"
    tool_message = next(m for m in model.requests[1] if m["role"] == "tool")
    content = tool_message["content"]
    assert content.startswith("head\ufffd\ufffd\ufffdtail")
    assert "[binary output:" in content and "\0" not in content


def test_non_utf8_files_grep_and_edit_keep_their_bytes(tmp_path):
    from leharness.tools import ToolContext

    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9 = 1\nother = 2\n")
    ctx = ToolContext(cwd=tmp_path)
    registry = default_registry()

    def call(name, **args):
        return asyncio.run(registry.invoke(name, json.dumps(args), ctx))

    assert call("grep", pattern="caf") == "latin1.txt:1:caf\ufffd = 1"
    call("edit_file", path="latin1.txt", old_string="other = 2", new_string="other = 3")
    assert path.read_bytes() == b"caf\xe9 = 1\nother = 3\n"  # the é byte is untouched


def test_a_working_directory_deleted_mid_session(isolated_home, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    steps = [
        [("bash", {"command": f"rm -rf {work}"})],
        [("read_file", {"path": "a.txt"}), ("bash", {"command": "ls"})],
    ]
    replies = [
        ModelCompleted(
            tool_calls=[
                ToolCall(id=f"s{n}c{i}", name=name, arguments=json.dumps(args))
                for i, (name, args) in enumerate(step)
            ]
        )
        for n, step in enumerate(steps)
    ]
    model = RecordedModel([*replies, ModelCompleted(text="the folder is gone")])
    session = make_session(model, tools=default_registry(), cwd=work)
    assert run(session).reason == "no_tool_calls"
    rows = projections.tool_calls(session.conn, session.session_id)
    assert [(r.status, r.error_kind) for r in rows] == [
        ("completed", None),
        ("failed", "bad_cwd"),
        ("failed", "bad_cwd"),
    ]
    assert "does not exist" in (rows[1].error or "")


def test_lh_started_in_a_deleted_directory_says_so(isolated_home, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1")
    script = f"import os, subprocess, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
    script += f"sys.exit(subprocess.run([{LH!r}, 'hi'], stdin=subprocess.DEVNULL).returncode)"
    done = subprocess.run(
        [str(Path(LH).with_name("python")), "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "the current directory no longer exists" in done.stderr
    assert "Traceback" not in done.stderr


def _limit_file_size() -> None:
    # A real "disk full" for this process: writes past 900 KiB fail with EFBIG
    # (Python ignores SIGXFSZ, so the write returns the error instead of killing lh).
    resource.setrlimit(resource.RLIMIT_FSIZE, (900 * 1024, 900 * 1024))


def test_a_full_disk_while_writing_an_artifact(server, isolated_home):
    server.push(
        ToolCalls(Call("bash", {"command": "python3 -c \"print('y' * 1000000)\""})),
        Text("the output could not be kept"),
    )
    done = subprocess.run(
        [LH, "go"],
        env=lh_env(isolated_home, server.base_url),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 0, done.stderr
    (failed,) = events_of(isolated_home, "tool.failed")
    assert failed["kind"] == "artifact_error"
    assert "could not be saved as an artifact" in failed["error"]
    assert "File too large" in failed["error"]
    assert events_of(isolated_home, "artifact.created") == []
    leftovers = [p for p in (isolated_home / "artifacts").rglob("*") if p.is_file()]
    assert leftovers == []  # no half-written artifact
    assert event_types(isolated_home)[-1] == "agent.finished"
    with store.open_store(isolated_home / "sessions.db") as conn:  # still whole and valid
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_under_a_background_log_keeps_the_output_in_memory():
    import errno

    from leharness.tools.bash import OutputSink

    sink = OutputSink()
    sink.write(b"before\n")
    sink.attach(Path("/dev/full"))  # every write fails with ENOSPC, like a full disk
    sink.write(b"after\n")
    sink.close_file()
    assert sink.file_error is not None and sink.file_error.errno == errno.ENOSPC
    assert sink.text() == "before\nafter\n"
