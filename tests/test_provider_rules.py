"""What a provider accepts: the strict scripted server refuses what OpenAI refuses, and
the database refuses a user message while a tool call of the session has no result."""

from __future__ import annotations

import sqlite3

import openai
import pytest

from leharness import projections, store
from leharness.store import schema
from leharness.testing import ScriptedServer, Text, conversation_problems

from .util import tool_round

CALL = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
CALL2 = {"id": "c2", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
USER = {"role": "user", "content": "hi"}
ASKS = {"role": "assistant", "content": None, "tool_calls": [CALL, CALL2]}


def result(call_id: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


GOOD = [
    [USER],
    [USER, ASKS, result("c2"), result("c1"), USER],  # results in any order among themselves
    [USER, ASKS, result("c1"), result("c2"), {"role": "assistant", "content": "done"}],
]
BAD = {
    "a user message between the calls and their results": (
        [USER, ASKS, USER, result("c1"), result("c2")],
        "did not have response messages: c1, c2",
    ),
    "a call without a result": ([USER, ASKS, result("c1"), USER], "response messages: c2"),
    "a call answered twice": (
        [USER, ASKS, result("c1"), result("c2"), result("c1")],
        "must be a response to a preceeding message with 'tool_calls'",
    ),
    "a result without its call": ([USER, result("c9")], "'c9'"),
    "the calls unanswered at the end": ([USER, ASKS], "did not have response messages"),
    "an empty tool_calls list": (
        [USER, {"role": "assistant", "content": "x", "tool_calls": []}],
        "[] is too short",
    ),
}


@pytest.mark.parametrize("messages", GOOD)
def test_conversations_openai_accepts_pass(messages):
    assert conversation_problems(messages) == []


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_the_strict_server_refuses_what_openai_refuses_with_a_400(case):
    messages, expected = BAD[case]
    assert any(expected in p for p in conversation_problems(messages))
    with ScriptedServer([Text("never sent")]) as server:
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="m", messages=messages)
        assert refused.value.status_code == 400
        assert expected in refused.value.message
        assert len(server.refused) == 1 and server.remaining == 1  # the refusal took no step
        server.refused.clear()  # expected here (conftest fails a test on any other refusal)
    # the same request goes through a lenient server
    with ScriptedServer([Text("accepted")], strict=False) as lenient:
        client = openai.OpenAI(api_key="k", base_url=lenient.base_url, max_retries=0)
        answer = client.chat.completions.create(model="m", messages=messages)
        assert answer.choices[0].message.content == "accepted"


def test_the_database_refuses_a_prompt_while_a_tool_call_has_no_result(db):
    session = store.create_session(db)
    store.append(db, session, {"type": "invocation.received", "text": "go"})
    store.append(
        db,
        session,
        {
            "type": "model.completed",
            "tool_calls": [{"id": "c1", "name": "bash", "arguments": "{}"}],
        },
    )
    store.append(db, session, {"type": "tool.started", "call_id": "c1", "name": "bash"})
    before = store.last_seq(db, session)
    with pytest.raises(sqlite3.IntegrityError, match="has no result yet"):
        store.append(db, session, {"type": "invocation.received", "text": "typed after a crash"})
    # nothing was written, and any other event still goes in
    assert store.last_seq(db, session) == before
    store.append(db, session, {"type": "invocation.auto"})
    store.append(
        db, session, {"type": "tool.failed", "call_id": "c1", "name": "bash", "error": "x"}
    )
    store.append(db, session, {"type": "invocation.received", "text": "now it may come"})
    assert projections.unanswered_tool_calls(db, session) == []


def test_the_guard_is_per_session_and_a_rebuild_ignores_it(db):
    open_one, other = store.create_session(db), store.create_session(db)
    store.append(db, open_one, {"type": "model.completed", "tool_calls": [
        {"id": "c1", "name": "bash", "arguments": "{}"}]})  # fmt: skip
    tool_round(db, other, "another session is not held up")
    before = [tuple(r) for r in db.execute("SELECT * FROM tool_calls ORDER BY call_id")]
    assert store.rebuild(db) == db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert [tuple(r) for r in db.execute("SELECT * FROM tool_calls ORDER BY call_id")] == before


def legacy_history(db) -> str:
    """What lh before the guard wrote after a crash inside a tool call: the new prompt
    first, the synthetic result after it."""
    session = store.create_session(db)
    db.execute("DROP TRIGGER proj_guard_results_before_prompt")  # as an older schema had
    store.append(db, session, {"type": "invocation.received", "text": "go"})
    store.append(db, session, {"type": "model.completed", "tool_calls": [
        {"id": "c1", "name": "bash", "arguments": "{}"}]})  # fmt: skip
    store.append(db, session, {"type": "invocation.received", "text": "go on"})
    store.append(db, session, {"type": "tool.failed", "call_id": "c1", "name": "bash",
                               "error": "interrupted", "kind": "interrupted"})  # fmt: skip
    store.migrate(db)  # no-op: the version is current
    schema.install_projections(db)
    return session


def test_an_old_history_out_of_order_still_reads_and_forks_with_a_clear_error(db):
    from leharness.store.timetravel import session_at

    session = legacy_history(db)
    assert store.rebuild(db) == 5  # the guard never refuses what is already stored
    scratch = session_at(db, session, 5)
    assert [m["role"] for m in scratch.execute("SELECT role FROM messages")] == [
        "user", "assistant", "user", "tool"
    ]  # fmt: skip
    assert store.fork(db, session, 2)  # before the break: fine
    with pytest.raises(store.StoreError, match=r"cannot be forked at 4: .*has no result yet"):
        store.fork(db, session, 4)


def test_lh_fork_inside_a_tool_call_then_a_prompt_sends_a_valid_conversation(
    isolated_home, tmp_path
):
    """`lh fork ID --at N` with N inside a call, then a prompt in the fork: the strict
    server gets the cut call answered (interrupted) before the new user message."""
    from leharness.testing import Call, ToolCalls

    from .e2e_helpers import lh_env, query, run_lh

    steps = [ToolCalls(Call("bash", {"command": "echo one"})), Text("done"), Text("forked")]
    with ScriptedServer(steps) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("go", env=env, cwd=tmp_path).returncode == 0
        ((source,),) = query(isolated_home, "SELECT id FROM sessions")
        ((at,),) = query(
            isolated_home,
            "SELECT session_seq FROM events WHERE session_id = ? AND type = 'tool.started'",
            source,
        )
        forked = run_lh("fork", source, "--at", str(at), env=env).stdout.strip()
        resumed = run_lh("--session", forked, "go on", env=env, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        sent = [(m["role"], m.get("tool_call_id")) for m in server.requests[-1].messages]
    assert sent[1:] == [("user", None), ("assistant", None), ("tool", "call_1"), ("user", None)]
    assert "cut at its event" in server.requests[-1].messages[3]["content"]
