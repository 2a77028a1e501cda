"""Every test gets its own LEHARNESS_HOME, working directory and database file.

The suite runs in parallel (pytest-xdist, `-n auto` in pyproject.toml). A test marked
`serial` runs alone: every test holds a shared lock on one file of this run while it sets
up, runs and tears down, and a serial test holds it exclusively, so it starts once the
tests running on the other workers are done and they start nothing until it is. A second
lock (the gate) lets a waiting serial test go before tests queued after it (no starving).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

from leharness import store
from leharness.loop.replay import ReplayModel
from leharness.testing import ScriptedServer, conversation_problems

pytest_plugins = ["pytester"]  # tests/test_parallel.py runs a small suite of its own

# Hypothesis fails an example slower than 200 ms by default: a wall-clock bet that other
# workers (and other programs) on the same cores lose at random. The examples still run.
settings.register_profile("leharness", deadline=None)
settings.load_profile("leharness")


def pytest_report_header() -> str:
    return f"sqlite {sqlite3.sqlite_version}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`long` tests first (a worker starts on them while the others take everything else),
    `serial` ones last (they then rarely wait for a long test to end). Every worker sorts
    its collection the same way, as xdist requires."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("long"):
            return 0
        return 2 if item.get_closest_marker("serial") else 1

    items.sort(key=rank)


@contextmanager
def turn(item: pytest.Item) -> Iterator[None]:
    """Hold this run's shared lock for a test, or the exclusive one for a `serial` test."""
    worker_temp = item.config.option.basetemp
    if not os.environ.get("PYTEST_XDIST_WORKER") or not worker_temp:
        yield  # one process: every test runs alone anyway
        return
    run = Path(worker_temp).parent  # xdist gives each worker <the run's basetemp>/<worker id>
    serial = item.get_closest_marker("serial") is not None
    with open(run / "serial.gate", "a") as gate, open(run / "serial.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)  # waits while a serial test waits or runs
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if serial else fcntl.LOCK_SH)
        finally:
            if not serial:
                fcntl.flock(gate, fcntl.LOCK_UN)
        yield  # closing the files releases what is still held


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    with turn(item):
        return (yield)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LEHARNESS_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    # In-process runs have no terminal, so the default (ask) would refuse every bash and file
    # change; tests about approval choose their own mode.
    monkeypatch.setenv("LEHARNESS_APPROVAL", "auto")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LEHARNESS_PROVIDER", "LEHARNESS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def db(isolated_home: Path) -> Iterator[sqlite3.Connection]:
    conn = store.open_store(isolated_home / "sessions.db")
    yield conn
    conn.close()


@pytest.fixture(autouse=True)
def strict_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every scripted server a test starts is strict like OpenAI; a request it refused fails
    the test even when the test did not look (a test of the refusal clears `refused`)."""
    started: list[ScriptedServer] = []
    start = ScriptedServer.start

    def tracked(self: ScriptedServer) -> ScriptedServer:
        started.append(self)
        return start(self)

    monkeypatch.setattr(ScriptedServer, "start", tracked)
    # the in-process recorded model gets the same check, as a provider would make it
    refused: list[list[str]] = []
    complete = ReplayModel.complete

    async def checked(self: ReplayModel, messages: list, *args: object, **kwargs: object):
        problems = conversation_problems(messages)
        if problems:
            refused.append(problems)
        return await complete(self, messages, *args, **kwargs)

    monkeypatch.setattr(ReplayModel, "complete", checked)
    yield
    refused += [why for server in started for _, why in server.refused]
    assert refused == [], "a request broke OpenAI's rules (the strict server would refuse it)"
