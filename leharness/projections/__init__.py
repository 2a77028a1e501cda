"""Projections: tables kept current by SQLite triggers on `events`, one `.sql`
file each in `sql/`, and typed read functions over them. Nothing here writes.
"""

from .models import ArtifactRow, Message, SessionRow, SessionView, TaskRow, ToolCallRow
from .read import (
    all_messages,
    artifacts,
    get_session,
    latest_session_id,
    list_sessions,
    messages_between,
    open_tasks,
    pending_notifications,
    resolve_session_id,
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
    "SessionRow",
    "SessionView",
    "TaskRow",
    "ToolCallRow",
    "all_messages",
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
