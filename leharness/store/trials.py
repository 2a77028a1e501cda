"""Harbor trials: one `trials` row per trial's result.json, read as plain JSON.

Harbor writes `<job>/<trial>/result.json` (a TrialResult) for every trial; the
agent's logs, and so `lh`'s database, sit under `<trial>/agent/`. Nothing here
imports Harbor: the fields are read with defaults, so a result from an older or
newer Harbor still gives a row (the whole JSON is kept in `trials.result`).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from . import jsontext
from .text import storable

RESULT_FILENAME = "result.json"
#: How far above a sessions.db its trial's folder may be (<trial>/agent/leharness/sessions.db).
_MAX_DEPTH = 4


@dataclass(frozen=True)
class TrialRow:
    trial_id: str
    job: str | None
    trial: str
    task: str | None
    source: str | None
    agent: str | None
    model: str | None
    reward: float | None
    rewards: str | None
    exception_type: str | None
    exception_message: str | None
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    agent_duration_s: float | None
    verifier_duration_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    path: str
    result: str


_NAMES = tuple(f.name for f in fields(TrialRow))
_COLUMNS = ", ".join(_NAMES)
_PLACEHOLDERS = ", ".join("?" for _ in fields(TrialRow))


def is_trial_result(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("trial_name"), str)


def read_trial(path: Path) -> TrialRow | None:
    """The row for a trial's result.json; None when the file is not a trial's result
    (a job's result.json, say) or cannot be read."""
    try:
        # NaN and Infinity are not JSON (SQLite's json_valid refuses them): no value.
        data = jsontext.loads(path.read_text(encoding="utf-8"), parse_constant=lambda _: None)
    except (OSError, ValueError):
        return None
    if not is_trial_result(data):
        return None
    get = _getter(data)
    rewards = get("verifier_result", "rewards")
    folder = path.parent
    return TrialRow(
        trial_id=storable(str(data.get("id") or f"{folder.parent.name}/{data['trial_name']}")),
        job=storable(folder.parent.name) or None,
        trial=storable(data["trial_name"]),
        task=_text(get("task_name")),
        source=_text(get("source")),
        agent=_text(get("agent_info", "name")),
        model=_model(get("agent_info", "model_info")),
        reward=_reward(rewards),
        rewards=json.dumps(rewards) if isinstance(rewards, dict) else None,
        exception_type=_text(get("exception_info", "exception_type")),
        exception_message=_text(get("exception_info", "exception_message")),
        started_at=_text(get("started_at")),
        finished_at=_text(get("finished_at")),
        duration_s=_seconds(get("started_at"), get("finished_at")),
        agent_duration_s=_seconds(
            get("agent_execution", "started_at"), get("agent_execution", "finished_at")
        ),
        verifier_duration_s=_seconds(get("verifier", "started_at"), get("verifier", "finished_at")),
        input_tokens=_integer(get("agent_result", "n_input_tokens")),
        output_tokens=_integer(get("agent_result", "n_output_tokens")),
        cost_usd=_number(get("agent_result", "cost_usd")),
        path=storable(str(folder.resolve())),
        result=json.dumps(data),
    )


def record_trial(conn: sqlite3.Connection, row: TrialRow) -> None:
    """Insert or refresh the trial's row (inside the caller's transaction)."""
    sql = f"INSERT OR REPLACE INTO trials ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
    # Not dataclasses.astuple: it deep-copies every field (~0.4 ms a trial in lh merge).
    conn.execute(sql, tuple(getattr(row, name) for name in _NAMES))


def find_trial_results(paths: Iterable[Path]) -> list[Path]:
    """Every result.json under the given folders (trials' and jobs' alike)."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p.resolve() for p in path.rglob(RESULT_FILENAME) if p.is_file())
    return sorted(found)


def trial_of(db_file: Path) -> tuple[Path, TrialRow] | None:
    """The result.json and row of the Harbor trial whose folder holds this database, if
    it is inside one (its result.json read once)."""
    for folder in list(db_file.resolve().parents)[:_MAX_DEPTH]:
        result = folder / RESULT_FILENAME
        if result.is_file() and (row := read_trial(result)) is not None:
            return result, row
    return None


def _getter(data: dict):
    def get(*keys: str) -> Any:
        value: Any = data
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _model(info: Any) -> str | None:
    if not isinstance(info, dict) or not info.get("name"):
        return None
    provider = info.get("provider")
    return storable(f"{provider}/{info['name']}" if provider else str(info["name"]))


def _reward(rewards: Any) -> float | None:
    """`reward` if the verifier named one so, else the only value given."""
    if not isinstance(rewards, dict) or not rewards:
        return None
    value = rewards.get("reward", next(iter(rewards.values())) if len(rewards) == 1 else None)
    return _number(value)


# A result.json is read with defaults: a field of another type than Harbor writes (or a
# number SQLite cannot hold, which sqlite3 would refuse to bind) leaves its column empty.


def _text(value: Any) -> str | None:
    return storable(value) if isinstance(value, str) else None


_INT64 = range(-(2**63), 2**63)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value in _INT64 else None


def _number(value: Any) -> float | None:
    if not isinstance(value, int | float):  # a bool is a number here, as before: 1.0
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past a float's range
        return None
    return number if math.isfinite(number) else None


def _seconds(start: Any, end: Any) -> float | None:
    try:
        delta = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    except (TypeError, ValueError):
        return None
    return round(delta.total_seconds(), 3)
