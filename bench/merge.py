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

from . import Figure, measure_process_usage
from .store_append import turn

EVENTS_PER_FILE = 1000
LH = str(Path(sys.executable).with_name("lh"))


RATE_NOTE = (
    "measured split of one file's merge at 1,000 files (ms of CPU a file, by statement, at "
    "load average ~9.7 on 2 cores from other work, which inflates CPU time ~25 %): INSERT "
    "of the 1,000 events into the table and its 3 indexes 3.0, COMMIT 2.7 (~200 pages of "
    "WAL frames, the FTS segment, a checkpoint every 10,000 pages), ATTACH + DETACH 2.1 "
    "(SQLite parses the source's whole schema on ATTACH: its 50 triggers are 1.1 of it), "
    "the projection rows 4.7 (messages 1.3, conversation_fts 1.1, timeline 0.85, "
    "conversation 0.85, tool_calls 0.5, the rest 0.4), the plan and schema checks 1.2 (the "
    "first reads of the source's pages), Python 1.4. The same merge of 200 files at load "
    "~5.6 takes 12.4 ms a file (81,000 events per CPU second). The copy runs with the merge "
    "connection's triggers off (SQLITE_DBCONFIG_ENABLE_TRIGGER, other connections keep "
    "theirs); conversation rows move with their events' new seqs and the FTS index takes "
    "them in the same transaction. Replaying a file through the triggers instead costs "
    "~38 ms. With one transaction per file (~7,400 b-tree inserts, ~200 WAL pages) the "
    "floor is ~10-11 ms a file on an idle core: 100,000 events/s would need several files "
    "per transaction or a second core"
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
        conn.execute("UPDATE sessions SET id = ?", (session_id,))
        # Every projection keyed by session (the FTS index's own tables are not).
        for (table,) in conn.execute(
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
            "WHERE m.type = 'table' AND c.name = 'session_id' "
            "AND m.name NOT IN ('events', 'trial_sessions')"
        ).fetchall():
            conn.execute(f'UPDATE "{table}" SET session_id = ?', (session_id,))
        conn.execute("COMMIT")
        conn.close()
        result = {
            "id": f"trial-{n}",
            "trial_name": trial.name,
            "task_name": f"task-{n % 50}",
            "verifier_result": {"rewards": {"reward": n % 2}},
        }
        (trial / "result.json").write_text(json.dumps(result))


def merge_once(job: Path, files: int) -> tuple[float, float, float]:
    """(events/s of wall time, peak RSS MB, events per CPU second) of one `lh merge`
    into a fresh home."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LEHARNESS_HOME": home}
        command = [LH, "merge", str(job)]
        wall_ms, peak_mb, code, cpu_ms = measure_process_usage(command, env, home)
        if code != 0:
            raise RuntimeError(f"lh merge exited {code}")
        conn = sqlite3.connect(Path(home) / "sessions.db")
        count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
        if count != files * EVENTS_PER_FILE:
            raise RuntimeError(f"merged {count} events, expected {files * EVENTS_PER_FILE}")
    return count / (wall_ms / 1000), peak_mb, count / (cpu_ms / 1000)


def run(quick: bool) -> list[Figure]:
    files = 100 if quick else 1000
    rows = template_rows()
    rates, cpu_rates, peaks_small, peaks_big = [], [], [], []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        small, big = Path(folder, "small"), Path(folder, "big")
        template_db = template(Path(folder), rows)
        make_job(small, 100, template_db)
        make_job(big, files, template_db)
        for _ in range(1 if not quick else 2):
            rate, peak, cpu_rate = merge_once(big, files)
            rates.append(rate)
            cpu_rates.append(cpu_rate)
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
            "as one `lh merge` process (start-up and the trials table included); "
            f"load average {load:.1f} on {os.cpu_count()} cores when the run started; " + RATE_NOTE,
        ),
        Figure(
            f"merge rate per CPU second, {files:,} files",
            "events/s",
            cpu_rates,
            "(the wall target, with a core to itself)",
            None,
            "events / (user + sys) time of the same `lh merge` process: what the rate would "
            "be on an idle core, since the machine is shared",
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
