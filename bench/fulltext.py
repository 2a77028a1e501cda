"""Full-text search on a big home: `lh search` (projections.search.search, the 20 best
hits with snippets, ranked by bm25) over 1,000,000 events in 1,000 sessions whose
prompts, calls, results and answers are drawn from a 20,000-word vocabulary with a
Zipf distribution (as words are in real text), so a query's hit count is realistic.
Also the whole `lh search` process, and matching_session_ids (the --resume picker's filter)."""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from leharness import store
from leharness.projections.search import matching_session_ids, search
from leharness.store.log import encode_data

from . import Figure, measure_process, timed
from .store_open import CACHE

LH = str(Path(sys.executable).with_name("lh"))
VOCABULARY = 20_000
SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]


def words(rng: random.Random) -> list[str]:
    """VOCABULARY distinct pseudo-words, most frequent first."""
    seen: dict[str, None] = {}
    while len(seen) < VOCABULARY:
        seen["".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))] = None
    return list(seen)


def build(path: Path, events: int, sessions: int) -> float:
    """Fill a database through the real triggers (FTS included); seconds taken."""
    rng = random.Random(7)
    vocab = words(rng)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, VOCABULARY + 1)))

    def text(n: int) -> str:
        return " ".join(rng.choices(vocab, cum_weights=cumulative, k=n))

    started = time.perf_counter()
    conn = store.open_store(path)
    created = encode_data(store.validate_payload({"type": "session.created", "cwd": "/bench"}))
    per_session = events // sessions
    for _ in range(sessions):
        session_id = store.new_ulid()
        rows = [(store.new_ulid(), session_id, 1, store.now_iso(), "session.created", created)]
        seq, turn = 1, 0
        while seq < per_session:
            turn += 1
            call = f"call_{turn}"
            arguments = json.dumps({"command": f"grep -rn {text(2)} src/"})
            for payload in (
                {"type": "invocation.received", "text": text(rng.randint(5, 20))},
                {"type": "step.started", "step": 1, "model": "m"},
                {
                    "type": "model.completed",
                    "text": text(rng.randint(0, 10)),
                    "tool_calls": [{"id": call, "name": "bash", "arguments": arguments}],
                },
                {"type": "tool.started", "call_id": call, "name": "bash"},
                {
                    "type": "tool.completed",
                    "call_id": call,
                    "name": "bash",
                    "result": text(rng.randint(5, 40)),
                },
                {"type": "step.started", "step": 2, "model": "m"},
                {"type": "model.completed", "text": text(rng.randint(10, 30))},
                {"type": "agent.finished", "reason": "no_tool_calls"},
            ):
                seq += 1
                data = encode_data(store.validate_payload(payload))
                rows.append(
                    (store.new_ulid(), session_id, seq, store.now_iso(), payload["type"], data)
                )
        with store.write_transaction(conn):
            conn.executemany(
                "INSERT INTO events (id, session_id, session_seq, ts, type, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    conn.execute("INSERT INTO conversation_fts (conversation_fts) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    events = 100_000 if quick else 1_000_000
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"search-{events}.db"
    note = "cached from an earlier run"
    if not path.exists():
        note = f"built in {build(path, events, 1_000):.0f} s through the triggers"
    vocab = words(random.Random(7))
    conn = store.open_store(path)
    docs = conn.execute("SELECT count(*) FROM conversation").fetchone()[0]
    queries = {
        "two very common words": f"{vocab[2]} {vocab[6]}",
        "two common words": f"{vocab[30]} {vocab[80]}",
        "two mid-frequency words": f"{vocab[300]} {vocab[900]}",
        "two rare words": f"{vocab[5000]} {vocab[9000]}",
        "a phrase": f'"{vocab[3]} {vocab[5]}"',
        "a prefix": f"{vocab[40][:3]}*",
    }
    repeat = 5 if quick else 15
    figures = []
    for label, query in queries.items():
        search(conn, query)  # warm the page cache, as a second search would find it
        hits = conn.execute(
            "SELECT count(*) FROM conversation_fts WHERE conversation_fts MATCH ?", (query,)
        ).fetchone()[0]
        samples = timed(lambda q=query: search(conn, q), repeat)
        two_words = label.startswith("two")
        figures.append(
            Figure(
                f"search, {label} ({query}), 20 best of {hits:,} hits",
                "ms",
                samples,
                "< 50 ms" if two_words else "",
                sorted(samples)[len(samples) // 2] < 50 if two_words else None,
                f"{events:,} events, {docs:,} indexed messages; {note}",
            )
        )
    picker = timed(lambda: matching_session_ids(conn, queries["two mid-frequency words"]), repeat)
    figures.append(
        Figure("matching_session_ids (picker filter), two mid-frequency words", "ms", picker)
    )
    conn.close()
    with tempfile.TemporaryDirectory() as home:
        os.symlink(path.resolve(), Path(home) / "sessions.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEHARNESS_")}
        env["LEHARNESS_HOME"] = home
        command = [LH, "search", queries["two mid-frequency words"]]
        process = [measure_process(command, env, home)[0] for _ in range(repeat)]
    figures.append(Figure("lh search, whole process, two mid-frequency words", "ms", process))
    return figures
