"""Sessions of the original TypeScript leharness, mapped onto our events for import.

It kept one `sessions/<id>/events.jsonl` per session: flat JSON lines
`{v: 1, id, ts, type, …camelCase fields}`. Our event names follow its names,
so mapping is mostly renaming fields; a few of its events become two of ours
(a `task.started` also answers its tool call; a finished task is also shown
to the model). Types we have no equivalent for are skipped and counted, never
an error. The result is records in our export shape, which `import_records`
loads as new sessions.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import jsontext
from .connection import StoreError
from .log import validate_payload

EVENTS_FILE = "events.jsonl"


@dataclass
class Converted:
    """Records in our export shape, and how many source events of each type were skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def is_ts_record(record: Any) -> bool:
    """An original-format line: a `v: 1` envelope without our `session_seq`."""
    return isinstance(record, dict) and record.get("v") == 1 and "session_seq" not in record


def find_sessions(path: Path) -> list[tuple[str, Path]]:
    """(session id, events.jsonl) for a session folder, its events.jsonl, or a
    `sessions/` folder holding several."""
    if path.is_file():
        return [(path.parent.name, path)]
    if (path / EVENTS_FILE).is_file():
        return [(path.name, path / EVENTS_FILE)]
    found = sorted((p.parent.name, p) for p in path.glob(f"*/{EVENTS_FILE}"))
    if not found:
        raise StoreError(f"{path} holds no {EVENTS_FILE} (nor sessions/<id>/{EVENTS_FILE})")
    return found


def read_lines(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file, one value per non-empty line, or a StoreError naming the line."""
    with path.open(encoding="utf-8") as lines:
        return parse_lines(lines, str(path))


def parse_lines(lines: Iterable[str], name: str) -> list[Any]:
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(jsontext.loads(line))
        except json.JSONDecodeError as error:
            raise StoreError(f"line {number} of {name} is not JSON: {error.msg}") from None
    return records


def convert(sessions: list[tuple[str, Path]]) -> Converted:
    """Map every session's events; link subagent sessions to the task that spawned them."""
    logs = {session_id: _read_log(path) for session_id, path in sessions}
    parents = _spawned_by(logs)
    out = Converted()
    for session_id, path in sessions:
        if logs[session_id]:  # an empty log started no session worth keeping
            mapper = _SessionMapper(session_id, path, parents.get(session_id), out.skipped)
            out.records += mapper.run(logs[session_id])
    return out


def _read_log(path: Path) -> list[dict[str, Any]]:
    events = read_lines(path)
    for number, event in enumerate(events, 1):
        if not is_ts_record(event) or not isinstance(event.get("type"), str):
            raise StoreError(f"line {number} of {path}: not a v1 event of the original leharness")
    return events


def _spawned_by(logs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """{child session id: session.created fields naming its parent}, from task.started events."""
    parents = {}
    for session_id, events in logs.items():
        for event in events:
            if event.get("type") != "task.started":
                continue
            task: dict[str, Any] = event.get("task") or {}
            payload = task.get("payload") or {}
            child = payload.get("childSessionId")
            if child in logs:
                parents[child] = {
                    "parent_session_id": session_id,
                    "parent_task_id": task.get("id"),
                    "agent_type": payload.get("presetName") or "general",
                }
    return parents


def stable_id(key: str, ts: str) -> str:
    """A ULID-shaped id made from `key` (and the time in `ts`) rather than from chance."""
    try:
        millis = int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        millis = 0
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:10], "big")
    value = (max(0, min(millis, 2**48 - 1)) << 80) | digest
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

TASK_KINDS = {"shell": "bash", "delegated": "agent"}


class _SessionMapper:
    """Walks one session's events in order, keeping what later events need."""

    def __init__(
        self, session_id: str, path: Path, parent: dict[str, Any] | None, skipped: Counter[str]
    ) -> None:
        self.session_id = session_id
        self.folder = path.parent
        self.parent = parent or {}
        self.skipped = skipped
        self.provider: str | None = None
        self.model: str | None = None
        self.call_names: dict[str, str] = {}
        self.seq_of: dict[str, int] = {}  # original event id -> our session_seq
        self.records: list[dict[str, Any]] = []

    def run(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first = next((e for e in events if e.get("type") == "invocation.received"), {})
        self.provider, self.model = first.get("provider"), first.get("model")
        created_ts = events[0].get("ts", "") if events else ""
        self.emit(created_ts, "session.created", {"cwd": self._cwd(), **self._who(), **self.parent})
        for number, event in enumerate(events, 1):
            handler = _HANDLERS.get(event["type"])
            if handler is None:
                self.skipped[event["type"]] += 1
                continue
            self.seq_of[str(event.get("id"))] = len(self.records) + 1
            try:
                for event_type, data in handler(self, event):
                    self.emit(str(event.get("ts", "")), event_type, data)
            except (KeyError, TypeError, AttributeError, ValueError) as error:
                where = f"line {number} of {self.folder / EVENTS_FILE}"
                raise StoreError(f"{where}: {event['type']} not understood ({error})") from None
        return self.records

    def emit(self, ts: str, event_type: str, data: dict[str, Any]) -> None:
        data = {k: v for k, v in data.items() if v is not None}
        validate_payload({**data, "type": event_type})  # a ValueError names the bad field
        seq = len(self.records) + 1
        self.records.append(
            {
                # The same source event always gets the same id: importing it twice adds nothing.
                "id": stable_id(f"{self.session_id}/{seq}/{event_type}", ts),
                "session_id": self.session_id,
                "session_seq": seq,
                "ts": ts,
                "type": event_type,
                "data": data,
            }
        )

    def _who(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model}

    def _cwd(self) -> str:
        # <cwd>/.leharness/sessions/<id>/events.jsonl: the project folder it ran in
        home = self.folder.parent.parent
        return str(home.parent) if home.name == ".leharness" else ""

    def artifact_file(self, artifact_id: str) -> Path:
        return self.folder / "artifacts" / artifact_id


Mapped = Iterator[tuple[str, dict[str, Any]]]


def _invocation(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    m.provider, m.model = e.get("provider") or m.provider, e.get("model") or m.model
    if e["type"] == "invocation.received":
        yield "invocation.received", {"text": str(e.get("text", ""))}
    else:
        yield "invocation.auto", {"reason": e.get("reason")}


def _step(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    yield "step.started", {"step": e.get("stepNumber", 0), **m._who()}


def _model_completed(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    calls = []
    for call in e.get("toolCalls") or []:
        m.call_names[call["id"]] = call["name"]
        args = call.get("args")
        text = args if isinstance(args, str) else json.dumps(args or {})  # raw text is kept
        calls.append({"id": call["id"], "name": call["name"], "arguments": text})
    usage = e.get("usage") or None
    if usage:
        usage = {
            "prompt_tokens": usage.get("promptTokens", 0),
            "completion_tokens": usage.get("completionTokens", 0),
        }
    yield (
        "model.completed",
        {
            "text": e.get("text") or "",
            "reasoning": e.get("reasoningText") or "",
            "tool_calls": calls,
            "usage": usage,
            "model": m.model,
        },
    )


def _model_other(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    if e["type"] == "model.failed":
        yield "model.failed", {"error": str(e.get("error", ""))}
    else:
        yield "model.cancelled", {"text": e.get("text") or ""}


def _tool(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    call = e.get("call") or {}
    ids = {"call_id": call.get("id"), "name": call.get("name")}
    if e["type"] == "tool.started":
        yield "tool.started", ids
    elif e["type"] == "tool.completed":
        yield (
            "tool.completed",
            {**ids, "result": e.get("result", ""), "artifact_id": e.get("artifactId")},
        )
    else:
        yield "tool.failed", {**ids, "error": str(e.get("error", ""))}


def _task_started(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    task: dict[str, Any] = e.get("task") or {}
    payload = task.get("payload") or {}
    call_id = e.get("callId")
    kind = task.get("kind") or "task"
    yield (
        "task.started",
        {
            "task_id": task.get("id"),
            "kind": TASK_KINDS.get(kind, kind),
            "call_id": call_id,
            "command": payload.get("command"),
            "prompt": payload.get("prompt"),
            "child_session_id": payload.get("childSessionId"),
        },
    )
    if call_id:  # the original answered the tool call with this handle
        note = "background task is running; call read_task or wait_task to follow up"
        result = {"task_id": task.get("id"), "status": "started", "note": note}
        name = m.call_names.get(call_id, "bash")
        yield "tool.completed", {"call_id": call_id, "name": name, "result": json.dumps(result)}


def _task_finished(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    task_id, summary, artifact_id = e.get("taskId"), e.get("summary"), e.get("artifactId")
    phase = e["type"].split(".")[1]
    ids = {"task_id": task_id, "artifact_id": artifact_id}
    if phase == "completed":
        body = str(e.get("result") or "")
        yield e["type"], {**ids, "summary": summary or "", "output": body}
    elif phase == "failed":
        body = str(e.get("error") or "")
        yield e["type"], {**ids, "error": body}
    else:
        reason = str(e.get("reason") or "user")
        body = f"reason: {reason}"
        yield e["type"], {**ids, "reason": reason}
    # The original put the outcome straight into the prompt as a user message.
    header = f"[background task {task_id}] {phase}" + (f" · {summary}" if summary else "")
    yield "task.delivered", {"task_ids": [task_id], "text": f"{header}\n{body}" if body else header}


def _artifact(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    artifact_id = str(e.get("id"))
    path = m.artifact_file(artifact_id)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    yield (
        "artifact.created",
        {
            "artifact_id": artifact_id,
            "kind": "task_output" if e.get("sourceTaskId") else "tool_output",
            "path": str(path),
            "bytes": e.get("byteCount", 0),
            "sha256": sha256,
            "call_id": e.get("sourceCallId"),
            "task_id": e.get("sourceTaskId"),
        },
    )


_ENVELOPE = {"v", "id", "ts", "type"}


def _compaction(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    rest = {k: v for k, v in e.items() if k not in _ENVELOPE}
    if e["type"] == "compaction.started":
        yield (
            "compaction.started",
            {
                "tier": str(rest.pop("phase", "summarizing")),
                "pressure": rest.pop("pressureRatio", None),
                "details": rest,
            },
        )
    elif e["type"] == "compaction.completed":
        yield (
            "compaction.completed",
            {"tier": str(rest.pop("strategy", "unknown")), "details": rest},
        )
    else:
        covered = [m.seq_of[i] for i in e.get("coveredEventIds") or [] if i in m.seq_of]
        yield (
            "compaction.summary",
            {
                "from_seq": min(covered, default=0),
                "to_seq": max(covered, default=0),
                "summary": e.get("summaryText") or "",
                "artifact_id": e.get("sourceArtifactId"),
            },
        )


def _skill(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    yield (
        "skill.loaded",
        {
            "name": e.get("name", ""),
            "path": e.get("path", ""),
            "content_hash": e.get("contentHash", ""),
        },
    )


def _finished(m: _SessionMapper, e: dict[str, Any]) -> Mapped:
    yield "agent.finished", {"reason": e.get("reason"), "text": e.get("text") or ""}


_HANDLERS: dict[str, Callable[[_SessionMapper, dict[str, Any]], Mapped]] = {
    "invocation.received": _invocation,
    "invocation.auto": _invocation,
    "step.started": _step,
    "model.completed": _model_completed,
    "model.failed": _model_other,
    "model.cancelled": _model_other,
    "tool.started": _tool,
    "tool.completed": _tool,
    "tool.failed": _tool,
    "task.started": _task_started,
    "task.completed": _task_finished,
    "task.failed": _task_finished,
    "task.cancelled": _task_finished,
    "artifact.created": _artifact,
    "compaction.started": _compaction,
    "compaction.summary": _compaction,
    "compaction.completed": _compaction,
    "skill.loaded": _skill,
    "agent.finished": _finished,
}
