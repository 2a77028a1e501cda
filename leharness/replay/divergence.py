"""Where a replayed run first differs from its recording, compared event by event.

Events are compared by type and payload. What legitimately differs between
two runs is ignored: ids, timestamps and durations, retry counts, process
ids, the provider and model names, and paths and ids that name the new run's
own session, home, working directory, tasks and artifacts (each replayed id is
mapped to the recorded one where the two first meet).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leharness.store import Event
from leharness.tools.artifacts import locate, portable

#: Payload fields that differ between two honest runs.
IGNORED = frozenset(
    {
        "duration_ms",
        "attempts",
        "pid",
        "harness_pid",
        "boot_id",
        "start_time",
        "owner_session_id",
        "provider",
        "model",
    }
)
#: Payload fields naming something the run created; replayed values map to recorded ones.
MINTED = ("task_id", "artifact_id", "child_session_id")
#: Events about the session itself rather than its run (MCP servers are connected when a
#: session opens, and a replay starts none).
#: process.started records where a command runs, which says nothing of what it did.
# Not compared: bookkeeping of the run rather than what the session did. A file or
# tree checkpoint is recorded by a tool that runs; tools served from the recording
# record none (their results are compared).
SKIPPED = frozenset(
    {
        "session.created",
        "session.forked",
        "mcp.connected",
        "mcp.failed",
        "process.started",
        "checkpoint.file",
        "checkpoint.tree",
    }
)


@dataclass
class Divergence:
    """The first position where the two runs differ; a side is None when that run ended."""

    position: int  # 1-based among the compared events
    recorded: Event | None
    replayed: Event | None
    replayed_data: dict[str, Any] | None = None  # its payload in the recording's terms


@dataclass
class Comparison:
    compared: int  # events of the recording that were compared
    divergence: Divergence | None


class Normalizer:
    """Turns replayed payloads into the recording's terms, learning id pairs as it goes."""

    def __init__(self, substitutions: Sequence[tuple[str, str]], home: Path | None = None) -> None:
        self.pairs = [(new, old) for new, old in substitutions if new and new != old]
        self.home = home  # the replayed run's, under which its artifact paths are

    def learn(self, recorded: dict[str, Any], replayed: dict[str, Any]) -> None:
        for key in MINTED:
            self._pair(recorded.get(key), replayed.get(key))
        for old, new in zip(
            recorded.get("task_ids", []), replayed.get("task_ids", []), strict=False
        ):
            self._pair(old, new)

    def _pair(self, old: Any, new: Any) -> None:
        pair = (new, old)
        if isinstance(old, str) and isinstance(new, str) and old != new and pair not in self.pairs:
            self.pairs.append(pair)

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.apply_text(json.dumps(data, ensure_ascii=False), _escaped))

    def apply_text(self, text: str, form: Any = str) -> str:
        # Longest first, so a session id inside a longer path is not replaced half-way.
        for new, old in sorted(self.pairs, key=lambda pair: -len(pair[0])):
            text = text.replace(form(new), form(old))
        return text

    def artifact(self, recorded: dict[str, Any], replayed: dict[str, Any]) -> dict[str, Any]:
        """A replayed artifact in the recording's terms: a file that quotes the run's own
        paths and ids (a compaction transcript quoting a stub) matches once they are mapped."""
        shown = self.apply(replayed)
        shown["path"] = portable(shown.get("path", ""))
        if (shown.get("bytes"), shown.get("sha256")) == (
            recorded.get("bytes"),
            recorded.get("sha256"),
        ):
            return shown
        try:
            text = locate(self.home or Path.cwd(), replayed["path"]).read_bytes().decode("utf-8")
        except (KeyError, OSError, UnicodeDecodeError):
            return shown
        mapped = self.apply_text(text).encode("utf-8")
        if hashlib.sha256(mapped).hexdigest() == recorded.get("sha256"):
            shown.update(bytes=len(mapped), sha256=recorded["sha256"])
        return shown


def _escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def payload(event: Event) -> dict[str, Any]:
    data = event.data.model_dump(exclude={"type"}, exclude_none=True)
    return {key: value for key, value in data.items() if key not in IGNORED}


#: Events the calls of one reply record while they run together: their order is a race.
CONCURRENT = frozenset({"task.started"})


def in_call_order(events: list[Event]) -> list[Event]:
    """`events` with each run of CONCURRENT events put in the order of the calls that
    recorded them (the calls of one reply run together since they became parallel)."""
    order: dict[str, int] = {}
    out: list[Event] = []
    run: list[Event] = []
    for event in [*events, None]:
        if event is not None and event.type in CONCURRENT:
            run.append(event)
            continue
        run.sort(key=lambda e: order.get(getattr(e.data, "call_id", None) or "", len(order)))
        out += run
        run = []
        if event is None:
            break
        out.append(event)
        if event.data.type == "model.completed":
            order = {call.id: i for i, call in enumerate(event.data.tool_calls)}
    return out


def compare(
    recorded: Sequence[Event],
    replayed: Sequence[Event],
    substitutions: Sequence[tuple[str, str]] = (),
    home: Path | None = None,
) -> Comparison:
    """The first divergence of `replayed` from `recorded`, or None when they agree.
    `home`: the replayed run's home, where its artifact files are."""
    left = in_call_order([e for e in recorded if e.type not in SKIPPED])
    right = in_call_order([e for e in replayed if e.type not in SKIPPED])
    normal = Normalizer(substitutions, home)
    for position, (old, new) in enumerate(zip(left, right, strict=False), 1):
        old_data, new_data = payload(old), payload(new)
        if old.type == new.type:
            normal.learn(old_data, new_data)
        if old.type == new.type == "artifact.created":
            # Older recordings hold absolute paths; compare them in their home-relative form.
            old_data = {**old_data, "path": portable(old_data.get("path", ""))}
            shown = normal.artifact(old_data, new_data)
        else:
            shown = normal.apply(new_data)
        if old.type != new.type or old_data != shown:
            return Comparison(position - 1, Divergence(position, old, new, shown))
    if len(left) != len(right):
        position = min(len(left), len(right)) + 1
        extra_old = left[position - 1] if len(left) >= position else None
        extra_new = right[position - 1] if len(right) >= position else None
        extra_shown = normal.apply(payload(extra_new)) if extra_new else None
        return Comparison(position - 1, Divergence(position, extra_old, extra_new, extra_shown))
    return Comparison(len(left), None)


def describe(event: Event | None, data: dict[str, Any] | None = None) -> str:
    """One line: `#session_seq type {payload}`, or that this run had already ended."""
    if event is None:
        return "(nothing: this run had ended)"
    shown = payload(event) if data is None else data
    return f"#{event.session_seq} {event.type} {json.dumps(shown, ensure_ascii=False)}"
