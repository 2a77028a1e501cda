"""Projections: tables kept current by SQLite triggers on `events`, one `.sql`
file each in `sql/`, and typed read functions over them. Nothing here writes.

The typed models need pydantic; they and the read functions returning them are
imported on first use (PEP 562), so `import leharness.projections` stays light
for commands that read plain records (`records.py`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .records import Record, resolve_session_id

if TYPE_CHECKING:
    from .models import ArtifactRow, Message, SessionRow, SessionView, TaskRow, ToolCallRow
    from .read import (
        all_messages,
        always_allowed,
        artifacts,
        get_session,
        latest_session_id,
        list_sessions,
        messages_between,
        open_tasks,
        pending_notifications,
        session_view,
        tasks,
        tool_call_exists,
        tool_calls,
        unanswered_tool_calls,
        visible_messages,
    )

__all__ = [
    "ArtifactRow",
    "Message",
    "Record",
    "SessionRow",
    "SessionView",
    "TaskRow",
    "ToolCallRow",
    "all_messages",
    "always_allowed",
    "artifacts",
    "get_session",
    "latest_session_id",
    "list_sessions",
    "messages_between",
    "open_tasks",
    "pending_notifications",
    "resolve_session_id",
    "session_view",
    "tasks",
    "tool_call_exists",
    "tool_calls",
    "unanswered_tool_calls",
    "visible_messages",
]

_MODELS = ("ArtifactRow", "Message", "SessionRow", "SessionView", "TaskRow", "ToolCallRow")


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{'models' if name in _MODELS else 'read'}")
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value
