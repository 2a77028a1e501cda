"""Append rate: `store.append()` with every projection trigger, one commit per
event (WAL, synchronous=NORMAL), against inserting the same rows into a bare
table without triggers under the same settings, in the same run; then where
one append's time goes: its phases, each projection, the WAL pages it writes
and the triggers that fire for an event they do not handle."""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from leharness import store
from leharness.store.log import encode_data
from leharness.store.schema import projection_sql

from . import Figure


def turn(i: int) -> list[dict]:
    call = f"call_{i}"
    return [
        {"type": "invocation.received", "text": f"prompt {i}"},
        {"type": "step.started", "step": 1, "model": "m"},
        {
            "type": "model.completed",
            "tool_calls": [{"id": call, "name": "bash", "arguments": '{"command": "ls"}'}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        },
        {"type": "tool.started", "call_id": call, "name": "bash"},
        {"type": "tool.completed", "call_id": call, "name": "bash", "result": "a\nb\n[exit: 0]"},
        {"type": "step.started", "step": 2, "model": "m"},
        {"type": "model.completed", "text": "done " * 20},
        {"type": "agent.finished", "reason": "no_tool_calls"},
    ]


def with_triggers(
    folder: Path, payloads: list[dict], drop: str | None = None
) -> tuple[float, float]:
    """(events/s by wall time, events/s by this process's CPU time) through every
    projection trigger (less those named `drop`%)."""
    conn = store.open_store(folder / f"triggers-{drop}.db")
    if drop:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?", (drop + "%",)
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP TRIGGER "{name}"')
    session_id = store.create_session(conn)
    started, cpu = time.perf_counter(), time.process_time()
    for payload in payloads:
        store.append(conn, session_id, payload)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return len(payloads) / elapsed, len(payloads) / cpu


def bare(folder: Path, payloads: list[dict]) -> float:
    conn = store.connect(folder / "bare.db")
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT, session_id TEXT, "
        "session_seq INTEGER, ts TEXT, type TEXT, data TEXT)"
    )
    rows = [
        (
            store.new_ulid(),
            "S",
            n,
            store.now_iso(),
            p["type"],
            encode_data(store.validate_payload(p)),
        )
        for n, p in enumerate(payloads, 1)
    ]
    started = time.perf_counter()
    for row in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) VALUES (?,?,?,?,?,?)",
            row,
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(payloads) / elapsed


def projection_triggers() -> dict[str, list[str]]:
    """The triggers each projection file creates, by file (without `.sql`)."""
    found = {}
    for filename, sql in projection_sql():
        names = re.findall(r"^CREATE TRIGGER (\w+)", sql, re.M)
        if names:
            found[filename.removesuffix(".sql")] = names
    return found


def phases(folder: Path, payloads: list[dict], drop: tuple[str, ...] = ()) -> list[float]:
    """CPU µs per append of BEGIN IMMEDIATE, the next session_seq, the INSERT (every
    trigger but `drop` runs inside it) and COMMIT (the WAL write), one commit each. The
    file is removed after: the dirty pages of earlier runs' files left for the kernel
    to write back would slow the runs that follow them."""
    path = folder / f"phases-{len(drop)}-{time.monotonic_ns()}.db"
    conn = store.open_store(path)
    for name in drop:
        conn.execute(f'DROP TRIGGER "{name}"')
    session_id = store.create_session(conn)
    models = [store.validate_payload(p) for p in payloads]
    spent = [0.0, 0.0, 0.0, 0.0]
    clock = time.process_time
    for n, model in enumerate(models, 2):
        row = (store.new_ulid(), session_id, n, store.now_iso(), model.type, encode_data(model))
        t0 = clock()
        conn.execute("BEGIN IMMEDIATE")
        t1 = clock()
        conn.execute(
            "SELECT coalesce(max(session_seq), 0) + 1 FROM events WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        t2 = clock()
        conn.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
            row,
        ).fetchone()
        t3 = clock()
        conn.execute("COMMIT")
        t4 = clock()
        for i, (a, b) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
            spent[i] += b - a
    conn.close()
    for leftover in folder.glob(f"{path.name}*"):
        leftover.unlink()
    return [1e6 * value / len(models) for value in spent]


def wal_pages(folder: Path, turns: int, drop: tuple[str, ...] = ()) -> float:
    """Pages one append writes to the WAL (each dirtied b-tree page, at COMMIT), on
    average over `turns` turns, after as many turns to warm the file."""
    path = folder / f"pages-{len(drop)}-{time.monotonic_ns()}.db"
    conn = store.open_store(path)
    for name in drop:
        conn.execute(f'DROP TRIGGER "{name}"')
    session_id = store.create_session(conn)
    for payload in (p for i in range(turns) for p in turn(i)):
        store.append(conn, session_id, payload)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    payloads = [p for i in range(turns, 2 * turns) for p in turn(i)]
    for payload in payloads:
        store.append(conn, session_id, payload)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    frames = (os.path.getsize(f"{path}-wal") - 32) / (page_size + 24)
    conn.close()
    return frames / len(payloads)


def unhandled(folder: Path, count: int, keep: tuple[str, ...] | None) -> float:
    """CPU µs per append of an event type no projection handles (only sessions' touch
    counts it), with every trigger on events, or only those named in `keep`."""
    path = folder / f"unhandled-{keep is None}-{time.monotonic_ns()}.db"
    conn = store.open_store(path)
    if keep is not None:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' "
            "AND name LIKE 'proj!_%' ESCAPE '!'"
        ).fetchall()
        for (name,) in names:
            if name not in keep:
                conn.execute(f'DROP TRIGGER "{name}"')
    session_id = store.create_session(conn)
    started = time.process_time()
    for n in range(2, count + 2):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
            "VALUES (?, ?, ?, ?, 'bench.unhandled', '{}')",
            (store.new_ulid(), session_id, n, store.now_iso()),
        )
        conn.execute("COMMIT")
    spent = time.process_time() - started
    conn.close()
    for leftover in folder.glob(f"{path.name}*"):
        leftover.unlink()
    return 1e6 * spent / count


def breakdown(quick: bool) -> list[Figure]:
    """Where one append's CPU time goes. Each projection's share is the median of
    paired differences: a run with every trigger next to a run without that
    projection's, their order swapped from one repeat to the next, so that neither a
    slow spell of the machine nor the order of the runs lands on one side."""
    payloads = [p for i in range(60 if quick else 150) for p in turn(i)]
    repeat = 3 if quick else 5
    groups = projection_triggers()
    variants: dict[str, tuple[str, ...]] = {name: tuple(t) for name, t in groups.items()}
    variants["no projection"] = tuple(t for triggers in groups.values() for t in triggers)
    every: list[list[float]] = []
    shares: dict[str, list[float]] = {name: [] for name in variants}
    alone: list[float] = []  # the runs without any projection
    dead: dict[str, list[float]] = {"all": [], "touch": []}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(repeat):
            for name, drop in variants.items():
                pair = [(), drop] if r % 2 == 0 else [drop, ()]
                runs = [sum(phases(Path(folder), payloads, d)) for d in pair]
                with_all, without = runs if r % 2 == 0 else runs[::-1]
                shares[name].append(with_all - without)
                if name == "no projection":
                    alone.append(without)
            every.append(phases(Path(folder), payloads))
            dead["all"].append(unhandled(Path(folder), len(payloads), None))
            dead["touch"].append(unhandled(Path(folder), len(payloads), ("proj_sessions_touch",)))
        pages = {name: wal_pages(Path(folder), 40, drop) for name, drop in variants.items()}
        pages["every projection"] = wal_pages(Path(folder), 40)
    figures = [
        Figure(f"append phase: {phase}", "µs", [run[i] for run in every], note=note)
        for i, (phase, note) in enumerate(PHASES)
    ]
    for name in groups:
        figures.append(
            Figure(
                f"CPU per append in projection {name}",
                "µs",
                shares[name],
                note=f"{pages['every projection'] - pages[name]:.2f} WAL pages per append; "
                "a run with every trigger against one without this file's, in pairs "
                "(a negative sample: the share is below the machine's noise)",
            )
        )
    figures += [
        Figure(
            "CPU per append in every projection",
            "µs",
            shares["no projection"],
            note=f"{pages['every projection'] - pages['no projection']:.1f} WAL pages per append",
        ),
        Figure(
            "append without any projection (BEGIN … COMMIT)",
            "µs",
            alone,
            note=f"the events table alone, {pages['no projection']:.1f} WAL pages: its rowid "
            "b-tree, the id and (session_id, session_seq) unique indexes, events_type, guards",
        ),
        Figure(
            "WAL pages written per append, every projection",
            "pages",
            [pages["every projection"]],
            note="each dirtied b-tree page goes to the WAL at COMMIT; roughly 5 µs a page "
            "(two write() calls and a checksum)",
        ),
        Figure(
            "triggers that fire for nothing: CPU per unhandled event",
            "µs",
            [a - b for a, b in zip(dead["all"], dead["touch"], strict=True)],
            note="an event type no projection handles, with every trigger against only "
            "sessions' touch: SQLite runs each AFTER INSERT trigger's program for every "
            "row (its WHEN is tested inside it), so each costs about 1 µs per event "
            "whether it applies or not",
        ),
    ]
    return figures


# What 100 µs would take: each line gives up one more thing than the line above it
# (label, what it adds: a page size, a trigger name pattern or an index to drop).
GIVING_UP: tuple[tuple[str, str], ...] = (
    ("as shipped", ""),
    ("with 2 KB pages instead of 4 KB", "page_size 2048"),
    ("+ without the search index per event", "trigger proj_search_%"),
    ("+ without events_type", "index events_type"),
    ("+ without sessions' counters per event", "trigger proj_sessions_touch"),
    ("+ without the timeline", "trigger proj_timeline_%"),
)


@dataclass(frozen=True)
class GivenUp:
    page_size: int = 4096
    triggers: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()

    def plus(self, what: str) -> GivenUp:
        kind, _, value = what.partition(" ")
        if kind == "page_size":
            return replace(self, page_size=int(value))
        if kind == "trigger":
            return replace(self, triggers=(*self.triggers, value))
        if kind == "index":
            return replace(self, indexes=(*self.indexes, value))
        return self


GIVING_UP_NOTE = {
    "with 2 KB pages instead of 4 KB": "fewer bytes per dirtied page at COMMIT; only a new "
    "file can have it (a WAL file's page size is fixed); lh merge of 1,000 x 1,000 events "
    "into such a home measured 11 % slower (2026-12-07, more WAL frames), and a "
    "million-event file's trees are deeper",
    "+ without the search index per event": "its segment written at every COMMIT; filling "
    "it in batches instead (tried, see the ratio's note) kept about half of this cost, "
    "and `lh search` then reads the newest rows apart",
    "+ without events_type": "the inspector's facets by type read it on a million events",
    "+ without sessions' counters per event": "`lh sessions` and the sessions table show "
    "updated_at and event_count from it",
    "+ without the timeline": "the inspector's timeline of steps and model calls",
}


def given_up(folder: Path, warm: list[dict], payloads: list[dict], choice: GivenUp) -> float:
    """CPU µs per append (one commit each) on a new file without what `choice` gives up."""
    path = folder / f"given-up-{time.monotonic_ns()}.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA page_size = {choice.page_size}")
    raw.execute("CREATE TABLE page_size_set (x)")  # the page size sticks with a table
    raw.execute("DROP TABLE page_size_set")
    raw.close()
    conn = store.open_store(path)
    for pattern in choice.triggers:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?", (pattern,)
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP TRIGGER "{name}"')
    for name in choice.indexes:
        conn.execute(f'DROP INDEX "{name}"')
    session_id = store.create_session(conn)
    for payload in warm:
        store.append(conn, session_id, payload)
    started = time.process_time()
    for payload in payloads:
        store.append(conn, session_id, payload)
    spent = time.process_time() - started
    conn.close()
    for leftover in folder.glob(f"{path.name}*"):
        leftover.unlink()
    return 1e6 * spent / len(payloads)


def giving_up(quick: bool) -> list[Figure]:
    """What 100 µs would take: CPU per append with one more thing given up at each line,
    the configurations interleaved in every repeat."""
    first, last = (100, 200) if quick else (300, 700)
    warm = [p for i in range(first) for p in turn(i)]
    payloads = [p for i in range(first, last) for p in turn(i)]
    choices, choice = {}, GivenUp()
    for label, what in GIVING_UP:
        choices[label] = choice = choice.plus(what)
    samples: dict[str, list[float]] = {label: [] for label in choices}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(3 if quick else 5):
            for label, given in choices.items():
                samples[label].append(given_up(Path(folder), warm, payloads, given))
    return [
        Figure(
            f"one append, {label}",
            "µs",
            values,
            "<= 100 µs",
            sorted(values)[len(values) // 2] <= 100,
            GIVING_UP_NOTE.get(label, ""),
        )
        for label, values in samples.items()
    ]


PHASES = (
    ("BEGIN IMMEDIATE", ""),
    ("next session_seq", "an index lookup"),
    ("INSERT with every trigger", "the projections' b-tree work, FTS5 tokenizing"),
    ("COMMIT", "every dirtied page to the WAL, FTS5 writing its segment"),
)


RATIO_NOTE = (
    "measured split of one append (µs): BEGIN 5, next seq 3, INSERT with the triggers 38, "
    "COMMIT 67 (every page the projections and indexes touch goes to the WAL) against "
    "~15 in all for the bare table; raising wal_autocheckpoint to 10,000 changed it by "
    "under 10 %. Since the inspector's timeline projection (2026-11-25) an append costs "
    "about 48 µs more: dropping its triggers took one measurement from 5,074 to 6,730 "
    "events/s, and dropping every projection trigger to 12,310 (pydantic validation is 2 µs). "
    "2026-12-06, with the search, checkpoint and other projections merged, by CPU time at "
    "load ~8: every trigger 4,700 events/s; without the timeline's five tool and task "
    "triggers and the sessions_updated index (rewritten on every append) 5,400. "
    "Migration 16 (timeline keeps steps and model calls, session_timeline reads tool calls "
    "and tasks from their tables; sessions_updated and conversation_session dropped): WAL "
    "pages per append of this turn 15.3 -> 12.8 and, interleaved A/B at load ~9, CPU per "
    "append 321 -> 254 µs (median of 5 runs of 3,200 events). The floor left, per append: "
    "the events table alone (4 b-trees, ~4.7 pages) with the Python around it ~70 µs; "
    "FTS5, which writes a new segment at every COMMIT (~2.5 pages and ~40-70 µs, automerge "
    "and pgsz settings changed nothing measurable); ~1 µs for every AFTER INSERT trigger "
    "whether or not its WHEN matches (SQLite tests WHEN inside the trigger's program: ~30 µs "
    "for an event no projection handles); ~5 µs per WAL page at COMMIT. 100 µs per append "
    "with the search index kept per event is below that floor. "
    "2026-12-07, tried on a branch (wp22-fts) and not taken: conversation_fts filled in "
    "batches by the triggers (at agent.finished and every 64th event) and the pending rows "
    "searched through a TEMP FTS5 table; interleaved A/B at load 3-5, CPU per append "
    "223, 207 -> 189, 185 µs, WAL pages 11.4 -> 10.2, the search projection's share "
    "60 -> 33 µs, still far from 100; and a user's own `sqlite-utils rebuild-fts` would "
    "then index rows twice and leave FTS5 calling the index malformed, for 0.3 ms a turn. "
    "The floor measured there: the events table with the Python around it ~47 µs "
    "(validation 2, JSON 1.3, ULID 3.4, timestamp 1.5, the Event 2.7), the projections "
    "~100 µs (about 5 more b-tree pages at ~6 µs each, and their trigger programs: SQLite "
    "sets up each program's registers before it tests WHEN, so merging triggers, which keeps "
    "the same bodies, saves little). Dropping events_type would save ~20 µs and "
    "tool_calls_name ~12, but the inspector's facets on a million events read them. 100 µs "
    "needs projections that write fewer pages per event. "
    "2026-12-07 05:00: the per-projection figures are now the median of paired runs "
    "(they were the least of five runs against the least of five others, which put nine "
    "of ten projections at a negative cost). perf of 12,000 appends: SQLite 30 % of the "
    "CPU, the kernel 30 % (pwrite of the WAL frames 18 %, the checkpoints' fdatasync 6 %), "
    "Python and libc the rest; page_size 2,048 or 1,024 instead of 4,096 measured 10-15 % "
    "less CPU per append (8,192: 50 % more), not taken: every existing file would need a "
    "VACUUM, and a million-event file's trees get deeper. "
    "2026-12-07 07:40: what 100 µs would take is measured in one run, interleaved (the "
    "'one append, …' figures): each line gives up one more thing, and on this machine "
    "only the last, without the search index per event, events_type, the sessions' "
    "counters, the timeline and with 2 KB pages, comes under 100 µs"
)


def run(quick: bool) -> list[Figure]:
    turns = 250 if quick else 1000
    payloads = [p for i in range(turns) for p in turn(i)]
    repeat = 5
    rates, cpu_rates, bare_rates, ratios, search_costs = [], [], [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            rate, cpu_rate = with_triggers(Path(folder), payloads)
            cpu_rates.append(cpu_rate)
            plain = bare(Path(folder), payloads)
            _, unsearched = with_triggers(Path(folder), payloads, drop="proj_search_")
        search_costs.append(1e6 / cpu_rate - 1e6 / unsearched)  # CPU: wall is load's
        rates.append(rate)
        bare_rates.append(plain)
        ratios.append(rate / plain)
    micros = [1_000_000 / rate for rate in cpu_rates]
    return [
        Figure(
            "append with triggers",
            "events/s",
            rates,
            ">= 10,000",
            sorted(rates)[len(rates) // 2] >= 10_000,
            f"{len(payloads)} events per run, one commit each, validated by pydantic, "
            "every projection",
        ),
        Figure(
            "append with triggers, by CPU time",
            "events/s",
            cpu_rates,
            ">= 10,000",
            sorted(cpu_rates)[len(cpu_rates) // 2] >= 10_000,
            "the machine is loaded (see the load average above): wall time there also counts "
            "waiting for a core and the disk",
        ),
        Figure(
            "one append with every projection, CPU",
            "µs",
            micros,
            "<= 100 µs",
            sorted(micros)[len(micros) // 2] <= 100,
        ),
        Figure("bare insert, no triggers", "events/s", bare_rates),
        Figure(
            "ratio with / without triggers",
            "×",
            ratios,
            ">= 0.5",
            sorted(ratios)[len(ratios) // 2] >= 0.5,
            RATIO_NOTE,
        ),
        Figure(
            "cost of the search index (conversation + conversation_fts) per append",
            "µs",
            search_costs,
            "",
            None,
            "CPU time of the same appends with the proj_search_* triggers dropped, same run; "
            "4 of a turn's 8 events carry conversation and are indexed",
        ),
        *breakdown(quick),
        *giving_up(quick),
    ]
