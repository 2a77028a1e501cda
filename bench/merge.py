"""Merging a fleet: `lh merge` of N generated trial databases of 1,000 events each
(a Harbor job's layout, one result.json per trial) into an empty home, as a real
`lh` process. Rate in events/s, and peak RSS at 100 and at N files: memory must
stay flat in the number of files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from leharness import store
from leharness.store.log import encode_data

from . import Figure, measure_process
from .store_append import turn

EVENTS_PER_FILE = 1000
LH = str(Path(sys.executable).with_name("lh"))


RATE_NOTE = (
    "measured split of one file's merge at ~200 files (ms, load average ~6.5 on 2 cores "
    "from other work): INSERT of the 1,000 events through the append-only and contiguous-"
    "sequence guards and 4 indexes 13.4, COMMIT 11.3, ATTACH 3.1, copying the projection "
    "rows 6, the rest under 5. The projection triggers are off that path: replaying a file "
    "through them took 250-850 ms (~3,000 events/s). One transaction per file sets the floor"
)


def template_rows() -> list[tuple[str, str, str]]:
    """(ts, type, data) of one session of EVENTS_PER_FILE events: created, then turns."""
    payloads = [{"type": "session.created", "cwd": "/app", "model": "m"}]
    i = 0
    while len(payloads) < EVENTS_PER_FILE:
        payloads += turn(i)
        i += 1
    payloads = payloads[:EVENTS_PER_FILE]
    ts = "2026-12-01T10:00:00.000Z"
    return [(ts, p["type"], encode_data(store.validate_payload(p))) for p in payloads]


def template(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """One session of EVENTS_PER_FILE events appended through every trigger, as lh leaves it."""
    path = folder / "template.db"
    conn = store.open_store(path)
    session_id = store.new_ulid()
    with store.write_transaction(conn):
        conn.executemany(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                (store.new_ulid(), session_id, seq, ts, kind, data)
                for seq, (ts, kind, data) in enumerate(rows, 1)
            ),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def make_job(folder: Path, files: int, template_db: Path) -> None:
    """`files` trial folders, each with result.json and agent/leharness/sessions.db: a copy
    of the template with its own session id and event ids (guards lifted for the rewrite)."""
    for n in range(files):
        trial = folder / f"task-{n % 50}__{n:05d}"
        db_file = trial / "agent" / "leharness" / "sessions.db"
        db_file.parent.mkdir(parents=True)
        shutil.copyfile(template_db, db_file)
        conn = sqlite3.connect(db_file, isolation_level=None)
        conn.create_function("ulid", 0, store.new_ulid)
        session_id = store.new_ulid()
        guard = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'events_no_update'"
        ).fetchone()[0]
        conn.execute("BEGIN")
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET id = ulid(), session_id = ?", (session_id,))
        conn.execute(guard)
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT IN ('events', 'trials', 'trial_sessions')"
        ).fetchall():
            key = "id" if table == "sessions" else "session_id"
            conn.execute(f'UPDATE "{table}" SET {key} = ?', (session_id,))
        conn.execute("COMMIT")
        conn.close()
        result = {
            "id": f"trial-{n}",
            "trial_name": trial.name,
            "task_name": f"task-{n % 50}",
            "verifier_result": {"rewards": {"reward": n % 2}},
        }
        (trial / "result.json").write_text(json.dumps(result))


def merge_once(job: Path, files: int) -> tuple[float, float]:
    """(events/s, peak RSS MB) of one `lh merge` into a fresh home."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LEHARNESS_HOME": home}
        command = [LH, "merge", str(job)]
        wall_ms, peak_mb, code = measure_process(command, env, home)
        if code != 0:
            raise RuntimeError(f"lh merge exited {code}")
        conn = sqlite3.connect(Path(home) / "sessions.db")
        count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
        if count != files * EVENTS_PER_FILE:
            raise RuntimeError(f"merged {count} events, expected {files * EVENTS_PER_FILE}")
    return count / (wall_ms / 1000), peak_mb


def run(quick: bool) -> list[Figure]:
    files = 100 if quick else 1000
    rows = template_rows()
    rates, peaks_small, peaks_big = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        small, big = Path(folder, "small"), Path(folder, "big")
        template_db = template(Path(folder), rows)
        make_job(small, 100, template_db)
        make_job(big, files, template_db)
        for _ in range(1 if not quick else 2):
            rate, peak = merge_once(big, files)
            rates.append(rate)
            peaks_big.append(peak)
            peaks_small.append(merge_once(small, 100)[1])
    ratio = [b / s for b, s in zip(peaks_big, peaks_small, strict=True)]
    events = files * EVENTS_PER_FILE
    return [
        Figure(
            f"merge rate, {files:,} files × {EVENTS_PER_FILE:,} events",
            "events/s",
            rates,
            ">= 100,000",
            min(rates) >= 100_000,
            f"{events:,} events with their projection rows (the files carry our triggers' "
            "rows, so they are copied), one transaction per file, "
            "as one `lh merge` process (start-up and the trials table included); " + RATE_NOTE,
        ),
        Figure("peak RSS, 100 files", "MB", peaks_small),
        Figure(f"peak RSS, {files:,} files", "MB", peaks_big),
        Figure(
            f"peak RSS {files:,} / 100 files",
            "×",
            ratio,
            "<= 1.2 (flat)",
            max(ratio) <= 1.2,
        ),
    ]
