"""Peers side by side, offline, against the same scripted server in one run:
`lh` and, where installed, `llm` (PyPI, set up by bench/peer_llm.py under
bench/.cache), Codex (npm @openai/codex) and Claude Code (npm
@anthropic-ai/claude-code). For each: `--version`, N = 1, 10 and 50 tool turns
of a shell `echo` (wall and CPU), the per-turn overhead (T50 - T1) / 49 and the
peak RSS of the 50-turn run. Interleaved, so a change of load hits every peer
alike. The quick set runs lh and llm only; a peer that is not installed, or
that this benchmark has no runner for, is listed with a note and not measured."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from leharness.testing import ScriptedServer

from . import Figure, Measured, ensure_bytecode, measure
from .oneshot import echo_turns
from .peer_llm import LLM, TOOLS, ensure_llm

LH = str(Path(sys.executable).with_name("lh"))
SIZES = (1, 10, 50)


def clean_env(home: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LEHARNESS_", "LLM_", "ANTHROPIC_"))
    }
    env["HOME"] = home
    return env


def lh_run(turns: int | None) -> Measured:
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=echo_turns(turns or 0)) as server,
    ):
        env = clean_env(home)
        env.update(
            LEHARNESS_HOME=home,
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_MAX_STEPS=str((turns or 0) + 5),
        )
        command = [LH, "--version"] if turns is None else [LH, "run the echoes"]
        return checked(measure(command, env, home), server, turns, "lh")


def llm_run(turns: int | None) -> Measured:
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=echo_turns(turns or 0)) as server,
    ):
        Path(home, "extra-openai-models.yaml").write_text(
            f"- model_id: scripted\n  model_name: scripted\n  api_base: {server.base_url}\n"
            "  supports_tools: true\n"
        )
        tools = Path(home, "tools.py")
        tools.write_text(TOOLS)
        env = clean_env(home)
        env.update(LLM_USER_PATH=home, OPENAI_API_KEY="bench")
        if turns is None:
            command = [str(LLM), "--version"]
        else:
            command = [str(LLM), "-m", "scripted", "--functions", str(tools)]
            command += ["--cl", str(turns + 5), "run the echoes"]
        return checked(measure(command, env, home), server, turns, "llm")


def checked(done: Measured, server: ScriptedServer, turns: int | None, who: str) -> Measured:
    expected = 0 if turns is None else turns + 1
    if done.code != 0 or len(server.requests) != expected:
        raise RuntimeError(f"{who} exited {done.code} after {len(server.requests)} requests")
    return done


PEERS: dict[str, Callable[[int | None], Measured]] = {"lh": lh_run, "llm": llm_run}
NOT_RUN = {  # installed where `shutil.which` finds them; no runner here yet
    "codex": "Codex (npm @openai/codex)",
    "claude": "Claude Code (npm @anthropic-ai/claude-code)",
}


def run(quick: bool) -> list[Figure]:
    ensure_bytecode()
    llm_version = ensure_llm()
    repeat = 3 if quick else 5
    walls: dict[tuple[str, int | None], list[float]] = {}
    cpus: dict[tuple[str, int | None], list[float]] = {}
    rss: dict[str, list[float]] = {}
    for _ in range(repeat):
        for turns in (None, *SIZES):
            for who, runner in PEERS.items():
                done = runner(turns)
                walls.setdefault((who, turns), []).append(done.wall_ms)
                cpus.setdefault((who, turns), []).append(done.cpu_ms)
                if turns == 50:
                    rss.setdefault(who, []).append(done.peak_mb)
    skipped = [
        f"{label}: {'installed, no runner here yet' if shutil.which(cmd) else 'not installed'}"
        "; not measured"
        for cmd, label in NOT_RUN.items()
    ]
    figures: list[Figure] = []
    for who in PEERS:
        note = llm_version if who == "llm" else ""
        for turns in (None, *SIZES):
            what = "--version" if turns is None else f"{turns} tool turn{'s' if turns > 1 else ''}"
            figures.append(Figure(f"{who} {what}: wall", "ms", walls[who, turns], note=note))
            figures.append(Figure(f"{who} {what}: CPU", "ms", cpus[who, turns]))
            note = ""
        per_turn = [(b - a) / 49 for a, b in zip(cpus[who, 1], cpus[who, 50], strict=True)]
        figures.append(Figure(f"{who} per-turn overhead (T50 - T1) / 49, CPU", "ms", per_turn))
        figures.append(Figure(f"{who} peak RSS (50 turns)", "MB", rss[who]))
    for key, label in (((None), "--version"), (1, "N = 1"), (50, "N = 50")):
        ratio = [a / b for a, b in zip(cpus["lh", key], cpus["llm", key], strict=True)]
        figures.append(Figure(f"{label} CPU lh ÷ llm", "×", ratio, "<= 1", _median(ratio) <= 1))
    rss_ratio = [a / b for a, b in zip(rss["lh"], rss["llm"], strict=True)]
    figures.append(
        Figure(
            "peak RSS lh ÷ llm",
            "×",
            rss_ratio,
            "<= 1",
            _median(rss_ratio) <= 1,
            note=" · ".join(skipped),
        )
    )
    return figures


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]
