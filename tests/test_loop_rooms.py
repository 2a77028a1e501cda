"""Where the loop's parts live: the recorded model is one class in leharness.replay,
the loop never imports replay, and compaction imports the session, not the runner."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from leharness.loop import runner
from leharness.replay import rerun
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ModelFailed

from .loop_helpers import make_session


def loaded_after(statement: str) -> set[str]:
    """The leharness modules a fresh interpreter holds after running `statement`."""
    names = "' '.join(m for m in sys.modules if m.startswith('leharness'))"
    code = f"import sys; {statement}; print({names})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_loop_imports_no_replay_and_compaction_no_runner():
    loop = loaded_after("import leharness.loop.runner, leharness.loop.compaction")
    assert not {m for m in loop if m.startswith("leharness.replay")}
    compaction = loaded_after("import leharness.loop.compaction")
    assert "leharness.loop.runner" not in compaction
    assert "leharness.loop.session" in compaction


def test_one_recorded_model_serves_the_demo_the_tests_and_the_replay(isolated_home):
    session = make_session(RecordedModel([ModelFailed(error="boom", kind="server", attempts=1)]))
    result = asyncio.run(runner.run_invocation(session, "go"))
    assert result.reason == "model_failed" and str(result.error) == "boom"
    recording = rerun.load_recording(session.conn, session.session_id)
    assert type(rerun.recorded_model(recording)) is RecordedModel


def test_the_recorded_model_runs_out_loudly(isolated_home):
    session = make_session(RecordedModel([ModelCompleted(text="only one")]))
    assert asyncio.run(runner.run_invocation(session, "go")).text == "only one"
    result = asyncio.run(runner.run_invocation(session, "again"))
    assert result.reason == "model_failed"
    assert str(result.error) == "the recording has no reply left (it held 1)"
