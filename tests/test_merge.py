"""lh merge: trial databases into one home, ids kept, idempotent, conflicts refused,
and the trials table read from Harbor's result.json files."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from leharness import store
from leharness.cli import cli
from leharness.store import health
from leharness.store import merge as merge_module
from leharness.store.log import encode_data
from leharness.store.merge_copy import FastCopy

from .util import snapshot, tool_round


def make_trial(job: Path, name: str, reward: float, rounds: int = 1, with_db: bool = True) -> str:
    """A Harbor trial folder as `harbor run` leaves it: result.json, and lh's
    database under agent/leharness/. Returns the session id ('' without a db)."""
    folder = job / name
    session_id = ""
    if with_db:
        conn = store.open_store(folder / "agent" / "leharness" / "sessions.db")
        session_id = store.create_session(conn)
        for number in range(rounds):
            tool_round(conn, session_id, f"task {name} {number}")
        conn.close()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(trial_result(job.name, name, reward)))
    return session_id


def trial_result(job: str, name: str, reward: float) -> dict:
    return {
        "id": f"id-{name}",
        "task_name": "make-file",
        "trial_name": name,
        "source": "local",
        "agent_info": {"name": "lh", "version": "0", "model_info": {"name": "m", "provider": "p"}},
        "agent_result": {"n_input_tokens": 12, "n_output_tokens": 4, "cost_usd": None},
        "verifier_result": {"rewards": {"reward": reward}},
        "exception_info": None,
        "started_at": "2026-12-01T10:00:00",
        "finished_at": "2026-12-01T10:00:30.5",
        "agent_execution": {
            "started_at": "2026-12-01T10:00:05",
            "finished_at": "2026-12-01T10:00:25",
        },
        "verifier": None,
    }


def merged_then_grown(job: Path) -> str:
    """A one-trial job merged, then its session given one more tool round in the trial's
    own database (not merged yet); returns the session id."""
    session_id = make_trial(job, "t__1", reward=1.0)
    assert merge(job).exit_code == 0
    source = store.open_store(job / "t__1" / "agent" / "leharness" / "sessions.db")
    tool_round(source, session_id, "more")
    source.close()
    return session_id


def merge(*paths: Path):
    return CliRunner().invoke(cli, ["merge", *map(str, paths)])


def test_a_result_json_with_nan_gives_its_trial_a_row_without_that_value(tmp_path, db):
    """Python reads NaN in a result.json, SQLite's json_valid refuses it: the value is
    left out (null), the trial and its session merge, the row's JSON is valid."""
    job = tmp_path / "job"
    session_id = make_trial(job, "t__nan", reward=1.0)
    result = job / "t__nan" / "result.json"
    result.write_text(result.read_text().replace('"reward": 1.0', '"reward": NaN'))
    done = merge(job)
    assert done.exit_code == 0, done.output
    row = db.execute("SELECT reward, rewards, json_valid(result) FROM trials").fetchone()
    assert tuple(row) == (None, '{"reward": null}', 1)
    assert db.execute("SELECT session_id FROM trial_sessions").fetchone()[0] == session_id


def test_a_result_json_with_values_sqlite_cannot_hold_leaves_those_columns_empty(tmp_path, db):
    """Fields of other types than Harbor writes, and numbers past SQLite's integers or
    past a float's range, are left out of the trial's row (sqlite3 refused to bind them
    and the merge stopped with a traceback); the rest of the row and its session merge."""
    job = tmp_path / "job"
    session_id = make_trial(job, "t__odd", reward=1.0)
    result = job / "t__odd" / "result.json"
    data = json.loads(result.read_text())
    data["agent_result"] = {"n_input_tokens": 10**30, "n_output_tokens": True, "cost_usd": "free"}
    data["task_name"] = {"name": "make-file"}
    data["verifier_result"]["rewards"] = {"reward": 10**400}
    data["started_at"] = 5
    result.write_text(json.dumps(data))
    done = merge(job)
    assert done.exit_code == 0, done.output
    row = db.execute(
        "SELECT trial, task, reward, input_tokens, output_tokens, cost_usd, started_at, "
        "duration_s, json_extract(result, '$.agent_result.n_input_tokens') FROM trials"
    ).fetchone()
    assert tuple(row) == ("t__odd", None, None, None, None, None, None, None, 10**30 * 1.0)
    assert db.execute("SELECT session_id FROM trial_sessions").fetchone()[0] == session_id


def test_a_result_json_nested_past_the_recursion_limit_is_no_trial(tmp_path, db):
    """json.loads raises RecursionError on JSON nested ~1,000 deep, which stopped lh
    merge with a traceback: such a result.json is read as no trial's, and the
    database beside it merges."""
    job = tmp_path / "job"
    session_id = make_trial(job, "t__deep", reward=1.0)
    (job / "t__deep" / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    done = merge(job)
    assert done.exit_code == 0, done.output
    assert db.execute("SELECT count(*) FROM trials").fetchone()[0] == 0
    assert db.execute("SELECT id FROM sessions").fetchone()[0] == session_id


def test_a_trial_folder_not_utf8_and_a_lone_surrogate_in_result_json_are_stored_escaped(
    tmp_path, db
):
    """A trial folder whose name is not UTF-8 (its path is a row's column) and a
    result.json whose trial_name holds the JSON escape \\ud800 stopped lh merge with
    UnicodeEncodeError: both are stored escaped, as event text is."""
    job = tmp_path / "job"
    session_id = make_trial(job, "t__ok", reward=1.0)
    result = job / "t__ok" / "result.json"
    data = json.loads(result.read_text())
    data["trial_name"] = "t__\ud800"
    result.write_text(json.dumps(data))  # ensure_ascii: the escape as it is in the file
    os.rename(os.fsencode(job / "t__ok"), os.fsencode(job) + b"/t__\xff")
    done = merge(job)
    assert done.exit_code == 0, done.output
    trial, path = db.execute("SELECT trial, path FROM trials").fetchone()
    assert trial == "t__\\ud800" and path.endswith("/t__\\xff")
    assert db.execute("SELECT id FROM sessions").fetchone()[0] == session_id


def test_merge_keeps_ids_fills_trials_and_is_idempotent(tmp_path, db):
    job = tmp_path / "jobs" / "job-1"
    ids = [make_trial(job, f"make-file__{n}", reward=n % 2, rounds=n + 1) for n in range(3)]
    make_trial(job, "make-file__oracle", reward=1.0, with_db=False)
    (job / "result.json").write_text(json.dumps({"id": "job", "stats": {}}))  # the job's own

    first = merge(tmp_path / "jobs")
    assert first.exit_code == 0, first.output
    assert "3 sessions added" in first.output and "4 trials" in first.output
    sessions = {row[0]: row[1] for row in db.execute("SELECT id, event_count FROM sessions")}
    assert sessions == {ids[0]: 9, ids[1]: 17, ids[2]: 25}
    trials = db.execute(
        "SELECT trial, job, task, agent, model, reward, duration_s, agent_duration_s "
        "FROM trials ORDER BY trial"
    ).fetchall()
    assert [tuple(t) for t in trials] == [
        ("make-file__0", "job-1", "make-file", "lh", "p/m", 0.0, 30.5, 20.0),
        ("make-file__1", "job-1", "make-file", "lh", "p/m", 1.0, 30.5, 20.0),
        ("make-file__2", "job-1", "make-file", "lh", "p/m", 0.0, 30.5, 20.0),
        ("make-file__oracle", "job-1", "make-file", "lh", "p/m", 1.0, 30.5, 20.0),
    ]
    runs = db.execute("SELECT session_id, trial, reward, steps FROM trial_runs ORDER BY trial")
    assert [tuple(r) for r in runs] == [
        (ids[0], "make-file__0", 0.0, 2),
        (ids[1], "make-file__1", 1.0, 4),
        (ids[2], "make-file__2", 0.0, 6),
    ]
    # Projections came from the triggers: the same rows a rebuild gives.
    before = snapshot(db)
    store.rebuild(db)
    assert snapshot(db) == before

    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    again = merge(tmp_path / "jobs")
    assert again.exit_code == 0, again.output
    assert "0 sessions added" in again.output and "3 already here; 0 events" in again.output
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events
    assert db.execute("SELECT count(*) FROM trials").fetchone()[0] == 4


def test_a_session_that_grew_adds_only_its_new_events(tmp_path, db):
    job = tmp_path / "job"
    merged_then_grown(job)
    grown = merge(job)
    assert grown.exit_code == 0, grown.output
    assert "1 extended" in grown.output and "8 events" in grown.output
    assert db.execute("SELECT event_count FROM sessions").fetchone()[0] == 17


def claim_elsewhere(folder: Path, session_id: str) -> Path:
    """Another file that claims `session_id` with different events."""
    other = store.open_store(folder / "sessions.db")
    other.execute(
        "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
        "VALUES ('X1', ?, 1, '2026-01-01T00:00:00.000Z', 'session.created', '{}')",
        (session_id,),
    )
    other.close()
    return folder / "sessions.db"


def test_same_session_id_with_other_events_is_refused(tmp_path, db):
    job = tmp_path / "job"
    session_id = make_trial(job, "t__1", reward=1.0)
    assert merge(job).exit_code == 0
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    refused = merge(claim_elsewhere(tmp_path / "other", session_id))
    assert refused.exit_code == 2
    assert f"session {session_id} is already here with other events" in refused.output
    assert "Traceback" not in refused.output
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events


def test_a_file_that_is_not_a_database_is_refused_and_the_rest_merged(tmp_path, db):
    job = tmp_path / "job"
    make_trial(job, "t__1", reward=1.0)
    bad = job / "t__2" / "sessions.db"
    bad.parent.mkdir(parents=True)
    bad.write_text("not sqlite")
    result = merge(job)
    assert result.exit_code == 2
    assert "merged 1 of 2 databases" in result.output
    assert "not a SQLite database" in result.output
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1


def test_a_database_in_utf16_is_refused_in_one_line_and_the_rest_merged(tmp_path, db):
    """SQLite attaches only databases in the main one's text encoding. lh writes UTF-8;
    an lh database another program made in UTF-16 (after the one in UTF-8 that set the
    merge's expectations) is refused with SQLite's reason, not a traceback."""
    job = tmp_path / "job"
    kept = make_trial(job, "t__1", reward=1.0)
    utf16 = job / "t__2" / "agent" / "leharness" / "sessions.db"
    utf16.parent.mkdir(parents=True)
    with closing(sqlite3.connect(utf16)) as raw:
        raw.execute("PRAGMA encoding = 'UTF-16le'")
        raw.execute("CREATE TABLE made_in_utf16 (x)")  # the encoding sticks with a table
        raw.execute("DROP TABLE made_in_utf16")
    conn = store.open_store(utf16)
    tool_round(conn, store.create_session(conn), "stored in UTF-16")
    assert conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"
    conn.close()
    result = merge(job)
    assert result.exit_code == 2, result.output
    assert "merged 1 of 2 databases" in result.output
    assert f"{utf16} is not a usable SQLite database" in result.output
    assert "same text encoding" in result.output
    assert "Traceback" not in result.output
    assert [row[0] for row in db.execute("SELECT id FROM sessions")] == [kept]


def test_trials_survive_a_rebuild(tmp_path, db):
    make_trial(tmp_path / "job", "t__1", reward=1.0)
    assert merge(tmp_path / "job").exit_code == 0
    store.rebuild(db)
    assert db.execute("SELECT count(*) FROM trial_runs").fetchone()[0] == 1


def test_a_file_with_other_projection_triggers_is_projected_by_ours(tmp_path, db):
    """The projection rows of a file are copied only when its triggers are ours; a file
    from another version goes through our triggers, so its rows are what a rebuild gives."""
    path = tmp_path / "old" / "sessions.db"
    old = store.open_store(path)
    for (name,) in old.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'proj_timeline%'"
    ).fetchall():
        old.execute(f'DROP TRIGGER "{name}"')
    session_id = store.create_session(old)
    tool_round(old, session_id)
    assert old.execute("SELECT count(*) FROM timeline").fetchone()[0] == 0
    old.close()
    assert merge(path).exit_code == 0
    assert db.execute("SELECT count(*) FROM timeline").fetchone()[0] > 0
    before = snapshot(db)
    store.rebuild(db)
    assert snapshot(db) == before


def test_an_event_id_already_here_in_another_session_is_refused(tmp_path, db):
    session_id = store.create_session(db)
    (event_id,) = db.execute("SELECT id FROM events WHERE session_id = ?", (session_id,)).fetchone()
    other = store.open_store(tmp_path / "other" / "sessions.db")
    other.execute(
        "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
        "VALUES (?, 'S-OTHER', 1, '2026-01-01T00:00:00.000Z', 'session.created', '{}')",
        (event_id,),
    )
    other.execute(
        "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
        "VALUES (?, 'S-OTHER', 2, '2026-01-01T00:00:01.000Z', 'invocation.received', ?)",
        (store.new_ulid(), '{"text": "searchable clash"}'),
    )
    other.close()
    later = tmp_path / "zz-later"
    make_trial(later, "t__1", reward=1.0)
    events_before = db.execute("SELECT count(*) FROM events").fetchone()[0]
    # The clashing file first, then a good one: SQLite ends the clashing file's whole
    # transaction itself (INSERT OR ROLLBACK), and the next file merges as usual.
    refused = merge(tmp_path / "other" / "sessions.db", later)
    assert refused.exit_code == 2, refused.output
    assert "clash with events already here" in refused.output
    assert "Traceback" not in refused.output
    assert "merged 1 of 2 databases" in refused.output
    assert db.execute("SELECT count(*) FROM sessions WHERE id = 'S-OTHER'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events_before + 9
    hits = "SELECT count(*) FROM conversation_fts WHERE conversation_fts MATCH 'clash'"
    assert db.execute(hits).fetchone()[0] == 0


def test_a_source_table_with_quotes_in_its_name_is_read_as_a_name(tmp_path, db):
    job = tmp_path / "job"
    session_id = make_trial(job, "t__1", reward=1.0)
    source = sqlite3.connect(job / "t__1" / "agent" / "leharness" / "sessions.db")
    source.execute('CREATE TABLE "x"")  , (SELECT 1/0" (a)')
    source.execute('INSERT INTO "x"")  , (SELECT 1/0" VALUES (1)')
    source.commit()
    source.close()
    result = merge(job)
    assert result.exit_code == 0, result.output
    assert "1 sessions added" in result.output
    here = db.execute("SELECT event_count FROM sessions WHERE id = ?", (session_id,)).fetchone()
    assert tuple(here) == (9,)


def test_a_file_with_one_session_here_and_one_new_adds_the_new_one(tmp_path, db):
    job = tmp_path / "job"
    first = make_trial(job, "t__1", reward=1.0)
    assert merge(job).exit_code == 0
    source = store.open_store(job / "t__1" / "agent" / "leharness" / "sessions.db")
    second = store.create_session(source)
    tool_round(source, second, "another prompt")
    source.close()
    result = merge(job)
    assert result.exit_code == 0, result.output
    assert "1 sessions added" in result.output and "1 already here" in result.output
    counts = dict(db.execute("SELECT id, event_count FROM sessions").fetchall())
    assert counts == {first: 9, second: 9}
    before = snapshot(db)
    store.rebuild(db)
    assert snapshot(db) == before


def test_the_merge_connection_turns_its_triggers_back_on(tmp_path, db):
    """The copy runs with this connection's triggers (and CHECKs) off: afterwards the same
    connection projects, guards and checks again, and the schema still has every trigger."""
    triggers = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()
    assert merge_module.trigger_switch(db) is not None  # the fast path is the one tested here
    make_trial(tmp_path / "job", "t__1", reward=1.0)
    with merge_module.Merger(db) as merger:
        for path in merge_module.find_databases([tmp_path / "job"]):
            assert merger.merge(path).events_added == 9
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone() == (
        triggers
    )
    session_id = store.create_session(db)
    assert db.execute("SELECT event_count FROM sessions WHERE id = ?", (session_id,)).fetchone()[
        0
    ] == (1)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events")
    assert db.execute("PRAGMA ignore_check_constraints").fetchone()[0] == 0
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint"):
        db.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES ('E-BAD', ?, 2, '2026-01-01T00:00:00.000Z', 'session.note', 'not json')",
            (session_id,),
        )


def test_without_the_trigger_switch_the_merge_gives_the_same_rows(tmp_path, db, monkeypatch):
    job = tmp_path / "job"
    for n in range(3):
        make_trial(job, f"t__{n}", reward=n % 2, rounds=n + 1)
    assert merge(job).exit_code == 0
    fast = snapshot(db)
    monkeypatch.setattr(merge_module, "trigger_switch", lambda conn: None)
    slow_home = tmp_path / "slow"
    monkeypatch.setenv("LEHARNESS_HOME", str(slow_home))
    result = merge(job)
    assert result.exit_code == 0, result.output
    slow = store.open_store(slow_home / "sessions.db")
    assert snapshot(slow) == fast
    store.rebuild(slow)
    assert snapshot(slow) == fast
    slow.close()


def test_a_file_whose_session_skips_a_number_is_refused(tmp_path, db):
    """With the triggers off the events guard does not run: the plan checks that each
    session numbers its events 1..n, and a file that does not goes through the guard."""
    path = tmp_path / "gap" / "sessions.db"
    gap = store.open_store(path)
    gap.execute("DROP TRIGGER events_contiguous_seq")
    for seq, kind in ((1, "session.created"), (3, "session.note")):
        gap.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES (?, 'S-GAP', ?, '2026-01-01T00:00:00.000Z', ?, '{}')",
            (f"E{seq}", seq, kind),
        )
    gap.close()
    refused = merge(path)
    assert refused.exit_code == 2, refused.output
    assert "session_seq must be the session's max + 1" in refused.output
    assert "Traceback" not in refused.output
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_merge_brings_the_artifacts_along(tmp_path, db, isolated_home):
    from leharness.app.doctor import artifact_problems
    from leharness.tools.artifacts import locate, save

    job = tmp_path / "jobs" / "job-a"
    session_id = make_trial(job, "make-file__0", reward=1.0)
    trial_home = job / "make-file__0" / "agent" / "leharness"
    saved = save(trial_home, session_id, b"a large output")
    conn = store.open_store(trial_home / "sessions.db")
    store.append(conn, session_id, saved.created("tool_output").model_dump())
    conn.close()
    for _ in range(2):  # merging again keeps what is here
        result = merge(job)
        assert result.exit_code == 0, result.output
    (row,) = db.execute("SELECT path FROM artifacts WHERE session_id = ?", (session_id,))
    assert row[0] == f"artifacts/{session_id}/{saved.artifact_id}"
    assert locate(isolated_home, row[0]).read_bytes() == b"a large output"
    assert artifact_problems(db) == []


def test_the_fast_path_shifts_the_search_rows_and_indexes_them(tmp_path, db, monkeypatch):
    """Whole new sessions are copied with their projection rows; the conversation rows,
    keyed by the event's global seq, move with their events' new seqs, and the FTS index
    takes exactly them: what a rebuild gives, and search finds the merged words. A file
    whose global seqs have a gap goes through the triggers instead, with the same result."""
    copied: list[int | None] = []
    fast = FastCopy.copy

    def spy(self, total, checked, counts=None, hold=False):
        copied.append(fast(self, total, checked, counts, hold))
        return copied[-1]

    monkeypatch.setattr(FastCopy, "copy", spy)
    tool_round(db, store.create_session(db), "already here before the merge")
    job = tmp_path / "job"
    for n in range(3):
        make_trial(job, f"t__{n}", reward=1.0, rounds=n + 1)
    gap_path = job / "t__gap" / "agent" / "leharness" / "sessions.db"
    gap = store.open_store(gap_path)
    gap_session = store.create_session(gap)
    prompt = {"type": "invocation.received", "text": "zanzibar"}
    gap.execute(  # an event with a seq far past the others: the file's seqs are not 1..n
        "INSERT INTO events (seq, id, session_id, session_seq, ts, type, data) "
        "VALUES (50, 'E-GAP', ?, 2, '2026-01-01T00:00:00.000Z', 'invocation.received', ?)",
        (gap_session, encode_data(store.validate_payload(prompt))),
    )
    tool_round(gap, gap_session, "after a gap")
    gap.close()
    source = store.open_store(job / "t__2" / "agent" / "leharness" / "sessions.db")
    tool_round(source, store.create_session(source), "quetzalcoatl in a second session")
    source.close()

    result = merge(job)
    assert result.exit_code == 0, result.output
    assert copied == [9, 17, 34, None]  # the gapless files were copied, not the fourth

    from leharness.projections.search import search
    from leharness.store.health import rebuild_drift

    assert rebuild_drift(db) == []  # every projection row (conversation's seq too) and FTS
    rows = db.execute(
        "SELECT c.seq, c.session_seq, e.session_seq, e.session_id = c.session_id "
        "FROM conversation c JOIN events e ON e.seq = c.seq"
    ).fetchall()
    assert len(rows) == db.execute("SELECT count(*) FROM conversation").fetchone()[0] > 12
    assert all(row[1] == row[2] and row[3] for row in rows)
    for word, count in (("quetzalcoatl", 1), ("zanzibar", 1), ("task", 6), ("already", 1)):
        assert len(search(db, word)) == count, word
    doctor = CliRunner().invoke(cli, ["doctor"])
    assert doctor.exit_code == 0, doctor.output

    # The same files through the triggers alone give the same rows, seqs included.
    monkeypatch.setattr(FastCopy, "applies", lambda self, schema: False)
    slow_home = tmp_path / "slow"
    monkeypatch.setenv("LEHARNESS_HOME", str(slow_home))
    slow = store.open_store(slow_home / "sessions.db")
    tool_round(slow, store.create_session(slow), "already here before the merge")
    assert merge(job).exit_code == 0
    assert len(copied) == 4
    query = (  # the merged rows (the session made here first has its own ts in each home)
        "SELECT seq, session_id, session_seq, role, kind, tool, text, ts FROM conversation "
        "WHERE seq > 9 ORDER BY seq"
    )
    merged = [tuple(row) for row in db.execute(query)]
    assert [tuple(row) for row in slow.execute(query)] == merged and len(merged) > 12
    hits = "SELECT rowid FROM conversation_fts WHERE conversation_fts MATCH ? ORDER BY rowid"
    for word in ("task", "bash", "done", "quetzalcoatl"):
        assert slow.execute(hits, (word,)).fetchall() == db.execute(hits, (word,)).fetchall()
    slow.close()


def test_a_file_another_connection_has_open_is_read_with_its_wal(tmp_path, db):
    """A file is attached immutable only when no connection has it open: events still in
    the WAL of a live writer are merged too."""
    path = tmp_path / "live" / "sessions.db"
    live = store.open_store(path)
    session_id = store.create_session(live)
    tool_round(live, session_id, "still in the wal")
    assert (tmp_path / "live" / "sessions.db-wal").exists()
    result = merge(path)
    live.close()
    assert result.exit_code == 0, result.output
    assert db.execute("SELECT event_count FROM sessions").fetchone()[0] == 9


def test_a_file_written_while_read_immutable_is_merged_again(tmp_path, db, monkeypatch):
    job = tmp_path / "job"
    make_trial(job, "t__1", reward=1.0)
    monkeypatch.setattr(merge_module, "STAGE_LIMIT", 0)  # attached, not staged
    stamps = iter([(1, 1, 1, 1), (2, 2, 2, 2)])  # at rest before the copy, changed after
    monkeypatch.setattr(merge_module, "_at_rest", lambda path: next(stamps, None))
    result = merge(job)
    assert result.exit_code == 0, result.output
    assert "1 sessions added" in result.output and "9 events" in result.output
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 9
    assert health.rebuild_drift(db) == []
