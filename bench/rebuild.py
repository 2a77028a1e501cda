"""Writers during a projection reinstall: a database of 1,000,000 events (100,000
in the quick set) gets its projections reinstalled (as after an edited `.sql` file
or an upgrade) while three other processes append events to their own sessions,
one every 20 ms. Reported: the longest any of their appends waited, the longest
one transaction of the reinstall held the write lock, and the reinstall's time
(chunks of about 0.1 s, with 0.15 s between them for the others)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from leharness import store
from leharness.store import reinstall

from . import Figure
from .store_open import CACHE, build

WRITERS = 3
NOTE = (
    "about 60 % of it is the pauses left for the writers; in one transaction, as before, "
    "a rebuild of 1M events held the write lock for over a minute"
)

WRITER = """
import json, sys, time
from pathlib import Path
from leharness import store
path, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
conn = store.open_store(path)
session_id = store.create_session(conn)
waits = []
while not stop.exists():
    started = time.perf_counter()
    store.append(conn, session_id, {"type": "invocation.received", "text": "still here"})
    waits.append(time.perf_counter() - started)
    time.sleep(0.02)
conn.close()
out.write_text(json.dumps(waits))
"""


def run(quick: bool) -> list[Figure]:
    events = 100_000 if quick else 1_000_000
    CACHE.mkdir(exist_ok=True)
    source = CACHE / f"rebuild-{events}.db"
    if not source.exists():
        build(source, events, 1_000)
    work = CACHE / "rebuild-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    path = work / "sessions.db"
    shutil.copyfile(source, path)  # closed and checkpointed: no WAL to miss
    store.open_store(path).close()  # at the current schema before the clock starts
    stop = work / "stop"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(stop), str(work / f"w{n}.json")],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        for n in range(WRITERS)
    ]
    time.sleep(2)  # let them start appending
    started = time.perf_counter()
    progress = reinstall.reinstall_in_chunks(path, force=True)
    seconds = time.perf_counter() - started
    time.sleep(1)
    stop.touch()
    for writer in writers:
        writer.wait(timeout=60)
    waits = [w for n in range(WRITERS) for w in json.loads((work / f"w{n}.json").read_text())]
    longest = max(waits) * 1000
    total = progress.events
    shutil.rmtree(work, ignore_errors=True)
    label = f"{total:,} events"
    return [
        Figure(
            f"longest writer wait during a reinstall of {label}",
            "ms",
            [longest],
            "< 1000 ms",
            longest < 1000,
            f"{len(waits):,} appends by {WRITERS} processes; median "
            f"{sorted(waits)[len(waits) // 2] * 1000:.1f} ms",
        ),
        Figure(
            "longest transaction of the reinstall",
            "ms",
            [progress.longest_lock_s * 1000],
            note=f"{progress.chunks:,} transactions; longest by phase (ms): "
            + ", ".join(f"{k} {v * 1000:.0f}" for k, v in progress.longest_by_phase.items()),
        ),
        Figure(
            f"reinstall of {label}, writers running",
            "s",
            [seconds],
            note=NOTE,
        ),
    ]
