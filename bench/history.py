"""Time travel on a big database: `lh show ID --at N` on the 1,000,000-event,
1,000-session database of store_open (events 1..N of one session projected
in a scratch in-memory database holding the three projections a transcript
reads). The library calls the command makes (project + read plain records +
format) in process, and the whole `lh` process beside `lh show ID` without
--at and `lh --help`, the floor of start-up, measured in the same run."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from leharness import store
from leharness.cli.transcript import format_transcript
from leharness.projections import records
from leharness.store.timetravel import session_at

from . import Figure, measure_process, timed
from .store_open import CACHE, build

LH = str(Path(sys.executable).with_name("lh"))


def run(quick: bool) -> list[Figure]:
    events = 100_000 if quick else 1_000_000
    path = CACHE / f"events-{events}.db"
    CACHE.mkdir(exist_ok=True)
    if not path.exists():
        build(path, events, 1_000)
    probe = store.open_store(path)
    (session_id,) = probe.execute(
        "SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET 500"
    ).fetchone()
    at = store.last_seq(probe, session_id) * 7 // 10
    probe.close()

    def show_at() -> None:
        conn = store.open_store(path)
        scratch = session_at(conn, session_id, at, records.TRANSCRIPT_PROJECTIONS)
        row = records.session(scratch, session_id)
        format_transcript(row, records.all_messages(scratch, session_id))
        records.tasks(scratch, session_id)
        scratch.close()
        conn.close()

    show_at()  # warm the page cache, as a second command would find it
    repeat = 5 if quick else 11
    in_process = timed(show_at, repeat)
    with tempfile.TemporaryDirectory() as home:
        os.symlink(path.resolve(), Path(home) / "sessions.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEHARNESS_")}
        env["LEHARNESS_HOME"] = home
        command = [LH, "show", session_id, "--at", str(at)]
        assert measure_process(command, env, home)[2] == 0
        process = [measure_process(command, env, home)[0] for _ in range(repeat)]
        now = [measure_process(command[:3], env, home)[0] for _ in range(repeat)]
        floor = [measure_process([LH, "--help"], env, home)[0] for _ in range(repeat)]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    label = f"{events:,} events, 1,000 sessions, --at {at}"
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end"
    return [
        Figure(
            f"show --at in process: open, project 1..N, read, format ({label})",
            "ms",
            in_process,
            "< 100 ms",
            median(in_process) < 100,
            load,
        ),
        Figure(
            f"lh show ID --at N, whole process ({label})",
            "ms",
            process,
            "< 100 ms",
            median(process) < 100,
            "no pydantic, asyncio or openai on this path (tests/test_startup.py); "
            "what is left is Python, click and projecting the events",
        ),
        Figure(
            "lh show ID, as it is now, whole process (same session, same run)",
            "ms",
            now,
            "< 100 ms",
            median(now) < 100,
        ),
        Figure("lh --help (start-up floor, same run)", "ms", floor),
    ]
