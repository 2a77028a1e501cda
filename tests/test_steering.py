"""Steering: messages the user types during a run reach the model at the next step
boundary, each recorded as an invocation.received with kind "steering"."""

from __future__ import annotations

import asyncio

from leharness import projections, store
from leharness.loop import runner
from leharness.replay.model import RecordedModel

from .loop_helpers import RecordingChannel, make_session, types
from .test_loop import reply
from .util import ONE_TOOL_ROUND_TRIP


def typed_during(session: runner.LoopSession, when: str, texts: list[str]) -> None:
    """Queue `texts` when the first event of type `when` is recorded, as the REPL does."""
    queue: list[str] = []

    def on_event(event):
        if event is not None and event.type == when and texts:
            queue.extend(texts)
            texts.clear()

    def take() -> list[str]:
        taken = queue[:]
        queue.clear()
        return taken

    session.channel = RecordingChannel(on_event)
    session.steering = take


def test_a_message_typed_during_a_tool_reaches_the_next_model_call():
    model = RecordedModel([reply("", ("echo", {"text": "hi"})), reply("noted, in French")])
    session = make_session(model)
    typed_during(session, "tool.started", ["answer in French"])
    result = asyncio.run(runner.run_invocation(session, "go"))
    assert result.reason == "no_tool_calls"
    steered = [*ONE_TOOL_ROUND_TRIP[:6], "invocation.received", *ONE_TOOL_ROUND_TRIP[6:]]
    assert types(session) == steered
    steering = list(store.read_events(session.conn, session.session_id))[6]
    assert (steering.data.text, steering.data.kind) == ("answer in French", "steering")
    second = model.requests[1]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "user"]
    assert second[-1]["content"] == "answer in French"
    row = projections.get_session(session.conn, session.session_id)
    assert (row.status, row.title) == ("idle", "go")  # the first prompt stays the title


def test_a_message_typed_during_the_final_answer_gets_one_more_step():
    model = RecordedModel([reply("a long final answer"), reply("and the follow-up")])
    session = make_session(model)
    typed_during(session, "step.started", ["one more thing", "and another"])
    result = asyncio.run(runner.run_invocation(session, "go"))
    assert (result.reason, result.text) == ("no_tool_calls", "and the follow-up")
    assert types(session).count("step.started") == 2
    assert [m["content"] for m in model.requests[1][-2:]] == ["one more thing", "and another"]


def test_without_steering_nothing_changes():
    session = make_session(RecordedModel([reply("done")]))
    asyncio.run(runner.run_invocation(session, "go"))
    assert types(session).count("invocation.received") == 1
