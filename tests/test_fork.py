"""Branching a session by copying rows: the triggers build the fork's projections."""

from __future__ import annotations

import pytest

from leharness import projections, store

from .util import replay_into_fresh_file, snapshot, tool_round


def test_fork_at_n_projects_like_a_replay_of_events_1_to_n(db, tmp_path):
    source = store.create_session(db)
    tool_round(db, source, "first")
    store.append(db, source, {"type": "task.started", "task_id": "t1", "kind": "bash"})
    store.append(db, source, {"type": "task.completed", "task_id": "t1", "summary": "ok"})
    tool_round(db, source, "second")
    total = store.last_seq(db, source)

    for at in (1, 6, 8, 11, total):  # cuts between calls (inside one: the tests below)
        forked = store.fork(db, source, at)
        expected_conn = replay_into_fresh_file(db, tmp_path / f"expected-{at}.db", source, at)
        expected = snapshot(expected_conn, rename={source: "S"})
        actual = snapshot(db, rename={forked: "S"})
        for table in ("messages", "tool_calls", "tasks", "artifacts"):
            rows = [r for r in actual[table] if ("session_id", "S") in r]
            if table == "tasks":  # a copied task says whose it is: the fork did not run it
                assert all(dict(r)["forked_from"] == source for r in rows)
                rows = [tuple((k, None if k == "forked_from" else v) for k, v in r) for r in rows]
            assert rows == expected[table], table
        fork_row = projections.get_session(db, forked).model_dump()
        expected_row = projections.get_session(expected_conn, source).model_dump()
        assert fork_row.pop("forked_from") == source
        assert fork_row.pop("forked_at") == at
        assert fork_row.pop("event_count") == at + 1  # the copies plus session.forked
        fork_row.pop("updated_at")
        for key in ("forked_from", "forked_at", "event_count", "updated_at"):
            expected_row.pop(key)
        expected_row["id"] = forked
        assert fork_row == expected_row
        expected_conn.close()


def test_fork_gives_new_event_ids_and_leaves_the_source_untouched(db):
    source = store.create_session(db)
    tool_round(db, source)
    before = [e.model_dump() for e in store.read_events(db, source)]
    forked = store.fork(db, source, 6)
    assert [e.model_dump() for e in store.read_events(db, source)] == before
    copies = list(store.read_events(db, forked))
    assert [e.type for e in copies][-1] == "session.forked"
    assert [e.session_seq for e in copies] == list(range(1, 8))
    assert not {e.id for e in copies} & {e["id"] for e in before}


@pytest.mark.parametrize("at", [0, 99])
def test_fork_outside_the_session_is_a_clear_error(db, at):
    source = store.create_session(db)
    with pytest.raises(store.StoreError, match="between 1 and 1"):
        store.fork(db, source, at)


def test_forking_an_unknown_session_is_a_clear_error(db):
    with pytest.raises(store.StoreError, match="no session"):
        store.fork(db, "nope", 1)


def test_a_compaction_that_hides_old_messages_is_projected_in_forks_too(db):
    from leharness import projections

    source = store.create_session(db)
    tool_round(db, source, "one")
    tool_round(db, source, "two")
    before = store.last_seq(db, source)
    store.append(
        db,
        source,
        {"type": "compaction.completed", "tier": "T6", "details": {"hide_through_seq": 9}},
    )
    visible = projections.visible_messages(db, source)
    assert [m.content for m in visible if m.role == "user"] == ["two"]
    assert len(projections.all_messages(db, source)) == 8
    early, late = store.fork(db, source, before), store.fork(db, source)
    assert len(projections.visible_messages(db, early)) == 8
    assert len(projections.visible_messages(db, late)) == 4


def test_a_fork_closes_the_running_tasks_it_copied_and_a_rebuild_agrees(db):
    source = store.create_session(db)
    started = {"type": "task.started", "owner_session_id": source, "harness_pid": 1}
    store.append(db, source, {**started, "task_id": "t1", "kind": "bash", "pid": 4242})
    store.append(db, source, {**started, "task_id": "t2", "kind": "agent", "child_session_id": "C"})
    process = {"type": "process.started", "task_id": "t1", "pid": 4242, "owner_session_id": source}
    store.append(db, source, process)
    forked = store.fork(db, source)

    assert projections.open_tasks(db, forked) == []  # nothing for the fork's recovery to stop
    copies = {task.task_id: task for task in projections.tasks(db, forked)}
    assert {t.status for t in copies.values()} == {"cancelled"}
    assert {t.cancel_reason for t in copies.values()} == {"forked"}
    assert {t.forked_from for t in copies.values()} == {source}  # the source's, not its own
    assert copies["t2"].child_session_id == "C"
    pending = projections.pending_notifications(db, forked)
    assert {t.task_id for t in pending} == {"t1", "t2"}  # its model hears why at its next step
    assert {t.status for t in projections.tasks(db, source)} == {"running"}
    assert [tuple(r) for r in db.execute("SELECT session_id FROM processes")] == [(source,)]
    before = snapshot(db)
    store.rebuild(db)
    assert snapshot(db) == before


# at 4: model.completed asked for the call; at 5: tool.started
@pytest.mark.parametrize("at", [4, 5])
def test_a_fork_cut_inside_a_tool_call_closes_the_call_it_cuts(db, at):
    source = store.create_session(db)
    tool_round(db, source, "first")
    forked = store.fork(db, source, at)
    events = list(store.read_events(db, forked))
    assert [e.type for e in events][at:] == ["session.forked", "tool.failed"]
    closed = events[-1].data
    assert (closed.call_id, closed.name, closed.kind) == ("call_1", "bash", "interrupted")
    assert f"cut at its event {at}" in closed.error
    assert projections.unanswered_tool_calls(db, forked) == []
    assert [c.status for c in projections.tool_calls(db, forked)] == ["failed"]
    # the fork takes a new prompt: every call has its result before it
    store.append(db, forked, {"type": "invocation.received", "text": "go on"})
    roles = [(m.role, m.tool_call_id) for m in projections.visible_messages(db, forked)]
    assert roles == [("user", None), ("assistant", None), ("tool", "call_1"), ("user", None)]
    # the source is untouched: its call still has its one real result
    assert [c.status for c in projections.tool_calls(db, source)] == ["completed"]


def test_a_fork_between_calls_adds_no_synthetic_result(db):
    source = store.create_session(db)
    tool_round(db, source, "first")
    forked = store.fork(db, source, 6)
    assert [e.type for e in store.read_events(db, forked)][-1] == "session.forked"
