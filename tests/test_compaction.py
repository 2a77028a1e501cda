"""Compaction tiers T1–T6 in the real loop against the scripted server: the events
recorded, the prompt actually sent, and the log left untouched."""

from __future__ import annotations

import itertools
import json

import pytest

from leharness import projections, store
from leharness.loop import compaction, runner
from leharness.loop.compaction import DROPPED
from leharness.loop.prompt import build_messages
from leharness.testing import Call, HttpError, ScriptedServer, Text, ToolCalls
from leharness.tools.artifacts import locate

from .compaction_helpers import (
    BIG,
    BUDGET,
    SMALL,
    WINDOW,
    events_rows,
    main_requests,
    new_events,
    paired,
    run,
    scripted_session,
    seed,
    summariser_requests,
)
from .util import replay_into_fresh_file, snapshot

THRESHOLDS = dict(compaction.TIERS)


def tokens_at(tier: str) -> int:
    return round(THRESHOLDS[tier] * BUDGET)


def started_tiers(events: list[store.Event]) -> list[str]:
    return [e.data.tier for e in events if e.type == "compaction.started"]


def compact_at(tier: str, extra_replies: int = 0, tokens: int | None = None):
    """A seeded session whose last call reported `tier`'s threshold, then one more prompt."""
    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, tokens if tokens is not None else tokens_at(tier))
    before = events_rows(session)
    asked = len(server.requests)
    server.push(*[Text(f"SUMMARY-{i + 1}") for i in range(extra_replies)], Text("final"))
    result = run(session, "third")
    server.stop()
    assert result.reason == "no_tool_calls"
    assert events_rows(session)[: len(before)] == before  # the log is only appended to
    return session, server, server.requests[asked:], new_events(session, len(before))


def sent(request) -> list[dict]:
    return request.messages


def test_t1_drops_old_reasoning_from_the_visible_rows():
    session, _server, requests, events = compact_at("T1")
    assert started_tiers(events) == ["T1"]
    assert [e.type for e in events] == [
        "invocation.received",
        "compaction.started",
        "compaction.completed",
        "step.started",
        "model.completed",
        "agent.finished",
    ]
    assert events[1].data.pressure == 0.5 and events[1].data.details["estimated"] is False
    # The prompt builder never sends reasoning, so T1 shows in the projection rows.
    visible = projections.visible_messages(session.conn, session.session_id)
    reasoning = {m.content: m.reasoning for m in visible if m.role == "assistant" and m.content}
    assert reasoning["done one"] is None
    assert reasoning["done two"] == "pondering two"  # the two most recent turns keep it
    full = projections.all_messages(session.conn, session.session_id)
    assert [m.reasoning for m in full if m.content == "done one"] == ["pondering one"]
    assert all("pondering" not in json.dumps(sent(r)) for r in requests)


def test_just_under_a_threshold_its_tier_waits():
    _session, _server, _requests, events = compact_at("T2", tokens=tokens_at("T2") - 1)
    assert started_tiers(events) == ["T1"]


def test_t2_moves_old_large_results_into_artifacts_and_leaves_a_stub():
    session, _server, requests, events = compact_at("T2")
    assert started_tiers(events) == ["T1", "T2"]
    moved = next(e for e in events if e.type == "compaction.completed" and e.data.tier == "T2")
    (entry,) = moved.data.details["moved"]
    artifact = next(e for e in events if e.type == "artifact.created")
    assert entry["artifact_id"] == artifact.data.artifact_id
    assert locate(store.home_dir(), artifact.data.path).read_text() == f"echo: {BIG}"
    (request,) = requests
    tools = [m["content"] for m in sent(request) if m["role"] == "tool"]
    assert tools[0] == entry["stub"] and artifact.data.artifact_id in tools[0]
    assert artifact.data.path in tools[0]
    assert tools[1] == f"echo: {SMALL}"  # under 1 KiB: T2 leaves it
    assert BIG not in json.dumps([m for m in sent(request) if m["role"] == "tool"])
    assert paired(sent(request))
    original = projections.all_messages(session.conn, session.session_id)
    assert f"echo: {BIG}" in [m.content for m in original]


def test_t3_replaces_the_remaining_old_result_bodies():
    _session, _server, requests, events = compact_at("T3")
    assert started_tiers(events) == ["T1", "T2", "T3"]
    (request,) = requests
    tools = [m["content"] for m in sent(request) if m["role"] == "tool"]
    assert tools[0].startswith("[tool result moved to artifact")
    assert tools[1] == DROPPED
    assert paired(sent(request))


def test_t4_summarises_the_oldest_window_with_the_model():
    session, _server, requests, events = compact_at("T4", extra_replies=1)
    assert started_tiers(events) == ["T1", "T2", "T3", "T4"]
    summariser, main = requests
    assert "tools" not in summariser.body and summariser.body["max_tokens"] > 0
    assert "first" in summariser.messages[-1]["content"]
    summary = next(e for e in events if e.type == "compaction.summary")
    transcript = next(
        e for e in events if e.type == "artifact.created" and e.data.kind == "compaction_transcript"
    )
    assert summary.data.summary == "SUMMARY-1"
    assert summary.data.artifact_id == transcript.data.artifact_id
    # The full transcript keeps the original result, not the stub the model saw.
    assert f"echo: {BIG}" in locate(store.home_dir(), transcript.data.path).read_text()
    messages = sent(main)
    assert messages[1]["role"] == "user" and "SUMMARY-1" in messages[1]["content"]
    assert transcript.data.path in messages[1]["content"]
    assert [m["content"] for m in messages if m["role"] == "user"][1:] == ["second", "third"]
    assert "first" not in json.dumps(messages[2:])
    assert paired(messages)
    visible = projections.visible_messages(session.conn, session.session_id)
    assert visible[0].session_seq == summary.data.from_seq and visible[0].kind == "summary"
    view_rows = session.conn.execute(
        "SELECT session_seq, role, kind, content FROM transcript WHERE session_id = ? "
        "ORDER BY session_seq",
        (session.session_id,),
    ).fetchall()
    assert [tuple(r) for r in view_rows] == [
        (m.session_seq, m.role, m.kind, m.content) for m in visible
    ]  # the SQL view shows what the loop reads


def test_t5_summarises_a_second_window():
    _session, _server, requests, events = compact_at("T5", extra_replies=2)
    assert started_tiers(events) == ["T1", "T2", "T3", "T4", "T5"]
    first, second = [e.data for e in events if e.type == "compaction.summary"]
    assert first.to_seq < second.from_seq  # disjoint windows: nothing summarised twice
    assert (first.tier, second.tier) == ("T4", "T5")
    assert len(requests) == 3
    messages = sent(requests[-1])
    summaries = [m["content"] for m in messages if "SUMMARY-" in (m.get("content") or "")]
    assert [s.splitlines()[-1] for s in summaries] == ["SUMMARY-1", "SUMMARY-2"]
    assert paired(messages)
    conn = store.open_store()
    live = snapshot(conn)
    store.rebuild(conn)  # invariant 2 with every tier's events present
    assert snapshot(conn) == live


def test_a_failing_summariser_is_recorded_and_the_main_call_proceeds():
    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, tokens_at("T4"))
    before = len(events_rows(session))
    server.push(HttpError(400, "summaries are off today"), Text("final"))
    result = run(session, "third")
    server.stop()
    assert result.reason == "no_tool_calls" and result.text == "final"
    events = new_events(session, before)
    failed = next(e for e in events if e.type == "compaction.summary.failed")
    assert "summaries are off today" in failed.data.error and failed.data.tier == "T4"
    assert not [e for e in events if e.type == "compaction.summary"]
    assert "T5" not in started_tiers(events)
    messages = sent(main_requests(server)[-1])
    assert [m["content"] for m in messages if m["role"] == "user"] == ["first", "second", "third"]


def test_summaries_are_reused_across_invocations_and_never_redone():
    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, tokens_at("T4"))
    server.push(Text("SUMMARY-1"), Text("final", prompt_tokens=100))
    run(session, "third")
    server.push(Text("fourth answer", prompt_tokens=100))
    run(session, "fourth")
    server.push(Text("fifth answer"))
    run(session, "fifth")
    server.stop()
    assert len(summariser_requests(server)) == 1
    for request in main_requests(server)[-2:]:
        assert "SUMMARY-1" in request.messages[1]["content"]
    # After a restart the summary comes from the projection, not from a new call.
    reopened = store.open_events_only()
    view = projections.session_view(reopened, session.session_id)
    assert view.messages[0].kind == "summary" and "SUMMARY-1" in view.messages[0].content


def test_a_second_summary_never_covers_the_first_window_again():
    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, tokens_at("T4"))
    server.push(Text("SUMMARY-1"), Text("final", prompt_tokens=10))
    run(session, "third")
    server.push(
        ToolCalls(Call("echo", {"text": SMALL}), prompt_tokens=10),
        Text("more", prompt_tokens=tokens_at("T4")),
    )
    run(session, "fourth")
    server.push(Text("SUMMARY-2"), Text("end"))
    run(session, "fifth")
    server.stop()
    summaries = [
        e.data for e in store.read_events(session.conn, session.session_id)
        if e.type == "compaction.summary"
    ]  # fmt: skip
    assert len(summaries) >= 2
    covered = [set(range(s.from_seq, s.to_seq + 1)) for s in summaries]
    assert not set.intersection(*covered)


def test_without_usage_the_pressure_is_estimated_from_characters():
    server = ScriptedServer(report_usage=False).start()
    session = scripted_session(server)
    seed(server, session, 0)
    assert projections.get_session(session.conn, session.session_id).last_prompt_tokens is None
    view = projections.session_view(session.conn, session.session_id)
    chars = compaction.request_chars(build_messages(view), session.tools.specs())
    # A window where the estimate lands at about 0.7 of the budget: T1 and T2, not T3.
    session.context_window = round(chars / 4 / 0.7 / compaction.BUDGET_SHARE)
    before = len(events_rows(session))
    server.push(Text("final"))
    run(session, "third")
    server.stop()
    events = new_events(session, before)
    assert started_tiers(events) == ["T1", "T2"]
    started = next(e for e in events if e.type == "compaction.started")
    assert started.data.details["estimated"] is True
    assert 0.68 < started.data.pressure < 0.72


def test_the_estimate_counts_the_system_prompt_the_model_is_sent():
    """Project instructions (and the skills catalog) are part of every request: an estimate
    that left them out would let a request with a long AGENTS.md outgrow the window."""
    server = ScriptedServer(report_usage=False).start()
    session = scripted_session(server)
    seed(server, session, 0)
    view = projections.session_view(session.conn, session.session_id)
    chars = compaction.request_chars(build_messages(view), session.tools.specs())
    assert chars < 30_000  # so the instructions below fit under their 32,000-character cap
    # The conversation alone is about 0.3 of the budget: no tier would run.
    session.context_window = round(chars / 4 / 0.3 / compaction.BUDGET_SHARE)
    (session.cwd / "AGENTS.md").write_text("x" * chars)  # as long again: about 0.6
    before = len(events_rows(session))
    server.push(Text("final"))
    run(session, "third")
    server.stop()
    events = new_events(session, before)
    assert started_tiers(events) == ["T1"]
    started = next(e for e in events if e.type == "compaction.started")
    assert 0.55 < started.data.pressure < 0.65


def test_a_compaction_makes_the_last_measurement_stale_until_the_next_call():
    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, tokens_at("T3"))
    server.push(Text("final"))  # reports no chosen number: the server's own count
    run(session, "third")
    row = projections.get_session(session.conn, session.session_id)
    assert row.last_model_seq > row.compacted_seq
    server.stop()
    view = projections.session_view(session.conn, session.session_id)
    budget = compaction.Budget(WINDOW)
    assert compaction.measure(view.session, 999, budget).estimated is False
    stale = view.session.model_copy(update={"compacted_seq": row.last_model_seq + 1})
    assert compaction.measure(stale, 4_000, budget).tokens == 1_000


def test_t6_keeps_every_request_under_a_small_ceiling_whatever_the_pressure():
    server = ScriptedServer().start()
    window = 3_000  # a ceiling of 2,550 × 4 = 10,200 characters
    session = scripted_session(server, window)
    logs = []
    for i in range(5):
        server.push(
            ToolCalls(Call("echo", {"text": str(i) * 3_000}), prompt_tokens=1),
            Text(f"answer {i}", prompt_tokens=1),
        )
        logs.append(events_rows(session))
        run(session, f"prompt {i}")
    server.stop()
    final = events_rows(session)
    assert all(final[: len(log)] == log for log in logs)  # appended to, never edited
    ceiling = compaction.Budget(window).ceiling_chars
    specs = session.tools.specs()
    for request in main_requests(server):
        assert compaction.request_chars(request.messages, specs) <= ceiling
        assert paired(request.messages)
    events = list(store.read_events(session.conn, session.session_id))
    hides = [e.data.details for e in events if e.type == "compaction.completed"]
    assert hides and all(d.get("hide_through_seq") for d in hides)
    assert {e.data.tier for e in events if e.type == "compaction.started"} == {"T6"}
    last = main_requests(server)[-1].messages
    assert last[-1] == {"role": "tool", "tool_call_id": last[-2]["tool_calls"][0]["id"],
                        "content": "echo: " + "4" * 3_000}  # fmt: skip


def test_t6_makes_room_instead_of_hiding_a_turn_at_every_step():
    """Once over the ceiling, T6 hides down to FIT_SHARE of it, so the next turns fit
    as they are: the request's start stays the same and no step after a T6 needs one."""
    server = ScriptedServer().start()
    window = 3_000  # a ceiling of 10,200 characters; each round below adds ~700
    session = scripted_session(server, window)
    for i in range(30):
        server.push(
            ToolCalls(Call("echo", {"text": str(i % 10) * 300}), prompt_tokens=1),
            Text(f"answer {i}", prompt_tokens=1),
        )
        run(session, f"prompt {i}")
    server.stop()
    ceiling = compaction.Budget(window).ceiling_chars
    specs = session.tools.specs()
    sizes = [compaction.request_chars(r.messages, specs) for r in main_requests(server)]
    assert max(sizes) <= ceiling
    events = list(store.read_events(session.conn, session.session_id))
    steps_with_t6, step = [], 0
    for event in events:
        if event.type == "step.started":
            step += 1
        elif event.type == "compaction.completed" and event.data.tier == "T6":
            steps_with_t6.append(step)
            assert event.data.details["chars"] <= ceiling * compaction.FIT_SHARE
    assert len(steps_with_t6) >= 2  # the session outgrew the ceiling more than once
    gaps = [b - a for a, b in itertools.pairwise(steps_with_t6)]
    assert min(gaps) >= 4  # hiding just enough would need one every step or two


def test_t6_drops_result_bodies_when_the_latest_turn_alone_is_too_large():
    server = ScriptedServer().start()
    session = scripted_session(server, 2_000)  # ceiling 6,800 characters
    big = "z" * 7_000  # under the 8 KiB artifact limit, over the ceiling
    server.push(
        ToolCalls(Call("echo", {"text": big}), prompt_tokens=1), Text("seen", prompt_tokens=1)
    )
    run(session, "go")
    server.stop()
    second = main_requests(server)[-1].messages
    assert second[-1]["content"] == DROPPED and paired(second)
    completed = [
        e.data.details for e in store.read_events(session.conn, session.session_id)
        if e.type == "compaction.completed"
    ]  # fmt: skip
    assert completed[-1]["drop_results_through_seq"] >= completed[-1]["from_seq"]


@pytest.mark.parametrize(
    ("model", "override", "expected"),
    [
        ("gpt-4o-mini", None, 128_000),
        ("gpt-4o", None, 128_000),
        ("gpt-4-0613", None, 8_192),
        ("llama3.1:8b", None, 128_000),
        ("openai/gpt-4.1-mini", None, 1_047_576),
        ("some-local-model", None, 32_000),
        (None, None, 32_000),
        ("gpt-4o", 5_000, 5_000),
    ],
)
def test_context_windows_come_from_the_table_the_fallback_or_the_override(
    model, override, expected
):
    assert compaction.context_window(model, override) == expected


def test_forks_before_and_after_a_compaction_see_the_right_conversation(tmp_path):
    session, _server, _requests, events = compact_at("T5", extra_replies=2)
    conn = store.open_store()
    source = session.session_id
    summary_seqs = [e.session_seq for e in events if e.type == "compaction.summary"]
    total = store.last_seq(conn, source)
    for at in (summary_seqs[0] - 1, summary_seqs[0], summary_seqs[1], total):
        forked = store.fork(conn, source, at)
        expected = replay_into_fresh_file(conn, tmp_path / f"at-{at}.db", source, at)
        fork_view = projections.visible_messages(conn, forked)
        assert fork_view == projections.visible_messages(expected, source), at
        expected.close()
    before = projections.visible_messages(conn, store.fork(conn, source, summary_seqs[0] - 1))
    after = projections.visible_messages(conn, store.fork(conn, source, total))
    assert not any(m.kind == "summary" for m in before)
    assert [m.kind for m in after][:2] == ["summary", "summary"]


def test_a_turn_keeps_a_call_whose_result_came_after_a_new_prompt(db):
    # a history an lh before the guard wrote (the guard now refuses this order)
    db.execute("DROP TRIGGER proj_guard_results_before_prompt")
    session_id = store.create_session(db)
    call = {"id": "c1", "name": "bash", "arguments": "{}"}
    for payload in (
        {"type": "invocation.received", "text": "one"},
        {"type": "model.completed", "tool_calls": [call]},
        {"type": "invocation.received", "text": "two"},  # lh was killed before the result
        {"type": "tool.failed", "call_id": "c1", "name": "bash", "error": "interrupted"},
        {"type": "model.completed", "text": "sorry"},
        {"type": "invocation.received", "text": "three"},
    ):
        store.append(db, session_id, payload)
    groups = compaction.turns(projections.visible_messages(db, session_id))
    assert [[m.content for m in turn] for turn in groups] == [
        ["one", "", "two", "Error: interrupted"],
        ["sorry"],
        ["three"],
    ]


def test_a_prompt_too_long_refusal_shrinks_the_prompt_and_retries_once():
    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, 10)
    before = len(events_rows(session))
    too_long = HttpError(
        400, "maximum context length is 300 tokens", code="context_length_exceeded"
    )
    server.push(too_long, Text("fits now"))
    result = run(session, "third")
    server.push(too_long, too_long)
    again = run(session, "fourth")
    server.stop()
    assert result.reason == "no_tool_calls" and result.text == "fits now"
    events = new_events(session, before)
    types = [e.type for e in events]
    first_finish = types.index("agent.finished")
    assert types[:first_finish] == [
        "invocation.received",
        "step.started",
        "model.failed",
        "compaction.started",
        "compaction.completed",
        "step.started",
        "model.completed",
    ]
    refused, retried = main_requests(server)[-4:-2]
    assert len(json.dumps(retried.messages)) < len(json.dumps(refused.messages))
    assert paired(retried.messages) and retried.messages[-1]["content"] == "third"
    assert again.reason == "model_failed" and again.error.kind == "context_length"


def test_old_summaries_leave_the_view_beyond_a_quarter_of_the_ceiling():
    server = ScriptedServer().start()
    session = scripted_session(server)  # ceiling 34,000 characters: summaries get 8,500
    seed(server, session, tokens_at("T5"))
    before = len(events_rows(session))
    server.push(Text("ONE " + "x" * 5_000), Text("TWO " + "y" * 5_000), Text("final"))
    run(session, "third")
    server.stop()
    events = new_events(session, before)
    first, _second = [e for e in events if e.type == "compaction.summary"]
    retired = [
        e.data.details for e in events
        if e.type == "compaction.completed" and "retired_summaries" in e.data.details
    ]  # fmt: skip
    (details,) = retired
    assert details["hide_through_seq"] == first.data.from_seq
    assert details["retired_summaries"] == 1
    messages = main_requests(server)[-1].messages
    assert "TWO " in messages[1]["content"] and "ONE " not in json.dumps(messages)
    assert paired(messages)
    kept = projections.all_messages(session.conn, session.session_id)
    assert any(m.content == "first" for m in kept)  # hidden, never deleted


def test_ctrl_c_while_summarising_records_it_and_ends_the_invocation():
    import asyncio

    from leharness.testing import Hang

    server = ScriptedServer().start()
    session = scripted_session(server)
    seed(server, session, tokens_at("T4"))
    before = len(events_rows(session))
    server.push(Hang(5))
    holder = {}

    def cancel_once_summarising(event):
        if event is not None and event.type == "artifact.created":
            asyncio.get_running_loop().call_later(0.2, holder["task"].cancel)

    session.channel.on_event = cancel_once_summarising

    async def go():
        holder["task"] = asyncio.ensure_future(runner.run_invocation(session, "third"))
        return await holder["task"]

    result = asyncio.run(go())
    server.stop()
    assert result.reason == "cancelled"
    events = new_events(session, before)
    failed = next(e for e in events if e.type == "compaction.summary.failed")
    assert failed.data.kind == "cancelled"
    assert [e.type for e in events][-1] == "agent.finished"
    assert "step.started" not in [e.type for e in events]
