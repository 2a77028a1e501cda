"""A session as an ATIF trajectory (Harbor's Agent Trajectory Interchange Format).

Built from the projections: every message as it happened (compaction does not
hide history here), the tool results of a model call as that agent step's
observation, a subagent as a reference to its session, and each model call's
token usage. Plain dicts, no Harbor import: the core package keeps Python 3.11;
the Harbor stage of the tests validates the output with Harbor's own models.
Nothing here writes.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from leharness import __version__
from leharness.store import StoreError, jsontext

from .records import all_messages, session, tasks

SCHEMA_VERSION = "ATIF-v1.4"
AGENT_NAME = "leharness"


def trajectory(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    """The ATIF trajectory of one session (its subagents are referenced by session id)."""
    row = session(conn, session_id)
    if row is None:
        raise StoreError(f"no session {session_id!r}")
    usage = _usage(conn, session_id)
    children = {t.call_id: t.child_session_id for t in tasks(conn, session_id) if t.call_id}
    steps: list[dict[str, Any]] = []
    for message in all_messages(conn, session_id):
        if message.role == "tool":
            _observe(steps, message, children)
        elif message.role == "assistant":
            steps.append(_agent_step(message, row.model, usage.get(message.session_seq)))
        else:
            source = "system" if message.kind == "notification" else "user"
            steps.append(_step(source, message))
    for number, step in enumerate(steps, 1):
        step["step_id"] = number
    final = {
        "total_prompt_tokens": row.prompt_tokens,
        "total_completion_tokens": row.completion_tokens,
        "total_steps": len(steps),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": session_id,
        "agent": _drop_none(
            {"name": AGENT_NAME, "version": __version__, "model_name": row.model or None}
        ),
        "steps": steps,
        "final_metrics": final,
        "extra": _drop_none(
            {
                "status": row.status,
                "finish_reason": row.finish_reason,
                "parent_session_id": row.parent_session_id,
                "provider": row.provider,
            }
        ),
    }


def _step(source: str, message: Any) -> dict[str, Any]:
    return {"step_id": 0, "timestamp": message.ts, "source": source, "message": message.content}


def _agent_step(message: Any, model: str | None, usage: dict | None) -> dict[str, Any]:
    step = _step("agent", message)
    if model:
        step["model_name"] = model
    if message.reasoning:
        step["reasoning_content"] = message.reasoning
    calls = message.tool_calls or []
    if calls:
        step["tool_calls"] = [
            {
                "tool_call_id": call.get("id") or "",
                "function_name": call.get("name") or "",
                "arguments": _arguments(call.get("arguments")),
            }
            for call in calls
        ]
    if usage:
        step["metrics"] = usage
    if message.kind == "cancelled":
        step["extra"] = {"cancelled": True}
    return step


def _observe(steps: list[dict[str, Any]], message: Any, children: dict[str, str]) -> None:
    """A tool result joins the observation of the agent step that made its call."""
    for step in reversed(steps):
        ids = {call["tool_call_id"] for call in step.get("tool_calls", ())}
        if message.tool_call_id in ids:
            break
    else:
        return  # a result without its call: nothing in ATIF can hold it
    result: dict[str, Any] = {"source_call_id": message.tool_call_id, "content": message.content}
    child = children.get(message.tool_call_id)  # the call spawned a subagent
    if child:
        result["subagent_trajectory_ref"] = [{"session_id": child}]
    step.setdefault("observation", {"results": []})["results"].append(result)


def _arguments(raw: Any) -> dict[str, Any]:
    """ATIF wants an object; a model that sent something else keeps it under `raw`."""
    if isinstance(raw, dict):
        return raw
    try:
        value = jsontext.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"raw": raw}


def _usage(conn: sqlite3.Connection, session_id: str) -> dict[int, dict[str, int]]:
    """Each model call's reported usage, by the session_seq of its message."""
    rows = conn.execute(
        "SELECT session_seq, json_extract(data, '$.usage.prompt_tokens'), "
        "json_extract(data, '$.usage.completion_tokens') FROM events "
        "WHERE session_id = ? AND type = 'model.completed'",
        (session_id,),
    )
    return {
        seq: _drop_none({"prompt_tokens": prompt, "completion_tokens": completion})
        for seq, prompt, completion in rows
        if prompt is not None or completion is not None
    }


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
