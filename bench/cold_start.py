"""Start-up: `lh --version`, `lh --help` and a one-turn session (`lh "say hi"`
answered at once by the scripted server) as fresh processes, with
`python -c pass` measured in the same run as the floor. Wall and CPU time
(user + system) of each: on a loaded machine the CPU time is the figure that
does not count waiting for a core. leharness is compiled to bytecode first, as
a wheel install is (PYTHONDONTWRITEBYTECODE is set on the development machines)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from leharness.testing import ScriptedServer, Text

from . import Figure, ensure_bytecode, measure

LH = str(Path(sys.executable).with_name("lh"))
NOTE_LOAD = (
    "load average {load:.1f} on {cores} cores while measured: wall times include waiting "
    "for a core and are inflated; CPU time is the comparable figure"
)

NOTE_HELP = (
    "printed from the stored rendering (leharness/cli/help.txt) without importing click or "
    "any command module; a terminal narrower than 80 columns gets click's own (~+30 ms)"
)
NOTE_RUN = (
    "what is left is imports every run needs, in the order a run makes them (CPU in one "
    "process, min of 9, 2026-12-07 at load average ~5, so ~20 % inflated): asyncio with "
    "ssl, socket and subprocess ~32 ms, click ~9 ms, pydantic with its first model ~72 ms, "
    "httpx ~16 ms, httpcore, h11 and anyio at the first request ~29 ms, leharness's own "
    "modules ~41 ms (the event catalogue's 36 models ~7 ms; ~25 dataclasses ~10 ms, as "
    "Python 3.11 compiles each generated method); the editable install's finder adds ~10 ms "
    "to every process here (the floor above includes it). No longer loaded: the tool "
    "modules (offered from stored specs, each loaded on its first call), importlib.metadata "
    "(pydantic's plugin lookup), difflib, csv; bwrap's check (~4 ms of CPU in a child) runs "
    "until a success is remembered in the home: in the first two samples of a run"
)


def run(quick: bool) -> list[Figure]:
    ensure_bytecode()
    repeat = 7 if quick else 15
    samples: dict[str, tuple[list[float], list[float]]] = {}
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=lambda _b: Text("hi")) as s,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
        env.update(LEHARNESS_HOME=home, OPENAI_API_KEY="bench", OPENAI_BASE_URL=s.base_url)
        commands = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "lh --version": [LH, "--version"],
            "lh --help": [LH, "--help"],
            "one-turn session": [LH, "say hi"],
        }
        for _ in range(repeat):  # interleaved, so load changes hit every command alike
            for name, command in commands.items():
                done = measure(command, env, home)
                if done.code != 0:
                    raise RuntimeError(f"{command} exited {done.code}")
                wall, cpu = samples.setdefault(name, ([], []))
                wall.append(done.wall_ms)
                cpu.append(done.cpu_ms)
    load = os.getloadavg()[0]
    note = NOTE_LOAD.format(load=load, cores=os.cpu_count())
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    targets = {"lh --version": 40, "lh --help": 40, "one-turn session": 300}
    notes = {"one-turn session": note, "lh --help": NOTE_HELP}
    cpu_notes = {"one-turn session": NOTE_RUN}
    figures = []
    for name, (wall, cpu) in samples.items():
        limit = targets.get(name)
        target = f"<= {limit} ms" if limit else ""
        figures.append(
            Figure(
                f"{name}: wall",
                "ms",
                wall,
                target,
                median(wall) <= limit if limit else None,
                notes.get(name, ""),
            )
        )
        figures.append(
            Figure(
                f"{name}: CPU",
                "ms",
                cpu,
                target,
                median(cpu) <= limit if limit else None,
                cpu_notes.get(name, ""),
            )
        )
    return figures
