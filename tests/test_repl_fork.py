"""`/fork [N]` in the interactive session switches to a branch of the current session."""

from __future__ import annotations

from leharness import projections, store
from leharness.testing import ScriptedServer, Text

from .test_repl import drive


def test_fork_at_n_switches_to_the_branch(monkeypatch):
    with ScriptedServer([Text("one"), Text("two"), Text("three")]) as server:
        repl, screen = drive(["first", "second", "/fork 5", "third", "/exit"], server, monkeypatch)
    conn = repl.active.loop.conn
    rows = {row.id: row for row in projections.list_sessions(conn)}
    assert len(rows) == 2
    branch = rows[repl.active.session_id]
    (source,) = [row for row in rows.values() if row.id != branch.id]
    assert (branch.forked_from, branch.forked_at) == (source.id, 5)
    # Events 1..5 are the first exchange; the second stays only in the source.
    prompts = [m.content for m in projections.all_messages(conn, branch.id) if m.role == "user"]
    assert prompts == ["first", "third"]
    assert [m.content for m in projections.all_messages(conn, source.id) if m.role == "user"] == [
        "first",
        "second",
    ]
    assert f"now in session {branch.id}" in screen
    # The model saw the branch's history, not the source's second prompt.
    third = server.requests[2].messages
    assert [m["content"] for m in third if m["role"] == "user"] == ["first", "third"]


def test_fork_without_n_copies_everything_and_bad_n_changes_nothing(monkeypatch):
    with ScriptedServer([Text("one")]) as server:
        repl, screen = drive(
            ["first", "/fork 99", "/fork x", "/fork", "/exit"], server, monkeypatch
        )
    assert "N must be between 1 and 5" in screen
    assert "usage: /fork [N]" in screen
    conn = repl.active.loop.conn
    branch = projections.get_session(conn, repl.active.session_id)
    assert branch.forked_at == 5 and len(projections.list_sessions(conn)) == 2
    assert store.last_seq(conn, branch.id) == 6  # events 1..5 and session.forked
