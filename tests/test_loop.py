"""The loop's semantics with an in-process replay model: steps, limits,
tool failures, cancellation. (The HTTP path is covered in test_e2e.py.)"""

from __future__ import annotations

import asyncio
import json

from leharness import projections, store
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted, ToolCall

from .loop_helpers import Record, RecordingChannel, make_session, types
from .util import ONE_TOOL_ROUND_TRIP


def reply(text: str = "", *calls: tuple[str, dict | str]) -> ModelCompleted:
    tool_calls = [
        ToolCall(
            id=f"c{i}", name=name, arguments=args if isinstance(args, str) else json.dumps(args)
        )
        for i, (name, args) in enumerate(calls)
    ]
    return ModelCompleted(text=text, tool_calls=tool_calls)


def run(session: runner.LoopSession, text: str | None = "go") -> runner.Result:
    return asyncio.run(runner.run_invocation(session, text))


def test_one_tool_round_trip_event_sequence():
    session = make_session(RecordedModel([reply("", ("echo", {"text": "hi"})), reply("all done")]))
    result = run(session)
    assert result.reason == "no_tool_calls" and result.text == "all done"
    assert types(session) == ONE_TOOL_ROUND_TRIP
    roles = [m.role for m in projections.visible_messages(session.conn, session.session_id)]
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_second_request_holds_the_whole_conversation():
    model = RecordedModel([reply("", ("echo", {"text": "hi"})), reply("done")])
    run(make_session(model))
    second = model.requests[1]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["tool_calls"][0]["function"] == {"name": "echo", "arguments": '{"text": "hi"}'}
    assert second[3] == {"role": "tool", "tool_call_id": "c0", "content": "echo: hi"}


def test_max_steps_stops_the_loop():
    looping = [reply("", ("echo", {"text": str(i)})) for i in range(5)]
    session = make_session(RecordedModel(looping), max_steps=3)
    assert run(session).reason == "max_steps"
    assert types(session).count("step.started") == 3
    assert types(session)[-1] == "agent.finished"
    finished = list(store.read_events(session.conn, session.session_id))[-1]
    assert finished.data.reason == "max_steps"


def test_model_failure_is_recorded_and_finishes():
    session = make_session(RecordedModel([]))
    result = run(session)
    assert result.reason == "model_failed" and result.error.kind == "exhausted"
    assert types(session)[-2:] == ["model.failed", "agent.finished"]


def test_tool_errors_become_tool_failed_and_the_model_gets_one_more_turn():
    calls = [
        ("boom", {}),
        ("echo", "{not json"),
        ("nope", {}),
        ("refuse", {}),
        ("echo", {"text": 5}),
    ]
    model = RecordedModel([reply("", *calls), reply("recovered")])
    session = make_session(model)
    assert run(session).reason == "no_tool_calls"
    failures = [
        e.data
        for e in store.read_events(session.conn, session.session_id)
        if e.type == "tool.failed"
    ]
    assert [(f.call_id, f.kind) for f in failures] == [
        ("c0", "exception"),
        ("c1", "bad_arguments"),
        ("c2", "unknown_tool"),
        ("c3", "error"),
        ("c4", "bad_arguments"),
    ]
    assert "RuntimeError: the tool broke" in failures[0].error
    assert "not valid JSON" in failures[1].error
    assert "unknown tool 'nope'" in failures[2].error and "echo" in failures[2].error
    tool_messages = [m for m in model.requests[1] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["c0", "c1", "c2", "c3", "c4"]
    assert all(m["content"].startswith("Error: ") for m in tool_messages)


def test_cancel_before_the_model_call():
    holder = {}

    def cancel_on_step(event):
        if event is not None and event.type == "step.started":
            holder["task"].cancel()

    model = RecordedModel([reply("never")])
    session = make_session(model, channel=RecordingChannel(cancel_on_step))

    async def main():
        holder["task"] = asyncio.ensure_future(runner.run_invocation(session, "go"))
        return await holder["task"]

    assert asyncio.run(main()).reason == "cancelled"
    assert types(session)[-3:] == ["step.started", "model.cancelled", "agent.finished"]
    assert model.requests == []


def test_cancel_during_the_stream_keeps_the_partial_text():
    holder = {"deltas": 0}

    def cancel_after_two_deltas(event):
        if event is None:
            holder["deltas"] += 1
            if holder["deltas"] == 2:
                holder["task"].cancel()

    text = "The first part of a long answer that will be cut off somewhere."
    session = make_session(
        RecordedModel([reply(text)]), channel=RecordingChannel(cancel_after_two_deltas)
    )

    async def main():
        holder["task"] = asyncio.ensure_future(runner.run_invocation(session, "go"))
        return await holder["task"]

    assert asyncio.run(main()).reason == "cancelled"
    cancelled = [
        e
        for e in store.read_events(session.conn, session.session_id)
        if e.type == "model.cancelled"
    ]
    partial = cancelled[0].data.text
    assert partial and text.startswith(partial) and partial != text
    # The partial text is replayed as assistant text on the next request.
    follow = RecordedModel([reply("continuing")])
    session.model = follow
    assert run(session, "go on").reason == "no_tool_calls"
    assert {"role": "assistant", "content": partial} in follow.requests[0]


def test_cancel_inside_two_running_tools_keeps_pairing_valid():
    Record.ran = []
    holder = {}

    def cancel_on_tool_start(event):
        if event is not None and event.type == "tool.started":
            asyncio.get_running_loop().call_later(0.05, holder["task"].cancel)

    first = reply("", ("sleep", {"seconds": 30}), ("sleep", {"seconds": 30}))
    session = make_session(RecordedModel([first]), channel=RecordingChannel(cancel_on_tool_start))

    async def main():
        holder["task"] = asyncio.ensure_future(runner.run_invocation(session, "go"))
        return await holder["task"]

    assert asyncio.run(main()).reason == "cancelled"
    assert sorted(Record.ran) == ["c0", "c1"]  # the calls of one reply run together
    failed = [
        e.data
        for e in store.read_events(session.conn, session.session_id)
        if e.type == "tool.failed"
    ]
    assert [(f.call_id, f.kind) for f in failed] == [("c0", "interrupted"), ("c1", "interrupted")]
    follow = RecordedModel([reply("ok")])
    session.model = follow
    run(session, "again")
    request = follow.requests[0]
    call_ids = [c["id"] for m in request if m.get("tool_calls") for c in m["tool_calls"]]
    result_ids = [m["tool_call_id"] for m in request if m["role"] == "tool"]
    assert sorted(call_ids) == sorted(result_ids) == ["c0", "c1"]


def test_unanswered_calls_left_by_a_crash_get_an_interrupted_result_on_resume():
    session = make_session(RecordedModel([]))
    store.append(session.conn, session.session_id, {"type": "invocation.received", "text": "x"})
    store.append(
        session.conn,
        session.session_id,
        {
            "type": "model.completed",
            "tool_calls": [{"id": "lost", "name": "echo", "arguments": "{}"}],
        },
    )
    follow = RecordedModel([reply("fine")])
    session.model = follow
    run(session, "resume")
    assert projections.unanswered_tool_calls(session.conn, session.session_id) == []
    tool_messages = [m for m in follow.requests[0] if m["role"] == "tool"]
    assert tool_messages[0]["tool_call_id"] == "lost"
    assert "interrupted" in tool_messages[0]["content"]


def test_reused_and_missing_call_ids_are_replaced():
    again = reply("", ("echo", {"text": "a"}))
    model = RecordedModel([again, again, reply("end")])
    session = make_session(model)
    run(session)
    ids = [row.call_id for row in projections.tool_calls(session.conn, session.session_id)]
    assert ids[0] == "c0" and ids[1] != "c0" and len(set(ids)) == 2


def test_read_only_calls_run_together_and_record_in_call_order():
    calls = [("echo", {"text": str(i)}) for i in range(3)]
    session = make_session(RecordedModel([reply("", *calls), reply("ok")]))
    run(session)
    sequence = [
        (e.type, getattr(e.data, "call_id", None))
        for e in store.read_events(session.conn, session.session_id)
        if e.type.startswith("tool.")
    ]
    assert sequence == [
        ("tool.started", "c0"),
        ("tool.started", "c1"),
        ("tool.started", "c2"),
        ("tool.completed", "c0"),
        ("tool.completed", "c1"),
        ("tool.completed", "c2"),
    ]
