"""Merging a fleet: `lh merge` of N generated trial databases of 1,000 events each
(a Harbor job's layout, one result.json per trial) into an empty home, as a real
`lh` process. Rate in events/s, and peak RSS at 100 and at N files: memory must
stay flat in the number of files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

from leharness import store
from leharness.store.log import encode_data

from . import Figure, ensure_bytecode, measure_process_usage
from .store_append import turn

EVENTS_PER_FILE = 1000
LH = str(Path(sys.executable).with_name("lh"))


RATE_NOTE = (
    "the merge uses two cores since 2026-12-07: a stager thread reads the next file while "
    "one is merged (its bytes and what the merge needs to know of them, then deserialized "
    "as the source: no ATTACH parsing 50 triggers per file) and WAL checkpoints run on "
    "a third thread; one transaction per file as before. Measured in process on 400 such "
    "files at load ~3.3-3.8 (other work on the 2 cores inflates CPU time), ms of CPU a "
    "file, before -> after: the merge thread 11.3-14.6 -> 8.8-10.1 (ATTACH + DETACH + "
    "schema reads 1.4 -> 0.25, COMMIT 1.8-2.6 -> 1.2-1.3 with the checkpoints elsewhere), "
    "the whole process 11.3-14.6 -> 12.3-14.3 (the stager costs ~2.5 ms a file on the "
    "other core: reading the file 0.3, SQLite parsing its schema 0.8, the rest 1.4). What "
    "is left on the merge thread, per file: INSERT of the 1,000 events into the table and "
    "its 3 indexes 2.4, COMMIT 1.3 (~200 WAL pages), messages 1.0, conversation_fts 0.9, "
    "timeline 0.55, plan 0.45, tool_calls 0.35, conversation 0.3, the rest ~1. On an "
    "idle 2-core machine that thread's ~8-9 ms a file (less without the load) bounds the "
    "wall rate, ~110,000 events/s or more: an estimate, the machine was never idle while "
    "this was measured; here the stager competes with other work for the second core. "
    "This bench interleaved with main's code (2026-12-07 ~01:50, load 2.6-3.0): main "
    "69,483 and 65,947 events/s wall, 87,101 and 85,848 per CPU second; two cores "
    "76,746 and 93,862 wall, 81,203 and 71,660 per CPU second. "
    "Replaying a file through the triggers instead of copying its rows costs ~38 ms. "
    "2026-12-07 02:00-02:30, machine idle (load 0.5-1.0), one sample per run then three: "
    "99,417, 106,522, 81,261 events/s; 90,331, 96,589, 105,620; then, with the file's "
    "session counts and filled tables read by the stager (the merge thread's statements "
    "before the copy 0.82 -> 0.35 ms a file, 400-file in-process profile), 94,584, "
    "94,791, 95,840: the rate sits at the target within this machine's run-to-run noise "
    "(about 10 %), which is why the figure is now the median of three merges. Left on the "
    "merge thread, ms of CPU a file (300 files, in process, idle): events INSERT 2.7, "
    "COMMIT 1.2, messages 1.1, conversation_fts 0.9, timeline 0.55, tool_calls 0.35, "
    "conversation 0.33, the first statement of each transaction ~0.3 (whatever it is: "
    "a `SELECT ... LIMIT 0` on main pays it as well), the rest ~1. "
    "2026-12-07 03:20-04:10: the copies are INSERT OR ROLLBACK (no statement journal: "
    "~140 fewer pwrite calls and no temporary file per file) and the stager counts a "
    "file's tables in one statement. The two cores here do not add up: with every file "
    "staged before the merge starts, the merge thread needs 6.7-7.7 ms of CPU a file "
    "(~140,000 events/s if staging were free); with the stager running beside it, "
    "8.5-9.0 ms and ~1 ms more of waiting, the same when the staging runs in another "
    "process (so not the GIL). A stager that only reads the bytes (the merge thread "
    "parsing the schema) was no faster, nor were the helper threads at nice 19, nor "
    "a 4x larger WAL between restarts. Same code, same machine, within the hour: 104,608 "
    "and 104,091 events/s (75,953 and 73,167 per CPU second), then 79,987 (56,453 per "
    "CPU second): the machine's speed moved by a third. "
    "2026-12-07 05:00-05:45, two changes on the merge thread. Each file's ATTACH and "
    "DETACH, and turning triggers and CHECKs off and on around its copy, expired every "
    "prepared statement, so every file compiled its copies and queries again (the copy "
    "of the events with the ~50 triggers of events) and parsed the source's schema: now "
    "the staged files share one attached src (attached afresh when a file's schema or "
    "root pages differ) and the settings stay off from one fast copy to the next; the "
    "first statement of a transaction 0.34 -> 0.02 ms, ATTACH + DETACH 0.26 -> 0. And "
    "near a WAL restart the writer's catch-up copies one file's frames, not up to ten "
    "(0.6 -> 0.12 ms a file). Merge thread in process, 300 files, 6 interleaved pairs: "
    "8.86 -> 8.13 ms of CPU a file on average; bench runs interleaved with the code "
    "before them: 110,426 before, 127,061 after, then 93,940 before, 88,697 after (the "
    "machine slowing between the pairs). "
    "2026-12-07 07:20: the stager parsed each file's schema (~1.4 ms), then stripped its "
    "triggers with writable_schema, which made SQLite parse it again for the next file, "
    "and serialized a copy: now it deserializes every file into one kept connection "
    "(the schema parsed for the last file holds while the layout is the same, as for the "
    "merge's kept src, which now takes the file's bytes as read and parses their "
    "triggers only when the layout changes). Stager 3.9 -> 0.7-0.9 ms of CPU a file; "
    "user+sys of lh merge 14.2 -> 12.3 s in interleaved pairs; per CPU second 75,953 "
    "(03:21) -> 96,521 events/s"
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
    ensure_bytecode()  # as a wheel install has it: no compiling at each `lh merge` start
    files = 100 if quick else 1000
    rows = template_rows()
    rates, cpu_rates, peaks_small, peaks_big = [], [], [], []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        small, big = Path(folder, "small"), Path(folder, "big")
        template_db = template(Path(folder), rows)
        make_job(small, 100, template_db)
        make_job(big, files, template_db)
        for _ in range(3 if not quick else 2):  # each sample a fresh home; the median counts
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
            statistics.median(rates) >= 100_000,
            f"{events:,} events with their projection rows (the files carry our triggers' "
            "rows, so they are copied), one transaction per file, "
            "as one `lh merge` process (start-up and the trials table included); "
            f"load average {load:.1f} on {os.cpu_count()} cores when the run started; " + RATE_NOTE,
        ),
        Figure(
            f"merge rate per CPU second, {files:,} files",
            "events/s",
            cpu_rates,
            "(the whole work; see the note)",
            None,
            "events / (user + sys) time of the same `lh merge` process, all its threads: the "
            "whole work, on whichever cores ran it (the stager's ~2.5 ms a file included); "
            "with two cores free the wall rate can exceed it",
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
