"""Typed rows of the projection tables, as the loop and the CLI read them."""

# No `from __future__ import annotations`: pydantic would evaluate every annotation
# from its string when each class is made (a fifth to a quarter of this module's import time).
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from leharness.store.events import ToolCall


class Row(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class SessionRow(Row):
    """One row of the `sessions` projection table: a session's identity, status and
    counters as the triggers keep them (read-only data; nothing runs from it)."""

    id: str
    parent_session_id: str | None = None
    parent_task_id: str | None = None
    agent_type: str | None = None
    forked_from: str | None = None
    forked_at: int | None = None
    title: str | None = None
    cwd: str | None = None
    provider: str | None = None
    model: str | None = None
    created_at: str
    updated_at: str
    status: str
    finish_reason: str | None = None
    event_count: int
    steps: int
    prompt_tokens: int
    completion_tokens: int
    last_prompt_tokens: int | None = None
    last_model_seq: int | None = None
    compacted_seq: int | None = None

    @field_validator("prompt_tokens", "completion_tokens", "last_prompt_tokens", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        """A sum past 2**63 (an absurd count another program recorded) comes back from
        SQLite as a REAL, which pydantic refuses for an int: read it as its integer."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class Message(Row):
    session_seq: int
    role: str
    kind: str
    content: str
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    ts: str
    visible: bool = True
    compacted_by: str | None = None  # the compaction tier that replaced its content, if any

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class ToolCallRow(Row):
    session_id: str
    call_id: str
    model_seq: int
    position: int
    name: str
    arguments: str
    status: str
    requested_at: str
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    error: str | None = None
    error_kind: str | None = None
    artifact_id: str | None = None
    task_id: str | None = None


class TaskRow(Row):
    session_id: str
    task_id: str
    kind: str
    status: str
    call_id: str | None = None
    command: str | None = None
    prompt: str | None = None
    child_session_id: str | None = None
    pid: int | None = None
    harness_pid: int | None = None
    boot_id: str | None = None
    start_time: str | None = None
    owner_session_id: str | None = None
    forked_from: str | None = None
    started_at: str
    finished_at: str | None = None
    exit_code: int | None = None
    summary: str | None = None
    output: str | None = None
    cancel_reason: str | None = None
    artifact_id: str | None = None
    delivered: bool
    delivered_seq: int | None = None
    finished_seq: int | None = None


class ProcessRow(Row):
    session_id: str
    task_id: str
    call_id: str | None = None
    pid: int
    boot_id: str | None = None
    start_time: str | None = None
    owner_session_id: str | None = None
    timeout_s: int | None = None
    started_at: str


class ArtifactRow(Row):
    session_id: str
    artifact_id: str
    kind: str
    path: str
    bytes: int
    sha256: str
    call_id: str | None = None
    task_id: str | None = None
    created_at: str


class SessionView(Row):
    """Everything the loop needs for one step, read from projection rows: the session's
    `SessionRow`, its visible messages and its tasks, as of now (a snapshot the loop
    rebuilds every step, unlike the running `loop.session.LoopSession` that holds it)."""

    session: SessionRow
    messages: Sequence[Message]
    open_tasks: list[TaskRow]
    pending_notifications: list[TaskRow]
