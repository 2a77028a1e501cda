"""Crash points: run the real `lh`, SIGKILL it at a chosen point, resume, check the history.

Shipped beside the scripted server so the tests and `python -m bench crash`
run the very same points. Each point kills `lh --json PROMPT` (through the
CLI's LEHARNESS_TEST_KILL_AT hook, or from outside once a condition holds),
resumes with `lh --json --session ID`, and lists what is wrong: events lost
or duplicated (against what the killed process printed), a gap in any
session's `session_seq`, projections that differ from a rebuild, a tool call
without exactly one result in the resumed request, a resumed run that fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from leharness import store
from leharness.store import health
from leharness.testing.server import Call, ScriptedServer, Slow, Step, Text, ToolCalls

LH = str(Path(sys.executable).with_name("lh"))
PROMPT = "start the work"
RESUME = "resume after the crash"
MARKER = "tool-running.pid"  # the foreground command writes its pid here


@dataclass(frozen=True)
class CrashPoint:
    name: str
    steps: tuple[Step, ...]  # the main session's replies before the kill, in order
    kill_at: str | None = None  # LEHARNESS_TEST_KILL_AT; None: killed from outside
    kill_when: Callable[[Path], bool] | None = None  # outside kill once this holds (cwd)
    env: dict[str, str] = field(default_factory=dict)


def _tool_running(cwd: Path) -> bool:
    marker = cwd / MARKER
    return marker.exists() and marker.read_text().strip().isdigit()


def _bash(command: str, **extra: Any) -> Call:
    return Call("bash", {"command": command, **extra})


POINTS: tuple[CrashPoint, ...] = (
    CrashPoint("during the model stream", (Slow(Text("a long answer " * 12), 0.01),), "text"),
    CrashPoint(
        "after model.completed, before a tool starts",
        (ToolCalls(_bash("echo one")),),
        "model.completed",
    ),
    CrashPoint(
        "during a foreground tool",
        (ToolCalls(_bash(f"echo $$ > {MARKER}; sleep 30", inline_ms=60_000)),),
        kill_when=_tool_running,
    ),
    CrashPoint(
        "during a background task",
        (ToolCalls(_bash("echo partial; sleep 60", inline_ms=0)), Text("waiting for it")),
        "agent.finished",  # the one-shot run is waiting for its task
    ),
    CrashPoint(
        "during a subagent",
        (ToolCalls(Call("spawn_agent", {"prompt": "child: look around"})), Text("waiting")),
        "agent.finished",  # the parent waits; the child's reply is still streaming
    ),
    CrashPoint(
        "during compaction",
        # three turns (the two latest are exempt), the last reporting 1,950 prompt tokens
        # of a 2,000-token window: the fourth step compacts before its model call
        (
            ToolCalls(_bash("echo one")),
            ToolCalls(_bash("echo two")),
            ToolCalls(_bash("echo three"), prompt_tokens=1_950),
            Text("ok"),
        ),
        "compaction.started",
        env={"LEHARNESS_CONTEXT_WINDOW": "2000"},
    ),
    CrashPoint(
        "between the two halves of a multi-tool reply",
        (ToolCalls(_bash("echo first"), _bash("echo second")),),
        "tool.completed",
    ),
)


@dataclass
class Outcome:
    point: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def responder(point: CrashPoint) -> Callable[[dict[str, Any]], Step]:
    def respond(body: dict[str, Any]) -> Step:
        users = [m.get("content") or "" for m in body["messages"] if m["role"] == "user"]
        if not body.get("tools"):  # a summariser call (compaction)
            return Text("summary of the earlier turns")
        if users and users[0].startswith("child"):
            return Slow(Text("the child's answer " * 20), 0.1)
        if RESUME in users:
            return Text("resumed and finished")
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        return point.steps[turn] if turn < len(point.steps) else Text("done")

    return respond


def lh_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
    env.update(
        LEHARNESS_HOME=str(home),
        OPENAI_API_KEY="sk-crash-test",
        OPENAI_BASE_URL=base_url,
        LEHARNESS_RETRY_BASE_S="0",
        LEHARNESS_APPROVAL="auto",  # no terminal here: the default (ask) would refuse tools
        **extra,
    )
    return env


def run_point(point: CrashPoint, workdir: Path | None = None, timeout_s: float = 60) -> Outcome:
    """Kill `lh` at `point`, resume its session, and list every problem found."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="lh-crash-"))
    home = workdir / "home"
    with ScriptedServer(responder=responder(point)) as server:
        env = lh_env(home, server.base_url, **point.env)
        printed, code = _killed_run(point, env, workdir, timeout_s)
        problems = [] if code == -signal.SIGKILL else [f"first run was not killed (exit {code})"]
        if not printed:
            return Outcome(point.name, [*problems, "the killed run printed no event"])
        session_id = printed[0]["session_id"]
        problems += _landed(point, home, session_id, printed)
        before = len(server.requests)
        resumed = subprocess.run(
            [LH, "--json", "--session", session_id, RESUME],
            env=lh_env(home, server.base_url, **point.env),
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=timeout_s * 2,
            stdin=subprocess.DEVNULL,
        )
        _cleanup(workdir)
        if resumed.returncode != 0:
            problems.append(f"resumed run exited {resumed.returncode}: {resumed.stderr[-300:]}")
        second = [json.loads(line) for line in resumed.stdout.splitlines() if line.strip()]
        problems += check_history(home / "sessions.db", session_id, printed, second, point)
        problems += check_pairing([r.body for r in server.requests[before:]])
        problems += [f"the strict server refused a request: {why[0]}" for _, why in server.refused]
    return Outcome(point.name, problems)


def start_first_run(env: dict[str, str], cwd: Path, out: IO[str]) -> subprocess.Popen:
    """`lh --json PROMPT`, its events printed to `out`, to be killed mid-run."""
    return subprocess.Popen(
        [LH, "--json", PROMPT],
        env=env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _killed_run(
    point: CrashPoint, env: dict[str, str], cwd: Path, timeout_s: float
) -> tuple[list[dict], int | None]:
    if point.kill_at:
        env = {**env, "LEHARNESS_TEST_KILL_AT": point.kill_at}
    out_path = cwd / "first-run.jsonl"
    with open(out_path, "w") as out:
        process = start_first_run(env, cwd, out)
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            if point.kill_when is not None and point.kill_when(cwd):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()  # stuck: reported as a problem by the exit code check
        code = process.wait(timeout=10)
    lines = out_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()], code


def _landed(point: CrashPoint, home: Path, session_id: str, printed: list[dict]) -> list[str]:
    """Did the kill land where the point says? (Otherwise the point proves nothing.)"""
    last = printed[-1]["type"]
    if point.kill_at and point.kill_at != "text" and last != point.kill_at:
        return [f"killed after {last}, not after {point.kill_at}"]
    if point.kill_at == "text" and last != "step.started":
        return [f"killed after {last}, not inside a model stream"]
    if "spawn_agent" in json.dumps(printed):
        with contextlib.closing(sqlite3.connect(home / "sessions.db")) as conn:
            types = [
                row[0]
                for row in conn.execute(
                    "SELECT type FROM events WHERE session_id IN (SELECT id FROM sessions "
                    "WHERE parent_session_id = ?)",
                    (session_id,),
                )
            ]
        if not types or "agent.finished" in types:
            return [f"the subagent was not running when lh was killed: {types}"]
    return []


def check_history(
    path: Path, session_id: str, first: list[dict], second: list[dict], point: CrashPoint
) -> list[str]:
    """Every printed event stored once, in order; contiguous seqs; projections = rebuild."""
    problems = []
    conn = store.connect(path)
    try:
        rows = conn.execute(
            "SELECT id, type FROM events WHERE session_id = ? ORDER BY session_seq", (session_id,)
        ).fetchall()
        stored = [row["id"] for row in rows]
        head, tail = [e["id"] for e in first], [e["id"] for e in second]
        if stored[: len(head)] != head:
            problems.append("events printed by the killed run are not the stored log's start")
        if tail and stored[-len(tail) :] != tail:
            problems.append("events printed by the resumed run are not the stored log's end")
        unprinted = len(stored) - len(head) - len(tail)
        if unprinted < 0 or unprinted > (0 if point.kill_at else 1):
            problems.append(f"{unprinted} events stored but never printed (or printed twice)")
        if not rows or rows[-1]["type"] != "agent.finished":
            problems.append("the resumed session does not end with agent.finished")
        problems += _seq_gaps(conn)
        problems += [
            f"projection {d.table} differs from a rebuild ({d.stale_rows} stale, "
            f"{d.missing_rows} missing rows)"
            for d in health.rebuild_drift(conn)
        ]
    finally:
        conn.close()
    return problems


def _seq_gaps(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT session_id, count(*) AS n, min(session_seq) AS lo, max(session_seq) AS hi, "
        "count(DISTINCT id) AS ids FROM events GROUP BY session_id"
    )
    return [
        f"session {r['session_id']}: session_seq not contiguous 1..{r['n']}"
        for r in rows
        if (r["lo"], r["hi"], r["ids"]) != (1, r["n"], r["n"])
    ]


def check_pairing(bodies: list[dict[str, Any]]) -> list[str]:
    """Each tool call in a request has exactly one tool result, and each result a call."""
    problems = []
    for number, body in enumerate(bodies, 1):
        messages = body.get("messages", [])
        calls = [c["id"] for m in messages for c in m.get("tool_calls") or []]
        results = [m.get("tool_call_id") for m in messages if m["role"] == "tool"]
        for call_id in calls:
            if results.count(call_id) != 1:
                problems.append(
                    f"request {number} after resume: call {call_id} has "
                    f"{results.count(call_id)} results"
                )
        problems += [
            f"request {number} after resume: result for unknown call {r}"
            for r in results
            if r not in calls
        ]
    return problems


def _cleanup(cwd: Path) -> None:
    """Stop a foreground command the killed lh left behind (nobody else owns it)."""
    marker = cwd / MARKER
    if _tool_running(cwd):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(marker.read_text().strip()), signal.SIGKILL)
