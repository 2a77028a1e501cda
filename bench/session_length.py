"""Flat in the length of the session: a 500-turn session built as a user builds
one, by 50 resumes (`lh --session ID "…"`) of 10 tool turns each, then the
per-turn overhead of 10 more turns on it, against the same on a 10-turn
session, in one run. Measured without compaction (a context window far above
the session) and with it (an 8,000-token window: T6 hides the oldest turns every
few steps).

The figure is lh's own CPU time per turn: the scripted server reads the `lh`
process's CPU time (Linux's per-thread schedstat, in ns) each time a request
arrives, while lh waits for the answer, and a sample is (CPU at the 11th
request - CPU at the 1st) / 10, the turns 501-510 (and 11-20). Start-up and
exit are left out: an `lh` run's CPU time varies by tens of milliseconds on a
loaded machine, which drowned a difference of separate runs of 10 and 1
turns, (T10 - T1) / 9, as measured before 2026-12-06. Each tool turn is a
`read_file` of a one-line file: a real tool call (tool.started,
tool.completed) that starts no process; a shell command would add the cost of
spawning bash and bubblewrap, the same at every length (and without
`--approval auto` it was refused: no terminal to ask on). Every sample starts
from a copy of the session as built, so the sessions do not grow while
measured."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import Figure, ensure_bytecode, measure

LH = str(Path(sys.executable).with_name("lh"))
VALGRIND = shutil.which("valgrind")
TARGET = 1.2
NOTE = "notes.txt"  # what each tool turn reads


# What still grows, measured per step in one process (2026-12-07, load 0.7-2.5).
GROWS = {
    "no compaction": "What still grows with the length is the request: ~175 KB of JSON "
    "at turn 500, sent whole every turn, and the scripted server's time to read it (its "
    "json.loads and conversation check: ~1.9 ms of CPU against 0.04 at turn 10), which lh "
    "spends asleep but pays for on waking (cold caches on a shared machine: a 10 KB "
    "request costs lh 1.30 ms of CPU when answered at once, 2.14 ms when the server "
    "sleeps 5 ms first). With the server's answer delayed 20 ms at every length, the "
    "ratio was 1.01-1.12 (main before 2026-12-07: 1.19-1.21). Sent as bytes already made "
    "(no encoding) through lh's transport, a 175 KB body costs ~0.4 ms more CPU than a "
    "10 KB one. Building it no longer grows: the conversation's bytes are kept and "
    "extended in place, so a step copies them once, into the body (~0.05 ms at turn "
    "500, where joining and encoding them made four copies); a step matches the view by "
    "the visible list's generation instead of walking ~1,100 messages; the second build "
    "of a step (compaction's measure, then the model call) is the same list. The same "
    "database with its history hidden by a T6 (44 messages seen) costs about what the "
    "10-turn session does (3.9 against 3.7 ms): the database's size is not what grows. "
    "Gone before: converting and encoding every message twice a step (~10 ms at turn "
    "500), turns() every step, GC passes over the loaded conversation inside turns. "
    "2026-12-07, 04:00: counted by callgrind, lh's own instructions per turn grow 3 % "
    "from turn 10 to turn 500 (10.30 -> 10.73 M): what the CPU time adds on top is "
    "outside them, in the kernel (per turn at 500, 26 more WAL writes: the indexes and "
    "the full-text index spread over more pages, and the 175 KB send) and in the cost "
    "of each instruction (about 30 more page faults a turn, Python's allocator taking "
    "fresh pools for a turn's objects among the loaded conversation's; cold caches). "
    "2026-12-07, 05:00: a step no longer copies the conversation (the visible messages "
    "are a snapshot of the kept list, the request one list extended in place): perf of "
    "30 turns showed list_extend, listiter_next, list_dealloc and the collector's visits "
    "of those copies among what grew; callgrind, +310k -> +183k instructions a turn over "
    "turn 10 (1.029 -> 1.017; what is left is the body's memcpy). Still growing, outside "
    "lh's instructions: the scripted server's time per request, 0.3 ms at turn 10 and "
    "~3.4 ms at turn 500 (json.loads 1.5, the usage count's json.dumps 1.35, the "
    "conversation rules 0.55), which lh sleeps through and wakes from colder; the "
    "WAL, 671 against 519 frames for the same 11 turns (the full-text index's segment "
    "merges +102, events_type +12); page faults, 37 against 7.5 a turn (the ~187 KB "
    "body, copied twice, is mapped fresh each turn: each is a little larger than the "
    "last, and glibc's mmap threshold follows the size last freed). The same turn-10 "
    "work measured 5.03 and 6.20 ms in the two halves of one run: this ratio moves by "
    "more than the 0.2 it is judged by",
    "with compaction": "At turn 500 T6 hides old turns whenever the request outgrows "
    "the ceiling (two more events, the visible rows read again, turns grouped to choose "
    "what to hide); since 2026-12-07 it hides down to 80 % of the ceiling, so that "
    "happens every few steps instead of at almost every one. At turn 10 nothing is "
    "compacted. Rows a compaction left alone keep their Message and encoding",
}


class Responder:
    """Reads the file until the prompt's number of tool turns since the last user
    message; notes the CPU time of the watched `lh` process at each request."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.cpu_ns: list[int] = []
        self.busy_s = 0.0  # CPU time the server spends on each request besides its own

    def __call__(self, body: dict):
        if self.pid is not None:
            self.cpu_ns.append(cpu_ns(self.pid))
        if self.busy_s:  # busy, like a server reading a longer request: not asleep
            end = time.thread_time() + self.busy_s
            while time.thread_time() < end:
                pass
        messages = body["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        wanted = int(str(messages[last_user]["content"]).split()[0])
        done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
        if done < wanted:
            return ToolCalls(Call("read_file", {"path": NOTE}))
        return Text("done")


def cpu_ns(pid: int) -> int:
    """CPU time of a process so far, every thread's, in ns."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that ended
            total += int(Path(task, "schedstat").read_text().split()[0])
    return total


class Session:
    def __init__(
        self, root: str, server: ScriptedServer, responder: Responder, window: int | None
    ) -> None:
        self.responder = responder
        home, self.work = Path(root, "home"), Path(root, "work")  # tools may not read lh's home
        home.mkdir()
        self.work.mkdir()
        self.db = home / "sessions.db"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))
        }
        self.env.update(
            LEHARNESS_HOME=str(home),
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_MAX_STEPS="20",
        )
        if window:
            self.env["LEHARNESS_CONTEXT_WINDOW"] = str(window)
        Path(self.work, NOTE).write_text("the same line every turn\n")
        self.id: str | None = None
        self.snapshot = home / "built.db"

    def turns(self, n: int) -> float:
        """Run one `lh` invocation of `n` tool turns on this session; its CPU ms."""
        args = [LH] + (["--session", self.id] if self.id else []) + [f"{n} reads, please"]
        done = measure(args, self.env, self.work)
        if done.code != 0:
            raise RuntimeError(f"lh exited {done.code}")
        if self.id is None:
            with sqlite3.connect(self.db) as conn:
                (self.id,) = conn.execute("SELECT id FROM sessions").fetchone()
        return done.cpu_ms

    def keep(self) -> None:
        """Keep the session as built (SQLite's backup API: never a file copy)."""
        _copy(self.db, self.snapshot)

    def restore(self) -> None:
        _copy(self.snapshot, self.db)

    def per_turn(self, turns: int = 10) -> float:
        """lh's CPU ms per turn over `turns` turns, on the session as built."""
        self.restore()
        args = [LH, "--session", str(self.id), f"{turns + 1} reads, please"]
        self.responder.cpu_ns = []
        process = subprocess.Popen(
            args, env=self.env, cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.responder.pid = process.pid
        try:
            code = process.wait()
        finally:
            self.responder.pid = None
        samples = self.responder.cpu_ns
        if code != 0 or len(samples) != turns + 2:
            raise RuntimeError(f"lh exited {code} after {len(samples)} requests")
        return (samples[-1] - samples[1]) / turns / 1e6

    def instructions_per_turn(self, turns: int = 10) -> float:
        """Millions of instructions lh itself executes per turn (callgrind, user space:
        its Python, SQLite and libraries, not the kernel): (T(turns + 1) - T(1)) / turns,
        each run on the session as built. Unlike CPU time, the count does not move with
        the machine's load or caches."""
        counts = []
        for n in (1, turns + 1):
            self.restore()
            with tempfile.TemporaryDirectory() as folder:
                out = Path(folder, "callgrind.out")
                args = [VALGRIND, "--tool=callgrind", f"--callgrind-out-file={out}", LH]
                args += ["--session", str(self.id), f"{n} reads, please"]
                done = subprocess.run(
                    args, env=self.env, cwd=self.work, capture_output=True, check=False
                )
                if done.returncode != 0:
                    raise RuntimeError(f"lh under valgrind exited {done.returncode}")
                summary = next(
                    line for line in out.read_text().splitlines() if line.startswith("summary:")
                )
                counts.append(int(summary.split()[1]))
        return (counts[1] - counts[0]) / turns / 1e6


def equal_server_time(
    long: Session,
    short: Session,
    responder: Responder,
    served: dict[Session, list[int]],
    repeat: int,
) -> tuple[tuple[list[float], list[float]], float]:
    """Per-turn CPU at 500 and at 10 again, interleaved, with the server kept busy on
    each 10-turn request for as long as it spends more on a 500-turn one (the medians
    of what it spent on each while measured); that difference in ms."""
    busy = (statistics.median(served[long]) - statistics.median(served[short])) / 1e9
    at_500, at_10 = [], []
    for _ in range(repeat):
        at_500.append(long.per_turn())
        responder.busy_s = max(busy, 0.0)
        try:
            at_10.append(short.per_turn())
        finally:
            responder.busy_s = 0.0
    return (at_500, at_10), busy * 1e3


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def run(quick: bool) -> list[Figure]:
    ensure_bytecode()
    repeat = 7 if quick else 15
    figures = []
    for label, window in (("no compaction", 10_000_000), ("with compaction", 8_000)):
        with (
            tempfile.TemporaryDirectory() as long_home,
            tempfile.TemporaryDirectory() as short_home,
            ScriptedServer(responder=(responder := Responder())) as server,
        ):
            long = Session(long_home, server, responder, window)
            short = Session(short_home, server, responder, window)
            for _ in range(50):
                long.turns(10)
            short.turns(10)
            long.keep()
            short.keep()
            at_500, at_10 = [], []
            served: dict[Session, list[int]] = {long: [], short: []}
            for _ in range(repeat):  # interleaved
                for session, samples in ((long, at_500), (short, at_10)):
                    before = len(server.handling_ns)
                    samples.append(session.per_turn())
                    served[session] += server.handling_ns[before:]
            equal = None
            if label == "no compaction":
                equal = equal_server_time(long, short, responder, served, repeat)
            counted = None
            if VALGRIND and not quick:
                counted = (long.instructions_per_turn(), short.instructions_per_turn())
            with sqlite3.connect(long.snapshot) as conn:
                events, compactions, visible = conn.execute(
                    "SELECT count(*), sum(type = 'compaction.completed'), "
                    "(SELECT count(*) FROM transcript) FROM events"
                ).fetchone()
            conn.close()
        # The ratio is of the medians; its samples, each at-500 sample over that median.
        at_10_median = statistics.median(at_10)
        ratio = [a / at_10_median for a in at_500]
        median = statistics.median(at_500) / at_10_median
        figures += [
            Figure(f"{label}: per-turn CPU at turn 500+", "ms", at_500),
            Figure(f"{label}: per-turn CPU at turn 10+", "ms", at_10),
            Figure(
                f"{label}: per-turn at 500 ÷ at 10",
                "×",
                ratio,
                f"<= {TARGET}",
                median <= TARGET,
                f"the long session: {events:,} events, {compactions or 0} compactions, "
                f"{visible:,} messages the model sees. {GROWS[label]}",
            ),
        ]
        if equal is not None:
            (eq_500, eq_10), busy_ms = equal
            figures.append(
                Figure(
                    f"{label}: per-turn at 500 ÷ at 10, the server's time per request equal",
                    "×",
                    [a / statistics.median(eq_10) for a in eq_500],
                    "(lh's own growth; see the note)",
                    None,
                    f"the same turns, the scripted server made to spend as much CPU on each "
                    f"10-turn request as on a 500-turn one ({busy_ms:.2f} ms more: the long "
                    f"request's json.loads, rules and usage count), busy rather than asleep; "
                    f"per-turn CPU {statistics.median(eq_500):.2f} ms at 500, "
                    f"{statistics.median(eq_10):.2f} ms at 10. An instant server is not "
                    "instant at 175 KB: lh waits through its work and wakes to colder "
                    "caches, which the figure above counts as lh's",
                )
            )
        if counted is not None:
            figures.append(
                Figure(
                    f"{label}: lh's instructions per turn, at 500 ÷ at 10",
                    "×",
                    [counted[0] / counted[1]],
                    "(lh's own work; see the note)",
                    None,
                    f"callgrind: {counted[0]:.2f} M instructions per turn at turn 500+, "
                    f"{counted[1]:.2f} M at turn 10+ (user space: lh's Python, SQLite and "
                    "libraries; the kernel's work, sending the request and writing the "
                    "WAL, is not counted). One run each: the count does not depend on the "
                    "machine's load, which moves the CPU time of a turn by tens of percent "
                    "between samples here. valgrind installed only",
                )
            )
    return figures
