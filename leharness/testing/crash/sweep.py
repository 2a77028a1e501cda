"""Random-kill sweep: SIGKILL the real `lh` at a uniformly random time, resume, check everything.

The scripted session does what a real one does: bash, a file write, two
background tasks, a subagent (which runs a command of its own), an output
large enough to become an artifact, and a slow foreground command. Each kill
starts `lh --json PROMPT` in a fresh home, SIGKILLs it after a delay drawn
uniformly from [0, T) where T is how long an unkilled run takes, resumes the
session with `lh --json --session ID`, and checks eight invariants:

- `seq`: every session's `session_seq` is 1..n without a gap
- `ids`: every event id is unique
- `committed`: every event the killed run printed (so committed) is still there
- `requests`: every request the model got is valid (each assistant tool call
  answered exactly once, by tool messages right after it, none without a call)
- `doctor`: `lh doctor` exits 0
- `rebuild`: projections equal a rebuild from the events
- `once`: no side-effecting tool call ran twice (each writes a unique line)
- `processes`: no process of the run is left (each run's environment carries a
  marker; /proc is searched for it)
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leharness import store
from leharness.store import health
from leharness.testing.rules import conversation_problems
from leharness.testing.server import Call, ScriptedServer, Step, Text, ToolCalls

from . import LH, RESUME, _seq_gaps, lh_env, start_first_run

INVARIANTS = ("seq", "ids", "committed", "requests", "doctor", "rebuild", "once", "processes")
EFFECTS = "effects.log"
MARK = "LEHARNESS_SWEEP_MARK"


def _effect(name: str, before: str = "", after: str = "") -> str:
    """A command that leaves one line in the effects file: running twice shows as two."""
    return f"{before}echo {name} >> {EFFECTS}{after}"


MAIN: tuple[Step, ...] = (
    ToolCalls(
        Call("bash", {"command": _effect("first")}),
        Call("write_file", {"path": "notes.txt", "content": "written by the sweep\n"}),
    ),
    ToolCalls(
        Call("bash", {"command": _effect("bg-one", "sleep 0.5; "), "inline_ms": 0}),
        Call("bash", {"command": _effect("bg-two", "sleep 3; "), "inline_ms": 0}),
    ),
    ToolCalls(Call("spawn_agent", {"prompt": "child: count the files"})),
    ToolCalls(Call("bash", {"command": _effect("artifact", after="; head -c 9000 /dev/zero")})),
    # slow: it ends by its 3 s time limit, so it outlives a killed lh that does not stop it
    ToolCalls(
        Call(
            "bash",
            {"command": _effect("slow", after="; sleep 30"), "timeout_s": 3, "inline_ms": 60_000},
        )
    ),
    Text("all done"),
)
CHILD: tuple[Step, ...] = (
    ToolCalls(Call("bash", {"command": _effect("child", "sleep 0.4; ")})),
    Text("the child's answer"),
)


def respond(body: dict[str, Any]) -> Step:
    users = [m.get("content") or "" for m in body["messages"] if m["role"] == "user"]
    if RESUME in users:
        return Text("resumed")
    script = CHILD if users and users[0].startswith("child") else MAIN
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    return script[turn] if turn < len(script) else Text("noted")


@dataclass
class Kill:
    """One kill: when it landed, whether lh was still running, and what broke."""

    delay_s: float
    killed: bool
    problems: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Sweep:
    run_s: float  # how long an unkilled run takes: the kill window
    kills: list[Kill]

    def held(self, invariant: str) -> int:
        return sum(1 for kill in self.kills if not kill.problems.get(invariant))

    def summary(self) -> str:
        n = len(self.kills)
        return ", ".join(f"{name} {self.held(name)} of {n}" for name in INVARIANTS)


def run_sweep(kills: int, seed: int = 0, workdir: Path | None = None) -> Sweep:
    """Calibrate on one unkilled run, then kill and resume `kills` times."""
    rng = random.Random(seed)
    root = workdir or Path(tempfile.mkdtemp(prefix="lh-sweep-"))
    with ScriptedServer(responder=respond) as server:
        started = time.monotonic()
        calibration = _first_run(root / "calibration", server, "calibration", None)
        run_s = time.monotonic() - started
        if calibration.returncode != 0:
            raise RuntimeError(f"the unkilled run failed: {calibration.returncode}")
        results = [
            # the pid: the same sweep may run in another checkout at the same time
            one_kill(root / f"kill-{n}", server, rng.uniform(0, run_s), f"{os.getpid()}-{seed}-{n}")
            for n in range(kills)
        ]
    return Sweep(run_s, results)


def one_kill(cwd: Path, server: ScriptedServer, delay_s: float, mark: str) -> Kill:
    before = len(server.requests)
    process = _first_run(cwd, server, mark, delay_s)
    kill = Kill(delay_s, process.returncode == -signal.SIGKILL)
    home = cwd / "home"
    printed = _events(cwd / "first.jsonl")
    session_id = printed[0]["session_id"] if printed else _top_session(home)
    resumed_out: list[dict[str, Any]] = []
    if session_id is not None:
        resumed = subprocess.run(
            [LH, "--json", "--session", session_id, RESUME],
            env=lh_env(home, server.base_url, **{MARK: mark}),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if resumed.returncode != 0:
            kill.problems["committed"] = [f"resume exited {resumed.returncode}"]
        resumed_out = [json.loads(line) for line in resumed.stdout.splitlines() if line.strip()]
    bodies = [r.body for r in server.requests[before:]]
    checks = {
        "requests": check_requests(bodies),
        "once": check_once(cwd / EFFECTS),
        "processes": check_processes(mark),
        "doctor": check_doctor(home, server.base_url),
    }
    if (home / "sessions.db").exists():
        checks.update(check_database(home / "sessions.db", session_id, printed, resumed_out))
    for name, problems in checks.items():
        if problems:
            kill.problems.setdefault(name, []).extend(problems)
    return kill


def _first_run(
    cwd: Path, server: ScriptedServer, mark: str, delay_s: float | None
) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    env = lh_env(cwd / "home", server.base_url, **{MARK: mark})
    with open(cwd / "first.jsonl", "w") as out:
        process = start_first_run(env, cwd, out)
        try:
            process.wait(timeout=delay_s if delay_s is not None else 120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    return process


def _events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut by the kill
            events.append(json.loads(line))
    return events


def _top_session(home: Path) -> str | None:
    if not (home / "sessions.db").exists():
        return None
    query = "SELECT id FROM sessions WHERE parent_session_id IS NULL"
    with (
        contextlib.closing(sqlite3.connect(home / "sessions.db")) as conn,
        contextlib.suppress(sqlite3.OperationalError),  # killed before the schema was made
    ):
        row = conn.execute(query).fetchone()
        return row[0] if row else None
    return None


def check_database(
    path: Path, session_id: str | None, first: list[dict], second: list[dict]
) -> dict[str, list[str]]:
    conn = store.connect(path)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
            return {}  # killed before the schema was made: nothing was ever committed
        found: dict[str, list[str]] = {"seq": _seq_gaps(conn)}
        (duplicates,) = conn.execute("SELECT count(*) - count(DISTINCT id) FROM events").fetchone()
        found["ids"] = [f"{duplicates} duplicate event ids"] if duplicates else []
        stored = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM events WHERE session_id = ? ORDER BY session_seq", (session_id,)
            )
        ]
        head = [e["id"] for e in first if e.get("session_id") == session_id]
        committed = []
        if stored[: len(head)] != head:
            committed.append("events printed by the killed run are not the stored log's start")
        if second and stored[-len(second) :] != [e["id"] for e in second]:
            committed.append("events printed by the resumed run are not the stored log's end")
        found["committed"] = committed
        found["rebuild"] = [f"projection {d.table} differs" for d in health.rebuild_drift(conn)]
    finally:
        conn.close()
    return found


def check_requests(bodies: list[dict[str, Any]]) -> list[str]:
    """Every request that breaks OpenAI's conversation rules (the scripted server's own
    rules, `leharness.testing.rules`), numbered from 1."""
    return [
        f"request {number}: {problem}"
        for number, body in enumerate(bodies, 1)
        for problem in conversation_problems(body.get("messages", []))
    ]


def check_once(effects: Path) -> list[str]:
    lines = effects.read_text().split() if effects.exists() else []
    return [f"{name} ran {count} times" for name, count in Counter(lines).items() if count > 1]


def check_processes(mark: str, grace_s: float = 0.5) -> list[str]:
    """Processes (zombies aside) whose environment carries this run's marker, once the
    resumed run has exited (and a moment for SIGKILLed ones to go)."""
    deadline = time.monotonic() + grace_s
    while True:
        left = _marked(f"{MARK}={mark}".encode())
        if not left or time.monotonic() > deadline:
            return [f"left running: {' | '.join(left)}"] if left else []
        time.sleep(0.1)


def _marked(needle: bytes) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80])
    return found


def check_doctor(home: Path, base_url: str) -> list[str]:
    if not (home / "sessions.db").exists():
        return []
    done = subprocess.run(
        [LH, "doctor"],
        env=lh_env(home, base_url),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode == 0:
        return []
    return [line for line in done.stdout.splitlines() if line.startswith("✗")] or [
        f"lh doctor exited {done.returncode}: {done.stderr[-200:]}"
    ]
