"""`lh merge` across two cores: checkpoints on a second connection and thread (and the
rules that keep it safe: the WAL stays bounded, the connection gets its settings back)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from leharness import store
from leharness.store import health
from leharness.store import merge as merge_module
from leharness.store.checkpointer import Checkpointer

from .test_merge import claim_elsewhere, make_trial, merge, merged_then_grown
from .util import snapshot


@pytest.mark.parametrize("thread", ["running", "stalled"])
def test_background_checkpoints_keep_the_wal_bounded(tmp_path, db, monkeypatch, thread):
    """The merge connection's own checkpoints are off: the thread's and the catch-up
    between files still restart the WAL, so it stays a few files long, also when the
    thread never gets to run."""
    if thread == "stalled":
        monkeypatch.setattr(Checkpointer, "_run", lambda self: None)
    monkeypatch.setattr(merge_module, "CHECKPOINT_PAGES", 40)
    monkeypatch.setattr(merge_module, "CHECKPOINT_EVERY", 2)
    job = tmp_path / "job"
    for n in range(30):
        make_trial(job, f"t__{n}", reward=1.0, rounds=3)
    wal = f"{db.execute('PRAGMA database_list').fetchone()[2]}-wal"
    sizes = []
    with merge_module.Merger(db) as merger:
        started = [merger._checkpoints._thread]
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for path in merge_module.find_databases([job]):
            assert merger.merge(path).events_added == 1 + 3 * 8
            sizes.append(os.path.getsize(wal))
    # Each file adds ~27 frames (~110 KB; the first 72): without restarts the WAL would
    # reach 3.5 MB. With them it holds at most 4 × 40 frames and one file, however the
    # threads are scheduled.
    assert sizes[-1] > 0 and max(sizes) <= (4 * 40 + 80) * (4096 + 24)
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert started and not [t for t in started if t.is_alive()]
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 30 * 25


def test_staged_files_give_the_rows_attached_files_give(tmp_path, db, monkeypatch):
    """The merge reads each file from the stager's copy (triggers, views and the FTS
    table left out): the same projection rows and search hits as attaching the files."""
    job = tmp_path / "job"
    for n in range(4):
        make_trial(job, f"t__{n}", reward=n % 2, rounds=n + 1)
    staged = []
    original = merge_module.Merger._merge_staged
    monkeypatch.setattr(
        merge_module.Merger,
        "_merge_staged",
        lambda self, path, *rest: staged.append(path) or original(self, path, *rest),
    )
    assert merge(job).exit_code == 0
    assert len(staged) == 4
    fast = snapshot(db)
    assert health.rebuild_drift(db) == []
    monkeypatch.setattr(merge_module, "STAGE_LIMIT", 0)
    attached_home = tmp_path / "attached"
    monkeypatch.setenv("LEHARNESS_HOME", str(attached_home))
    result = merge(job)
    assert result.exit_code == 0, result.output
    assert len(staged) == 4  # none staged this time
    attached = store.open_store(attached_home / "sessions.db")
    assert snapshot(attached) == fast
    hits = "SELECT rowid FROM conversation_fts WHERE conversation_fts MATCH ? ORDER BY rowid"
    for word in ("task", "t__3"):
        assert attached.execute(hits, (word,)).fetchall() == db.execute(hits, (word,)).fetchall()
    attached.close()


def test_a_staged_file_laid_out_unlike_the_last_is_read_by_its_own_root_pages(
    tmp_path, db, monkeypatch
):
    """`src` stays attached from one staged file to the next, and so do the statements
    prepared for it; the stager's connection keeps the schema it parsed. A file with the
    same schema cookie but its tables and indexes at other root pages (SQLite would run
    those statements, and read the stager's counts, on the wrong pages) is read on a new
    stager connection and gets `src` attached afresh: each file's rows are its own."""
    job = tmp_path / "job"
    first = make_trial(job, "t__0", reward=1.0, rounds=2)
    second = make_trial(job, "t__1", reward=0.0, rounds=3)
    files = [job / name / "agent" / "leharness" / "sessions.db" for name in ("t__0", "t__1")]
    layout = "SELECT name, rootpage FROM sqlite_master WHERE rootpage > 0 ORDER BY name"
    with closing(sqlite3.connect(files[0])) as a, closing(sqlite3.connect(files[1])) as b:
        (cookie,) = a.execute("PRAGMA schema_version").fetchone()
        b.execute("VACUUM")  # indexes move after the tables: other root pages
        b.execute(f"PRAGMA schema_version = {cookie}")
        assert b.execute("PRAGMA schema_version").fetchone() == (cookie,)
        assert a.execute(layout).fetchall() != b.execute(layout).fetchall()
    loaded = []
    original = merge_module.Merger._load_src
    monkeypatch.setattr(
        merge_module.Merger,
        "_load_src",
        lambda self, data: loaded.append(1) or original(self, data),
    )
    assert merge(job).exit_code == 0
    assert len(loaded) == 2  # both files staged
    mine = "SELECT id, session_seq, type, data FROM events WHERE session_id = ? ORDER BY seq"
    for path, session_id in zip(files, (first, second), strict=True):
        with closing(sqlite3.connect(path)) as source:
            expected = source.execute(mine, (session_id,)).fetchall()
        assert [tuple(row) for row in db.execute(mine, (session_id,))] == expected
    assert health.rebuild_drift(db) == []
    fast = snapshot(db)
    monkeypatch.setattr(merge_module, "STAGE_LIMIT", 0)
    monkeypatch.setenv("LEHARNESS_HOME", str(tmp_path / "attached"))
    assert merge(job).exit_code == 0
    attached = store.open_store(tmp_path / "attached" / "sessions.db")
    assert snapshot(attached) == fast
    attached.close()


def test_files_merged_between_staged_ones_and_the_connection_after_have_triggers_on(
    tmp_path, db, monkeypatch
):
    """Staged files leave the connection's triggers and CHECKs off for the next one's
    copy: a file merged the attached way between them, and the connection after the
    merge, have them on again (projections follow an append; a bad event is refused)."""
    job = tmp_path / "job"
    ids = [make_trial(job, f"t__{n}", reward=1.0, rounds=30 if n == 1 else 1) for n in range(3)]
    sizes = sorted(p.stat().st_size for p in job.rglob("sessions.db"))
    monkeypatch.setattr(merge_module, "STAGE_LIMIT", sizes[-1] - 1)  # t__1 is attached
    used = []
    for name in ("_merge_staged", "_merge_file"):
        original = getattr(merge_module.Merger, name)
        monkeypatch.setattr(
            merge_module.Merger,
            name,
            lambda self, path, *rest, _o=original, _n=name: (
                used.append(_n) or _o(self, path, *rest)
            ),
        )
    files = merge_module.find_databases([job])
    with merge_module.Merger(db) as merger:
        merger.prefetch(files)
        added = [merger.merge(path).events_added for path in files]
    assert used == ["_merge_staged", "_merge_file", "_merge_staged"]
    assert added == [1 + 8, 1 + 30 * 8, 1 + 8]
    assert health.rebuild_drift(db) == []
    assert db.execute("PRAGMA database_list").fetchall()[-1][1] != "src"  # detached
    store.append(db, ids[0], {"type": "invocation.received", "text": "after the merge"})
    last = "SELECT content FROM messages WHERE session_id = ? ORDER BY session_seq DESC"
    assert db.execute(last, (ids[0],)).fetchone()[0] == "after the merge"
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) SELECT 'x', ?, "
            "max(session_seq) + 1, ?, 'invocation.received', 'not json' FROM events "
            "WHERE session_id = ?",
            (ids[0], store.now_iso(), ids[0]),
        )


@pytest.mark.parametrize("staged", [True, False])
def test_the_plan_from_the_stagers_counts_extends_and_refuses_as_the_attached_one(
    tmp_path, db, monkeypatch, staged
):
    """The stager counts the file's sessions and tables on its thread; the merge thread
    only looks up this database's side. A grown session gets its new events only, one
    with other events is refused with nothing merged, either way."""
    if not staged:
        monkeypatch.setattr(merge_module, "STAGE_LIMIT", 0)
    used = []
    original = merge_module._plan
    monkeypatch.setattr(
        merge_module,
        "_plan",
        lambda conn, path, result, source=None: (
            used.append(source is not None) or original(conn, path, result, source)
        ),
    )
    job = tmp_path / "job"
    session_id = merged_then_grown(job)
    grown = merge(job)
    assert grown.exit_code == 0, grown.output
    assert "1 extended" in grown.output and "8 events" in grown.output
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    refused = merge(claim_elsewhere(tmp_path / "other", session_id))
    assert refused.exit_code == 2
    assert f"session {session_id} is already here with other events" in refused.output
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events
    assert used == [staged] * 3
    assert health.rebuild_drift(db) == []


def test_broken_files_mid_merge_are_refused_in_one_line_and_the_rest_merged(tmp_path, db):
    """A truncated file, a file with damaged pages and a SQLite file that is not ours,
    between good ones: each refused with one line naming it (the home is not blamed),
    nothing of it merged, every good file merged."""
    job = tmp_path / "job"
    good = [make_trial(job, f"t__{n}", reward=1.0) for n in (0, 4)]
    for n in (1, 2, 3):
        make_trial(job, f"t__{n}", reward=0.0, rounds=40)
    files = {n: job / f"t__{n}" / "agent" / "leharness" / "sessions.db" for n in (1, 2, 3)}
    files[1].write_bytes(files[1].read_bytes()[:40_000])  # truncated
    with files[2].open("r+b") as damaged:  # pages 61-80: rows of events and projections
        damaged.seek(4096 * 60)
        damaged.write(b"\xff" * 4096 * 20)
    files[3].unlink()
    other = sqlite3.connect(files[3])
    other.execute("CREATE TABLE notes (text)")
    other.commit()
    other.close()
    result = merge(job)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "lh doctor" not in result.output
    refused = [line for line in result.output.splitlines() if "refused: " in line]
    assert len(refused) == 3, result.output
    for n, line in enumerate(refused, 1):
        assert f"t__{n}" in line
    assert "is damaged" in refused[1] and "nothing of this file was merged" in refused[1]
    assert "not a leharness database" in refused[2]
    rows = db.execute("SELECT id, event_count FROM sessions ORDER BY id").fetchall()
    assert [tuple(row) for row in rows] == sorted((s, 9) for s in good)
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 18
    assert health.rebuild_drift(db) == []


def test_an_interrupted_merge_keeps_its_files_and_stops_its_threads(tmp_path, db):
    job = tmp_path / "job"
    for n in range(6):
        make_trial(job, f"t__{n}", reward=1.0)
    files = merge_module.find_databases([job])
    with pytest.raises(KeyboardInterrupt), merge_module.Merger(db) as merger:
        merger.prefetch(files)
        started = [merger._checkpoints._thread, merger._stager._thread]
        for path in files[:3]:
            merger.merge(path)
        raise KeyboardInterrupt
    assert not [t for t in started if t.is_alive()]
    assert db.execute("SELECT count(*), sum(event_count) FROM sessions").fetchone()[:] == (3, 27)
    assert merge(job).exit_code == 0
    assert db.execute("SELECT count(*), sum(event_count) FROM sessions").fetchone()[:] == (6, 54)


def test_a_killed_merge_loses_nothing_and_leaves_no_half_file(tmp_path, db, isolated_home):
    """SIGKILL a real `lh merge` while it writes: every session here is whole (each file
    is one transaction), the file is intact, and merging again completes it."""
    job = tmp_path / "job"
    sessions = 120
    for n in range(sessions):
        make_trial(job, f"t__{n:03d}", reward=1.0)
    lh = Path(sys.executable).with_name("lh")
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home)}
    process = subprocess.Popen([lh, "merge", str(job)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if db.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 5:
                break
        process.kill()
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the merge ended before it was killed"
    merged = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    assert 5 <= merged < sessions
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = db.execute("SELECT count(*) FROM events GROUP BY session_id").fetchall()
    assert {row[0] for row in counts} == {9} and len(counts) == merged
    assert db.execute("SELECT count(*) FROM trial_sessions").fetchone()[0] == merged
    assert merge(job).exit_code == 0
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == sessions
    assert health.rebuild_drift(db) == []
