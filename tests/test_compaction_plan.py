"""The compaction planner alone: pure functions of generated views, checked by hypothesis.

No database and no model: planner.py decides from a SessionView, so its promises
are checked on many shapes of conversation (summaries, parallel calls, a result
recorded after a new prompt, reasoning, large and small results, any pressure):
it never cuts a tool call from its result, keeps the newest turns, fits the
ceiling when anything can go, and decides the same way every time.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leharness.loop.compaction.planner import (
    EXEMPT_TURNS,
    Budget,
    Fit,
    MoveResults,
    Pressure,
    Request,
    Summarise,
    fit,
    measure,
    next_window,
    old_turns,
    plan,
    plan_tiers,
    prompt_chars,
    retire,
    turns,
)
from leharness.projections import Message, SessionRow, SessionView
from leharness.store import events as ev

TS = "2026-01-01T00:00:00Z"
REQUEST = Request(system="You are a test.", tools=[{"type": "function", "function": {}}])
text = st.text(alphabet="abc xyz\n", max_size=40).map(lambda s: s * 3)
body = st.one_of(
    text,
    st.integers(41, 1023).map(lambda n: "m" * n),
    st.integers(1025, 4000).map(lambda n: "r" * n),
)


@st.composite
def views(draw) -> SessionView:
    """A visible conversation as the projections would show it."""
    messages: list[Message] = []

    def add(**fields) -> Message:
        message = Message(session_seq=len(messages) + 1, ts=TS, **fields)
        messages.append(message)
        return message

    for _ in range(draw(st.integers(0, 2))):
        add(role="user", kind="summary", content="[Summary] " + draw(text))
    late: list[dict] = []  # results a crash left to come after the next prompt
    for turn in range(draw(st.integers(0, 9))):
        if turn == 0 or draw(st.booleans()):
            add(role="user", kind="prompt", content=draw(text) or "go")
        for fields in late:
            add(**fields)
        late = []
        calls = [
            ev.ToolCall(id=f"call_{turn}_{i}", name="bash", arguments='{"command": "ls"}')
            for i in range(draw(st.integers(0, 3)))
        ]
        reasoning = draw(st.one_of(st.none(), text))
        add(
            role="assistant",
            kind="answer",
            content=draw(text),
            reasoning=reasoning,
            tool_calls=calls or None,
        )
        for call in calls:
            fields = {
                "role": "tool",
                "kind": "tool_result",
                "content": draw(body),
                "tool_call_id": call.id,
                "name": call.name,
                "compacted_by": draw(st.sampled_from([None, None, None, "T3"])),
            }
            if call is calls[-1] and draw(st.integers(0, 5)) == 0:
                late.append(fields)
            else:
                add(**fields)
    for fields in late:
        add(**fields)
    fresh = draw(st.booleans())
    row = SessionRow(
        id="s1",
        created_at=TS,
        updated_at=TS,
        status="idle",
        event_count=len(messages),
        steps=0,
        prompt_tokens=0,
        completion_tokens=0,
        last_prompt_tokens=draw(st.integers(1, 30_000)) if fresh else None,
        last_model_seq=len(messages) if fresh else None,
    )
    return SessionView(session=row, messages=messages, open_tasks=[], pending_notifications=[])


budgets = st.integers(300, 40_000).map(Budget)


def ranges(payload: ev.Payload) -> list[tuple[int, int]]:
    """The (first, last) session_seq ranges a compaction.completed hides or changes."""
    if not isinstance(payload, ev.CompactionCompleted):
        return []
    d = payload.details
    found = []
    for start, end in (
        ("from_seq", "drop_reasoning_through_seq"),
        ("from_seq", "drop_results_through_seq"),
        ("hide_from_seq", "hide_through_seq"),
    ):
        if end in d:
            found.append((d[start], d[end]))
    return found


def assert_keeps_calls_with_results(messages: list[Message], first: int, last: int) -> None:
    inside = [m for m in messages if first <= m.session_seq <= last]
    outside = [m for m in messages if not first <= m.session_seq <= last]
    calls_in = {c.id for m in inside for c in m.tool_calls or ()}
    calls_out = {c.id for m in outside for c in m.tool_calls or ()}
    for m in inside:
        assert m.tool_call_id is None or m.tool_call_id not in calls_out, (first, last, m)
    for m in outside:
        assert m.tool_call_id is None or m.tool_call_id not in calls_in, (first, last, m)


def newest_turns_first_seq(view: SessionView, count: int) -> int:
    groups = turns(view.messages)
    return groups[-count][0].session_seq if len(groups) >= count else 0


@settings(max_examples=300, deadline=None)
@given(views(), budgets)
def test_the_plan_is_deterministic_and_well_formed(view, budget):
    steps = plan(view, budget, REQUEST)
    assert steps == plan(view, budget, REQUEST)
    assert isinstance(steps[-1], Fit) and not any(isinstance(s, Fit) for s in steps[:-1])
    tiers = [s.tier for s in steps if isinstance(s, ev.CompactionStarted)]
    assert tiers == sorted(tiers)  # T1, T2, T3 in order, each at most once
    assert len(tiers) == len(set(tiers))
    summaries = [s.tier for s in steps if isinstance(s, Summarise)]
    assert summaries in ([], ["T4"], ["T4", "T5"])


@settings(max_examples=300, deadline=None)
@given(views(), budgets)
def test_the_plan_never_cuts_a_call_from_its_result_and_keeps_the_newest_turns(view, budget):
    protected = newest_turns_first_seq(view, EXEMPT_TURNS)
    old = {m.session_seq for turn in old_turns(view.messages) for m in turn}
    for step in plan(view, budget, REQUEST):
        for first, last in ranges(step):
            assert_keeps_calls_with_results(view.messages, first, last)
            assert last < protected
        if isinstance(step, MoveResults):
            assert all(m.role == "tool" and m.session_seq in old for m in step.messages)
            for payload in step.if_any_fails:
                for first, last in ranges(payload):
                    assert_keeps_calls_with_results(view.messages, first, last)
                    assert last < protected
    window = next_window(old_turns(view.messages))
    if window:
        seqs = [m.session_seq for m in window]
        assert_keeps_calls_with_results(view.messages, seqs[0], seqs[-1])
        assert seqs[-1] < protected
        assert all(m.kind != "summary" for m in window)
        assert seqs == list(range(seqs[0], seqs[-1] + 1))  # one run of whole turns


@settings(max_examples=300, deadline=None)
@given(views(), budgets, st.integers(200, 20_000))
def test_fit_meets_the_ceiling_when_anything_can_go_and_keeps_the_newest_turn(
    view, budget, ceiling
):
    pressure = measure(view.session, prompt_chars(view, REQUEST), budget)
    payloads = fit(view, budget, REQUEST, pressure, ceiling=ceiling)
    assert payloads == fit(view, budget, REQUEST, pressure, ceiling=ceiling)
    before = prompt_chars(view, REQUEST)
    if before <= ceiling:
        assert payloads == []
        return
    if not payloads:  # nothing could go: one turn left and no result body to drop
        assert len(turns(view.messages)) <= 1
        return
    started, completed = payloads
    assert isinstance(started, ev.CompactionStarted) and started.tier == "T6"
    details = completed.details
    kept = view.messages
    if "hide_through_seq" in details:
        first, last = details["hide_from_seq"], details["hide_through_seq"]
        assert_keeps_calls_with_results(view.messages, first, last)
        assert last < newest_turns_first_seq(view, 1)
        kept = [m for m in view.messages if not first <= m.session_seq <= last]
    after = prompt_chars(view.model_copy(update={"messages": kept}), REQUEST)
    assert details["chars"] == after
    if after > ceiling:  # only the newest turn is left: its result bodies go too
        assert len(turns(kept)) == 1
    else:
        assert "drop_results_through_seq" not in details


@settings(max_examples=200, deadline=None)
@given(views(), budgets)
def test_retiring_summaries_hides_only_summaries_and_keeps_the_newest(view, budget):
    payload = retire(view, "T4", budget)
    summaries = [m for m in view.messages if m.kind == "summary"]
    if payload is None:
        return
    first, last = ranges(payload)[0]
    hidden = [m for m in view.messages if first <= m.session_seq <= last]
    assert hidden and all(m.kind == "summary" for m in hidden)
    assert len(hidden) < len(summaries)


def test_t3_waits_on_the_moves_when_the_moved_results_were_all_it_could_drop():
    """A large old result is the only one T3 could drop: T3 is recorded only if its move
    fails (the body then stays and T3 replaces it), as before the planner split."""
    call = ev.ToolCall(id="c1", name="bash")
    old = [
        Message(session_seq=1, role="user", kind="prompt", content="go", ts=TS),
        Message(
            session_seq=2, role="assistant", kind="answer", content="", tool_calls=[call], ts=TS
        ),
        Message(
            session_seq=3,
            role="tool",
            kind="tool_result",
            content="x" * 2000,
            tool_call_id="c1",
            ts=TS,
        ),
    ]
    pressure = Pressure(tokens=80, budget=100, estimated=True)
    steps = plan_tiers(old, pressure)
    assert [type(s).__name__ for s in steps] == ["CompactionStarted", "MoveResults"]
    (move,) = [s for s in steps if isinstance(s, MoveResults)]
    assert [p.tier for p in move.if_any_fails] == ["T3", "T3"]
    # Another droppable result besides: T3 is planned outright, with no fallback.
    extra = Message(
        session_seq=4, role="tool", kind="tool_result", content="y" * 100, tool_call_id="c1", ts=TS
    )
    steps = plan_tiers([*old, extra], pressure)
    tiers = [s.tier for s in steps if isinstance(s, ev.CompactionStarted)]
    assert tiers == ["T2", "T3"]
    assert all(not s.if_any_fails for s in steps if isinstance(s, MoveResults))
