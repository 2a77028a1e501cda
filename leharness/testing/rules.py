"""What OpenAI's Chat Completions accepts as a conversation, checked as OpenAI checks it.

The scripted server refuses a request that breaks these rules with the 400
OpenAI gives, so every end-to-end test fails the way a real provider would:

- an assistant message with `tool_calls` is followed at once by exactly one
  `tool` message per call (in any order among them), nothing in between;
- no `tool` message without its call in the assistant message just before;
- `tool_calls`, when present, is not empty, and call ids in it are unique.
"""

from __future__ import annotations

from typing import Any


def conversation_problems(messages: list[dict[str, Any]]) -> list[str]:
    """Every way `messages` breaks OpenAI's rules, in OpenAI's words (empty: accepted)."""
    problems: list[str] = []
    pending: list[object] = []  # ids of the last assistant message's calls still unanswered
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"messages.{index}: not an object")
            continue
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id in pending:
                pending.remove(call_id)
            else:
                problems.append(
                    f"messages.{index}: Invalid parameter: messages with role 'tool' must be a "
                    f"response to a preceeding message with 'tool_calls' (tool_call_id "
                    f"{call_id!r})"
                )
            continue
        if pending:
            problems.append(_unanswered(index, pending))
            pending = []
        if role == "assistant" and "tool_calls" in message and message["tool_calls"] is not None:
            calls = message["tool_calls"]
            if not calls:
                problems.append(f"[] is too short - 'messages.{index}.tool_calls'")
            ids = [call.get("id") for call in calls if isinstance(call, dict)]
            if len(set(ids)) != len(ids):
                problems.append(f"messages.{index}.tool_calls: duplicate tool_call ids {ids}")
            pending = list(dict.fromkeys(ids))
    if pending:
        problems.append(_unanswered(len(messages), pending))
    return problems


def _unanswered(index: int, pending: list[object]) -> str:
    return (
        f"messages.{index}: An assistant message with 'tool_calls' must be followed by tool "
        "messages responding to each 'tool_call_id'. The following tool_call_ids did not "
        f"have response messages: {', '.join(str(p) for p in pending)}"
    )
