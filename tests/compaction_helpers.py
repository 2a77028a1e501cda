"""Building sessions with history for compaction tests, over the scripted server."""

from __future__ import annotations

import asyncio

from leharness import store
from leharness.loop import runner
from leharness.loop.model import OpenAICompatibleModel, RetryPolicy
from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .loop_helpers import make_session

WINDOW = 10_000  # tokens: a budget of 8,500 and a ceiling of 34,000 characters
BUDGET = 8_500
BIG = "A" * 1_500  # an echo of this is a tool result over 1 KiB (T2 moves it)
SMALL = "b" * 60  # …and this one under 1 KiB but over 40 characters (T3 drops it)


def scripted_session(server: ScriptedServer, window: int = WINDOW) -> runner.LoopSession:
    model = OpenAICompatibleModel(
        "openai", "scripted", server.base_url, "k", RetryPolicy(retries=0)
    )
    session = make_session(model)
    session.context_window = window
    return session


def run(session: runner.LoopSession, text: str | None = "go") -> runner.Result:
    return asyncio.run(runner.run_invocation(session, text))


def seed(server: ScriptedServer, session: runner.LoopSession, last_prompt_tokens: int) -> None:
    """Two prompts, each one tool call and an answer with reasoning; the last model
    call reports `last_prompt_tokens`, so the next step sees that pressure."""
    server.push(
        ToolCalls(Call("echo", {"text": BIG}), prompt_tokens=10),
        Text("done one", reasoning="pondering one", prompt_tokens=10),
        ToolCalls(Call("echo", {"text": SMALL}), prompt_tokens=10),
        Text("done two", reasoning="pondering two", prompt_tokens=last_prompt_tokens),
    )
    assert run(session, "first").reason == "no_tool_calls"
    assert run(session, "second").reason == "no_tool_calls"


def events_rows(session: runner.LoopSession) -> list[tuple]:
    return session.conn.execute(
        "SELECT * FROM events WHERE session_id = ? ORDER BY session_seq", (session.session_id,)
    ).fetchall()


def new_events(session: runner.LoopSession, since: int) -> list[store.Event]:
    return [e for e in store.read_events(session.conn, session.session_id) if e.session_seq > since]


def main_requests(server: ScriptedServer) -> list:
    return [r for r in server.requests if "tools" in r.body]


def summariser_requests(server: ScriptedServer) -> list:
    return [r for r in server.requests if "tools" not in r.body]


def paired(messages: list[dict]) -> bool:
    """Every tool message answers a call of an earlier assistant message, and every call
    is answered."""
    calls: set[str] = set()
    answered: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            calls.add(call["id"])
        if message["role"] == "tool":
            if message["tool_call_id"] not in calls:
                return False
            answered.add(message["tool_call_id"])
    return calls == answered
