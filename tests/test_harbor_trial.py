"""The Harbor-free half of leharness.harbor: what a trial's database says (tokens,
the trajectory), and a clear error when Harbor itself is missing."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from leharness import store
from leharness.harbor import trial

from .util import tool_round


def test_usage_and_trajectory_of_a_trial_database(tmp_path):
    path = tmp_path / "agent" / "leharness" / "sessions.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    tool_round(conn, session_id, "make the file")
    conn.close()
    assert trial.usage(path) == trial.Usage(12, 4, ())
    data = trial.atif(path)
    assert data["session_id"] == session_id
    assert [s["source"] for s in data["steps"]] == ["user", "agent", "agent"]
    assert trial.usage(tmp_path / "missing.db") is None
    assert trial.atif(tmp_path / "missing.db") is None


@pytest.mark.skipif(importlib.util.find_spec("harbor") is not None, reason="Harbor installed")
def test_the_agent_without_harbor_says_what_to_install():
    import leharness.harbor

    with pytest.raises(ImportError, match=r"pip install 'leharness\[harbor\]'"):
        leharness.harbor.Leharness  # noqa: B018
    assert "harbor" not in sys.modules
