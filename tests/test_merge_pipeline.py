"""`lh merge` across two cores: checkpoints on a second connection and thread (and the
rules that keep it safe: the WAL stays bounded, the connection gets its settings back)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
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
