"""Side by side with a peer: Simon Willison's `llm` (from PyPI, in its own venv
under bench/.cache) configured as an OpenAI-compatible model on the same
scripted server, running the same tool-calling session as `lh`: N = 1, 10 and
50 tool turns of a shell `echo`, each harness spawning bash per call. Wall
time, per-turn harness overhead (T50 - T1) / 49 and peak RSS, as ratios
measured in one run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from leharness.testing import ScriptedServer

from . import Figure, measure_process
from .oneshot import echo_turns, one_run

CACHE = Path(__file__).with_name(".cache")
LLM_VENV = CACHE / "llm-venv"
LLM = LLM_VENV / "bin" / "llm"
TOOLS = """
import subprocess


def bash(command: str) -> str:
    "Run a shell command and return its output."
    done = subprocess.run(["/bin/bash", "-c", command], capture_output=True, text=True)
    return done.stdout + done.stderr + f"[exit: {done.returncode}]"
"""


def ensure_llm() -> str:
    if not LLM.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LLM_VENV)], check=True)
        subprocess.run([str(LLM_VENV / "bin" / "pip"), "install", "-q", "llm"], check=True)
    return subprocess.run([str(LLM), "--version"], capture_output=True, text=True).stdout.strip()


def llm_run(turns: int) -> tuple[float, float]:
    """(wall ms, peak RSS MB) of one `llm` process doing `turns` tool turns."""
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=echo_turns(turns)) as server,
    ):
        Path(home, "extra-openai-models.yaml").write_text(
            f"- model_id: scripted\n  model_name: scripted\n  api_base: {server.base_url}\n"
            "  supports_tools: true\n"
        )
        tools = Path(home, "tools.py")
        tools.write_text(TOOLS)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
        env.update(LLM_USER_PATH=home, OPENAI_API_KEY="bench")
        command = [
            str(LLM),
            "-m",
            "scripted",
            "--functions",
            str(tools),
            "--cl",
            str(turns + 5),
            "run the echoes",
        ]
        wall, peak, code = measure_process(command, env, home)
        if code != 0 or len(server.requests) != turns + 1:
            raise RuntimeError(f"llm did not complete {turns} tool turns")
    return wall, peak


def run(quick: bool) -> list[Figure]:
    version = ensure_llm()
    repeat = 5 if quick else 7
    sizes = (1, 10, 50)
    walls = {(who, n): [] for who in ("lh", "llm") for n in sizes}
    rss = {"lh": [], "llm": []}
    for _ in range(repeat):
        for n in sizes:
            for who, runner in (("lh", one_run), ("llm", llm_run)):
                wall, peak = runner(n)[:2]  # lh also reports its CPU time
                walls[who, n].append(wall)
                if n == 50:
                    rss[who].append(peak)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    per_turn = {
        who: [(b - a) / 49 for a, b in zip(walls[who, 1], walls[who, 50], strict=True)]
        for who in ("lh", "llm")
    }
    figures = [
        Figure(
            f"{who}, {n} tool turn{'s' if n > 1 else ''}: wall",
            "ms",
            walls[who, n],
            note=version if (who, n) == ("llm", 1) else "",
        )
        for n in sizes
        for who in ("lh", "llm")
    ]
    turn_ratio = [a / b for a, b in zip(per_turn["lh"], per_turn["llm"], strict=True)]
    n1_ratio = [a / b for a, b in zip(walls["lh", 1], walls["llm", 1], strict=True)]
    rss_ratio = [a / b for a, b in zip(rss["lh"], rss["llm"], strict=True)]
    figures += [
        Figure(
            "lh per-turn overhead", "ms", per_turn["lh"], "< 10 ms", median(per_turn["lh"]) < 10
        ),
        Figure("llm per-turn overhead", "ms", per_turn["llm"]),
        Figure(
            "per-turn overhead lh ÷ llm", "×", turn_ratio, "<= 0.25", median(turn_ratio) <= 0.25
        ),
        Figure("N = 1 wall lh ÷ llm", "×", n1_ratio, "<= 1", median(n1_ratio) <= 1),
        Figure("lh peak RSS (50 turns)", "MB", rss["lh"]),
        Figure("llm peak RSS (50 turns)", "MB", rss["llm"]),
        Figure("peak RSS lh ÷ llm", "×", rss_ratio, "<= 1", median(rss_ratio) <= 1),
    ]
    return figures
