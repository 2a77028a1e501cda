"""Every test gets its own LEHARNESS_HOME, working directory and database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from leharness import store


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
