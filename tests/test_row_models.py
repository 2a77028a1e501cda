"""Every typed row model matches its table as SQL defines it (`PRAGMA table_info`).

A column added to a projection's `.sql` file but not to its model would vanish from
every typed read without an error (pydantic ignores unknown keys only where told to,
and `SELECT *` readers would fail only at run time); a column dropped from SQL would
leave a field no read can fill. Each projection table is listed here, with the model
that reads it or the reason none does, so that a new table has to be placed too.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest

from leharness import store
from leharness.projections import records
from leharness.projections.models import (
    ArtifactRow,
    Message,
    ProcessRow,
    SessionRow,
    TaskRow,
    ToolCallRow,
)
from leharness.store.trials import TrialRow

#: table -> (its row model, {column the model leaves out: why}).
TYPED: dict[str, tuple[type, dict[str, str]]] = {
    "sessions": (SessionRow, {}),
    "messages": (
        Message,
        {
            "session_id": "messages are read per session",
            "reasoning_dropped": "the transcript view applies it (views.sql)",
            "compacted": "the transcript view puts it in place of content (views.sql)",
        },
    ),
    "tool_calls": (ToolCallRow, {}),
    "tasks": (TaskRow, {}),
    "processes": (ProcessRow, {}),
    "artifacts": (ArtifactRow, {}),
    "trials": (TrialRow, {}),
}

#: Columns SQL lets be NULL that every writer fills: (table, column) -> who fills it.
FILLED = {("trials", "path"): "store/trials.py writes the trial's folder on every merge"}

#: Projection tables no Python code reads as typed rows (SQL views, Datasette, lh sql do).
UNTYPED = {
    "approvals_always": "read by one SELECT in the loop's approval check",
    "checkpoints": "read by rewind's own queries",
    "conversation": "the full-text index's content table",
    "conversation_fts": "the full-text index itself (lh search, the picker)",
    "model_usage": "read by the usage views and lh usage",
    "timeline": "read through the session_timeline view",
}

#: What a declared SQLite column type holds, as a Python type of the model.
AFFINITY = {"TEXT": str, "INTEGER": int, "REAL": float}


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    return store.open_store(tmp_path_factory.mktemp("rows") / "sessions.db")


def columns(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, bool]]:
    """{column: (declared type, may be NULL)}."""
    rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    # A primary-key column of a rowid table may hold NULL in SQLite, but ours never do.
    return {row[1]: (row[2].upper(), not row[3] and not row[5]) for row in rows}


def fields(model: type) -> dict[str, Any]:
    """{field: its type} of a pydantic model or a dataclass."""
    if dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model)
        return {f.name: hints[f.name] for f in dataclasses.fields(model)}
    return {name: info.annotation for name, info in model.model_fields.items()}


def members(annotation: Any) -> set[Any]:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return set(get_args(annotation))
    return {annotation}


def mismatches(
    model: type,
    table: dict[str, tuple[str, bool]],
    left_out: dict[str, str],
    filled: frozenset[str] = frozenset(),
) -> list[str]:
    """What is wrong between `model` and the table's columns, one line each."""
    found = fields(model)
    problems = [f"column {c} has no field" for c in table if c not in found and c not in left_out]
    problems += [f"field {f} has no column" for f in found if f not in table]
    problems += [f"{c} is left out but is a field" for c in left_out if c in found]
    for name, annotation in found.items():
        if name not in table:
            continue
        declared, nullable = table[name]
        kinds = members(annotation) - {type(None)}
        if nullable and name not in filled and type(None) not in members(annotation):
            problems.append(f"{name} may be NULL but {annotation} does not take None")
        wanted = AFFINITY.get(declared)
        # INTEGER flags read as bool; the JSON text of a message's tool_calls as a list.
        readable = {wanted} | ({bool} if wanted is int else set())
        if wanted is not None and not any(get_origin(k) is list or k in readable for k in kinds):
            problems.append(f"{name} is {declared} in SQL but {annotation} in the model")
    return problems


@pytest.mark.parametrize("table", sorted(TYPED))
def test_row_model_matches_table_info(conn: sqlite3.Connection, table: str) -> None:
    model, left_out = TYPED[table]
    filled = frozenset(column for (name, column) in FILLED if name == table)
    assert mismatches(model, columns(conn, table), left_out, filled) == []


def test_every_projection_table_is_typed_or_said_why_not(conn: sqlite3.Connection) -> None:
    tables = set(store.projection_tables(conn)) | {"trials"}
    assert tables == set(TYPED) | set(UNTYPED)


def test_message_columns_read_every_message_field() -> None:
    """The transcript's plain-record reads select exactly the model's fields."""
    selected = [c.strip() for c in records.MESSAGE_COLUMNS.split(",")]
    assert selected == list(Message.model_fields)


def test_a_column_added_in_sql_is_caught(tmp_path: Path) -> None:
    conn = store.open_store(tmp_path / "sessions.db")
    conn.execute("ALTER TABLE tasks ADD COLUMN priority INTEGER")
    conn.execute("ALTER TABLE artifacts ADD COLUMN mime TEXT NOT NULL DEFAULT ''")
    assert mismatches(TaskRow, columns(conn, "tasks"), {}) == ["column priority has no field"]
    assert mismatches(ArtifactRow, columns(conn, "artifacts"), {}) == ["column mime has no field"]


def test_a_nullable_column_read_as_a_required_value_is_caught() -> None:
    table = {"id": ("TEXT", False), "title": ("TEXT", True), "steps": ("TEXT", False)}

    @dataclasses.dataclass
    class Wrong:
        id: str
        title: str
        steps: int

    assert mismatches(Wrong, table, {}) == [
        "title may be NULL but <class 'str'> does not take None",
        "steps is TEXT in SQL but <class 'int'> in the model",
    ]
