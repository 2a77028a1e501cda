"""Every test gets its own LEHARNESS_HOME, working directory and database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from leharness import store
from leharness.replay.model import RecordedModel
from leharness.testing import ScriptedServer, conversation_problems


def pytest_report_header() -> str:
    return f"sqlite {sqlite3.sqlite_version}"


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
    complete = RecordedModel.complete

    async def checked(self: RecordedModel, messages: list, *args: object, **kwargs: object):
        problems = conversation_problems(messages)
        if problems:
            refused.append(problems)
        return await complete(self, messages, *args, **kwargs)

    monkeypatch.setattr(RecordedModel, "complete", checked)
    yield
    refused += [why for server in started for _, why in server.refused]
    assert refused == [], "a request broke OpenAI's rules (the strict server would refuse it)"
