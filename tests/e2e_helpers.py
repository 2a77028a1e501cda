"""Running the real `lh` entry point against a scripted server on 127.0.0.1."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

LH = str(Path(sys.executable).with_name("lh"))
TEST_KEY = "sk-test-secret-0123456789"


def lh_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
    env.update(
        LEHARNESS_HOME=str(home),
        OPENAI_API_KEY=TEST_KEY,
        OPENAI_BASE_URL=base_url,
        LEHARNESS_RETRY_BASE_S="0",
        # Without a terminal a one-shot run refuses bash and file changes (approval "ask"):
        # the tests that drive tools say auto; those about approval pass their own value
        # ("" restores the default).
        LEHARNESS_APPROVAL="auto",
    )
    env.update(extra)
    return env


def run_lh(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60):
    return subprocess.run(
        [LH, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def event_types(home: Path, session_id: str | None = None) -> list[str]:
    with sqlite3.connect(home / "sessions.db") as conn:
        if session_id is None:
            (session_id,) = conn.execute(
                "SELECT id FROM sessions ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
        rows = conn.execute(
            "SELECT type FROM events WHERE session_id = ? ORDER BY session_seq", (session_id,)
        )
        return [row[0] for row in rows]


def query(home: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(home / "sessions.db") as conn:
        return conn.execute(sql, params).fetchall()
