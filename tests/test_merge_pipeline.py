"""`lh merge` across two cores: checkpoints on a second connection and thread (and the
rules that keep it safe: the WAL stays bounded, the connection gets its settings back)."""

from __future__ import annotations

import os
import threading

from leharness.store import merge as merge_module

from .test_merge import make_trial


def test_background_checkpoints_keep_the_wal_bounded(tmp_path, db, monkeypatch):
    """The merge connection's own checkpoints are off: the thread's and the catch-up
    between files still restart the WAL, so it stays a few files long."""
    monkeypatch.setattr(merge_module, "CHECKPOINT_PAGES", 40)
    monkeypatch.setattr(merge_module, "CHECKPOINT_EVERY", 2)
    job = tmp_path / "job"
    for n in range(30):
        make_trial(job, f"t__{n}", reward=1.0, rounds=3)
    wal = f"{db.execute('PRAGMA database_list').fetchone()[2]}-wal"
    sizes = []
    with merge_module.Merger(db) as merger:
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for path in merge_module.find_databases([job]):
            assert merger.merge(path).events_added == 1 + 3 * 8
            sizes.append(os.path.getsize(wal))
    # Without the restarts each file would add its ~30 frames (~120 KB) to the WAL.
    assert max(sizes[20:]) <= max(sizes[:20]) < 2_000_000
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert not [t for t in threading.enumerate() if t.name == "lh-checkpoint"]
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 30 * 25
