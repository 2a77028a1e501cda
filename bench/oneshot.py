"""One-shot runs of the real `lh` process against the instant scripted server:
a prompt that makes 1 and 50 tool turns of a shell `echo` (default sandbox:
bubblewrap, workspace-write). Wall and CPU time (user + system of `lh` and the
processes it waited for: supervisor, bwrap, bash), peak RSS of the `lh`
process, and the per-turn overhead (T50 - T1) / 49. leharness is compiled to
bytecode first, as a wheel install is."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import Figure, ensure_bytecode, measure

LH = str(Path(sys.executable).with_name("lh"))
GIT_FILES = 300


def echo_turns(turns: int):
    def respond(body: dict):
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < turns:
            return ToolCalls(Call("bash", {"command": f"echo turn {done}"}))
        return Text("done")

    return respond


def git_work_tree(folder: Path, files: int = GIT_FILES) -> None:
    """A project of `files` committed files (and a .gitignore'd build folder)."""
    for number in range(files):
        sub = folder / f"pkg{number % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"module{number}.py").write_text(f"VALUE = {number}\n" * 20)
    (folder / ".gitignore").write_text("build/\n")
    (folder / "build").mkdir()
    (folder / "build" / "out.bin").write_bytes(b"\0" * 4096)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "project"]):
        subprocess.run([*git, *args], cwd=folder, check=True, capture_output=True)


def one_run(turns: int, in_git: bool = False) -> tuple[float, float, float]:
    """(wall ms, peak RSS MB, CPU ms) of one `lh "prompt"` process; `in_git`: run in
    a git work tree (each bash call then snapshots it before and after)."""
    with (
        tempfile.TemporaryDirectory() as home,
        tempfile.TemporaryDirectory() as project,
        ScriptedServer(responder=echo_turns(turns)) as server,
    ):
        cwd = home
        if in_git:
            git_work_tree(Path(project))
            cwd = project
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
        env.update(
            LEHARNESS_HOME=home,
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_MAX_STEPS=str(turns + 5),
            LEHARNESS_APPROVAL="auto",  # no terminal: the default (ask) would refuse tools
        )
        done = measure([LH, "run the echoes"], env, cwd)
        if done.code != 0:
            raise RuntimeError(f"lh exited {done.code}")
        return done.wall_ms, done.peak_mb, done.cpu_ms


FLOOR = (
    "includes, per turn, one HTTP round trip to the scripted server, four events, and "
    "starting the command: the supervisor (a `python -I -S` of its own, ~11-13 ms of CPU "
    "for the interpreter alone on this machine), bwrap (~5 ms of CPU, more in wall time "
    "for its namespaces and mounts) and bash"
)

AB_NOTE = (
    "2026-12-06, side by side with main before the start-up branch (6e5db14) in one run, "
    "N = 1 and 20, 7 runs each, load average 6.7-8.0: per turn 35.1 -> 27.0 ms of CPU "
    "(96 -> 61 ms wall), one-turn session 355 -> 308 ms of CPU, lh --help 61.7 -> 28.0 ms. "
    "The supervisor went from ~28 to ~18 ms of CPU per command (it imported enum through "
    "`signal`, and compiled its source each time); the floor per turn with the sandbox is "
    "then about supervisor 15-18 + bwrap ~5 + bash ~2 + lh's own 5-8 ms"
)


def run(quick: bool) -> list[Figure]:
    ensure_bytecode()
    repeat = 5 if quick else 7
    t1, t50, rss1, rss50, c1, c50 = [], [], [], [], [], []
    for _ in range(repeat):
        wall, rss, cpu = one_run(1)
        t1.append(wall)
        rss1.append(rss)
        c1.append(cpu)
        wall, rss, cpu = one_run(50)
        t50.append(wall)
        rss50.append(rss)
        c50.append(cpu)
    per_turn = [(b - a) / 49 for a, b in zip(t1, t50, strict=True)]
    per_turn_cpu = [(b - a) / 49 for a, b in zip(c1, c50, strict=True)]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    load = os.getloadavg()[0]
    return [
        Figure("1 tool turn: wall", "ms", t1),
        Figure("1 tool turn: CPU", "ms", c1),
        Figure(
            "50 tool turns: wall",
            "ms",
            t50,
            "< 1,500 ms",
            median(t50) < 1500,
            f"load average {load:.1f} on {os.cpu_count()} cores while measured",
        ),
        Figure("50 tool turns: CPU", "ms", c50),
        Figure(
            "per-turn overhead (T50 - T1) / 49: wall",
            "ms",
            per_turn,
            "< 10 ms",
            median(per_turn) < 10,
            FLOOR,
        ),
        Figure(
            "per-turn overhead (T50 - T1) / 49: CPU",
            "ms",
            per_turn_cpu,
            "< 10 ms",
            median(per_turn_cpu) < 10,
            AB_NOTE,
        ),
        Figure("peak RSS, 1 turn", "MB", rss1, "<= 77 MB", median(rss1) <= 77),
        Figure("peak RSS, 50 turns", "MB", rss50, "<= 77 MB", median(rss50) <= 77),
    ]
