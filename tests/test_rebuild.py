"""Invariant 2: projections are a pure function of events.

For random valid event sequences over several sessions (including forks),
rebuilding every projection from the events gives the live rows exactly.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leharness import store

from .util import snapshot

_ids = itertools.count()
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


class SessionModel:
    """What a valid next event may be for one session."""

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.pending_calls: list[str] = []
        self.running_tasks: list[str] = []
        self.finished_tasks: list[str] = []

    def fresh(self, prefix: str) -> str:
        # Unique across sessions: a fork already holds its source's ids.
        return f"{prefix}{next(_ids)}"


def next_payload(data: st.DataObject, s: SessionModel) -> dict:
    choices = ["auto", "step", "model", "failed", "cancelled", "artifact", "finish"]
    choices += ["task_start", "compact", "compact_tier", "summary"]
    if s.pending_calls:
        choices += ["tool_start", "tool_done", "tool_fail"]
    else:  # a user message only once every call has its result (a trigger guards it)
        choices += ["prompt"]
    if s.running_tasks:
        choices += ["task_done", "task_fail", "task_cancel"]
    if s.finished_tasks:
        choices += ["deliver"]
    kind = data.draw(st.sampled_from(choices))
    if kind == "prompt":
        return {"type": "invocation.received", "text": data.draw(texts)}
    if kind == "auto":
        return {"type": "invocation.auto"}
    if kind == "step":
        return {"type": "step.started", "step": data.draw(st.integers(1, 50)), "model": "m"}
    if kind == "model":
        calls = [s.fresh("call") for _ in range(data.draw(st.integers(0, 3)))]
        s.pending_calls += calls
        return {
            "type": "model.completed",
            "text": data.draw(texts),
            "reasoning": data.draw(texts),
            "tool_calls": [
                {"id": c, "name": "bash", "arguments": json.dumps({"c": c})} for c in calls
            ],
            "usage": {"prompt_tokens": data.draw(st.integers(0, 10**6)), "completion_tokens": 3},
        }
    if kind == "failed":
        return {"type": "model.failed", "error": data.draw(texts), "attempts": 3}
    if kind == "cancelled":
        return {"type": "model.cancelled", "text": data.draw(texts)}
    if kind == "artifact":
        return {
            "type": "artifact.created",
            "artifact_id": s.fresh("art"),
            "kind": "tool_output",
            "path": "/tmp/x",
            "bytes": data.draw(st.integers(0, 10**9)),
            "sha256": "0" * 64,
        }
    if kind == "finish":
        reason = data.draw(
            st.sampled_from(["no_tool_calls", "max_steps", "model_failed", "cancelled"])
        )
        return {"type": "agent.finished", "reason": reason}
    if kind == "compact":
        hide = data.draw(st.integers(0, 80))
        details = {"hide_through_seq": hide}
        if data.draw(st.booleans()):
            details["hide_from_seq"] = data.draw(st.integers(0, 80))
        return {"type": "compaction.completed", "tier": "T6", "details": details}
    if kind == "compact_tier":
        low, high = sorted(data.draw(st.lists(st.integers(0, 80), min_size=2, max_size=2)))
        tier = data.draw(st.sampled_from(["T1", "T2", "T3"]))
        details = {
            "T1": {"from_seq": low, "drop_reasoning_through_seq": high},
            "T2": {"moved": [{"seq": high, "artifact_id": "a", "stub": data.draw(texts)}]},
            "T3": {"from_seq": low, "drop_results_through_seq": high},
        }[tier]
        return {"type": "compaction.completed", "tier": tier, "details": details}
    if kind == "summary":
        low, high = sorted(data.draw(st.lists(st.integers(1, 80), min_size=2, max_size=2)))
        return {"type": "compaction.summary", "from_seq": low, "to_seq": high,
                "summary": data.draw(texts), "text": data.draw(texts)}  # fmt: skip
    if kind == "task_start":
        task_id = s.fresh("task")
        s.running_tasks.append(task_id)
        return {"type": "task.started", "task_id": task_id, "kind": "bash", "command": "sleep 1"}
    if kind in ("tool_start", "tool_done", "tool_fail"):
        call = data.draw(st.sampled_from(s.pending_calls))
        if kind == "tool_start":
            return {"type": "tool.started", "call_id": call, "name": "bash"}
        s.pending_calls.remove(call)
        if kind == "tool_done":
            return {
                "type": "tool.completed",
                "call_id": call,
                "name": "bash",
                "result": data.draw(texts),
            }
        return {"type": "tool.failed", "call_id": call, "name": "bash", "error": data.draw(texts)}
    if kind in ("task_done", "task_fail", "task_cancel"):
        task_id = data.draw(st.sampled_from(s.running_tasks))
        s.running_tasks.remove(task_id)
        s.finished_tasks.append(task_id)
        if kind == "task_done":
            return {"type": "task.completed", "task_id": task_id, "summary": data.draw(texts)}
        if kind == "task_fail":
            return {"type": "task.failed", "task_id": task_id, "exit_code": 3, "error": "exit 3"}
        return {"type": "task.cancelled", "task_id": task_id, "reason": "parent"}
    delivered = data.draw(st.lists(st.sampled_from(s.finished_tasks), min_size=1, unique=True))
    for task_id in delivered:
        s.finished_tasks.remove(task_id)
    return {"type": "task.delivered", "task_ids": delivered, "text": "[background task] done"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rebuild_reproduces_the_live_projections(data):
    with tempfile.TemporaryDirectory() as folder:
        conn = store.open_store(Path(folder) / "s.db")
        sessions = [
            SessionModel(store.create_session(conn)) for _ in range(data.draw(st.integers(1, 3)))
        ]
        for _ in range(data.draw(st.integers(0, 60))):
            if data.draw(st.integers(0, 30)) == 0:
                source = data.draw(st.sampled_from(sessions))
                at = data.draw(st.integers(1, store.last_seq(conn, source.id)))
                sessions.append(SessionModel(store.fork(conn, source.id, at)))
                continue
            session = data.draw(st.sampled_from(sessions))
            store.append(conn, session.id, next_payload(data, session))
        live = snapshot(conn)
        replayed = store.rebuild(conn)
        assert replayed == conn.execute("SELECT count(*) FROM events").fetchone()[0]
        assert snapshot(conn) == live
        conn.close()


def test_rebuild_restores_projection_rows_that_were_damaged(db):
    session_id = store.create_session(db)
    store.append(db, session_id, {"type": "invocation.received", "text": "hello"})
    live = snapshot(db)
    db.execute("UPDATE sessions SET title = 'tampered'")
    db.execute("DELETE FROM messages")
    assert snapshot(db) != live
    store.rebuild(db)
    assert snapshot(db) == live
