"""`lh show --at N`: the session as it stood after event N, from events 1..N only."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from leharness import projections, store
from leharness.cli import cli
from leharness.store.timetravel import session_at

from .util import replay_into_fresh_file, snapshot, tool_round


def show(*args: str):
    return CliRunner().invoke(cli, ["show", *args])


def test_show_at_equals_a_projection_of_the_first_n_events(db, tmp_path):
    session_id = store.create_session(db)
    tool_round(db, session_id, "first question")
    tool_round(db, session_id, "second question")
    live_before = snapshot(db)
    for at in (1, 4, 6, 9, 13, 17):
        scratch = session_at(db, session_id, at)
        expected = replay_into_fresh_file(db, tmp_path / f"at-{at}.db", session_id, at)
        assert snapshot(scratch) == snapshot(expected), at
        assert projections.get_session(scratch, session_id).event_count == at
    assert snapshot(db) == live_before  # the live projections were not touched


def test_show_at_prints_the_transcript_up_to_that_event(db):
    session_id = store.create_session(db)
    tool_round(db, session_id, "first question")
    tool_round(db, session_id, "second question")

    result = show(session_id[:10], "--at", "6", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["session"]["event_count"] == 6
    assert shown["session"]["status"] == "running"  # agent.finished (event 9) not yet
    assert [m["kind"] for m in shown["messages"]] == ["prompt", "answer", "tool_result"]

    text = show(session_id, "--at", "9").output
    assert text.startswith("(as it stood after event 9 of 17)\nsession ")
    assert "first question" in text and "second question" not in text
    assert "9 events" in text and "idle" in text
    whole = show(session_id).output
    assert "second question" in whole and "17 events" in whole


def test_show_at_outside_the_session_is_a_clear_error(db):
    session_id = store.create_session(db)
    tool_round(db, session_id)
    for bad in ("0", "-3", "10"):
        result = show(session_id, "--at", bad)
        assert result.exit_code == 2, bad
        assert "--at must be between 1 and 9" in result.output
        assert "Traceback" not in result.output
    assert store.last_seq(db, session_id) == 9


def test_a_scratch_of_some_projections_projects_them_as_the_full_one(db):
    """`lh show --at` builds only the projections a transcript reads; those tables
    come out exactly as in a scratch database holding every projection."""
    from leharness.projections.records import TRANSCRIPT_PROJECTIONS

    session_id = store.create_session(db)
    tool_round(db, session_id, "first question")
    tool_round(db, session_id, "second question")
    for at in (1, 6, 9, 17):
        full = snapshot(session_at(db, session_id, at))
        some = snapshot(session_at(db, session_id, at, TRANSCRIPT_PROJECTIONS))
        assert set(some) == set(TRANSCRIPT_PROJECTIONS)
        assert some == {table: full[table] for table in TRANSCRIPT_PROJECTIONS}, at
    with pytest.raises(store.StoreError, match=r"no projections file nope\.sql"):
        session_at(db, session_id, 3, ("messages", "nope"))
