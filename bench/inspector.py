"""Inspector: on the 1,000,000-event / 1,000-session database of store_open,
the time Datasette (configured as `lh inspect` configures it) takes to serve
one session's page and the first page of each view, through Datasette's
in-process client, then the same pages over HTTP from a real `lh inspect`."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from pathlib import Path

from leharness import store
from leharness.inspector.app import make_datasette

from . import Figure
from .store_open import CACHE, build

VIEWS = ("transcript", "session_timeline", "tool_failures", "task_durations", "token_usage")
TABLES = ("events", "sessions")
TARGET_MS = 200
LH = str(Path(sys.executable).with_name("lh"))


def database(events: int) -> tuple[Path, str]:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"events-{events}.db"
    if path.exists():
        return path, "cached from an earlier run"
    seconds = build(path, events, 1_000)
    return path, f"built in {seconds:.0f} s through the triggers"


def pages(database_name: str, session_id: str) -> dict[str, str]:
    out = {"session page": f"/{database_name}/-/session/{session_id}"}
    out.update({f"{view} first page": f"/{database_name}/{view}" for view in VIEWS})
    # Not in the target, shown for scale: the biggest tables with their facets.
    out.update({f"{table} table first page": f"/{database_name}/{table}" for table in TABLES})
    return out


def in_process(path: Path, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    datasette = make_datasette(path)

    async def measure() -> dict[str, list[float]]:
        await datasette.invoke_startup()
        samples: dict[str, list[float]] = {}
        for name, url in paths.items():
            await datasette.client.get(url)  # warm: page cache, schema, templates
            samples[name] = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = await datasette.client.get(url)
                samples[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
        return samples

    return asyncio.run(measure())


def over_http(path: Path, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    """The same pages from a real `lh inspect` (the database linked in as sessions.db)."""
    with tempfile.TemporaryDirectory() as home, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        os.symlink(path.resolve(), Path(home) / "sessions.db")
        env = {**os.environ, "LEHARNESS_HOME": home}
        server = subprocess.Popen(
            [LH, "inspect", "--no-open", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(base + "/", server)
            samples: dict[str, list[float]] = {}
            for name, url in paths.items():
                get(base + url)
                samples[name] = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    get(base + url)
                    samples[name].append((time.perf_counter() - started) * 1000)
            return samples
        finally:
            server.terminate()
            server.wait(timeout=30)


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()


def wait_for(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            return get(url)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("lh inspect did not start")


def run(quick: bool) -> list[Figure]:
    events = 100_000 if quick else 1_000_000
    path, note = database(events)
    with closing(store.open_store(path)) as conn:  # migrates a cache from an older schema
        (session_id,) = conn.execute(
            "SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET 500"
        ).fetchone()
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    repeat = 5 if quick else 9
    label = f"{total:,} events"
    figures = []
    for name, samples in in_process(path, pages(path.stem, session_id), repeat).items():
        target, met = "", None
        if "table" not in name:
            target, met = f"< {TARGET_MS} ms", statistics.median(samples) < TARGET_MS
        figures.append(Figure(f"{name} ({label})", "ms", samples, target, met, note))
        note = ""
    http = over_http(path, pages("sessions", session_id), 3 if quick else 5)
    for name, samples in http.items():
        if "table" not in name:
            target, met = f"< {TARGET_MS} ms", statistics.median(samples) < TARGET_MS
            figures.append(Figure(f"{name} over HTTP ({label})", "ms", samples, target, met))
    return figures
