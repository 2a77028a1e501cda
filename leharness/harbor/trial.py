"""What a trial's `sessions.db` says, for Harbor: tokens, cost and the trajectory.

No Harbor import here (the core test suite runs it on Python 3.11); `agent.py`
turns these plain values into Harbor's models.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leharness import store
from leharness.projections.atif import trajectory


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    models: tuple[str, ...]


def main_session(conn: sqlite3.Connection) -> str | None:
    """The session the agent ran (the first top-level one); subagents hang under it."""
    row = conn.execute(
        "SELECT id FROM sessions WHERE parent_session_id IS NULL ORDER BY created_at, id LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def usage(db_file: Path) -> Usage | None:
    """Tokens of every session in the file (subagents included); None without a file."""
    if not db_file.is_file():
        return None
    with closing(store.connect_readonly(db_file)) as conn:
        prompt, completion = conn.execute(
            "SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
            "FROM model_usage"
        ).fetchone()
        models = tuple(
            m for (m,) in conn.execute("SELECT DISTINCT model FROM model_usage") if m != "?"
        )
    return Usage(prompt, completion, models)


def atif(db_file: Path) -> dict[str, Any] | None:
    """The main session's ATIF trajectory, or None when the file has no session."""
    if not db_file.is_file():
        return None
    with closing(store.connect_readonly(db_file)) as conn:
        session_id = main_session(conn)
        return trajectory(conn, session_id) if session_id else None
