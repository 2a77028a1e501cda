"""Docs cannot drift: the README's generated parts are current, every event
type is documented, and .ci/run runs exactly the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from leharness.store import EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_generated_sections_are_current():
    cog = Path(sys.executable).with_name("cog")
    done = subprocess.run(
        [str(cog), "--check", "README.md"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, "README is stale: run `cog -r README.md`\n" + done.stdout


def test_every_event_type_is_documented_in_the_readme():
    for name in EVENT_TYPES:
        assert f"| `{name}` |" in README, name


def setup_commands() -> list[str]:
    return re.findall(r"```bash\n(python3 -m venv .*)\n```", README)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = setup_commands()
    assert len(commands) == 2, commands
    run_command, test_command = commands
    assert "lh" in run_command and "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_readme_shows_the_golden_event_sequence():
    from .util import ONE_TOOL_ROUND_TRIP

    assert "  ".join(ONE_TOOL_ROUND_TRIP[:4]) in README
    assert "  ".join(ONE_TOOL_ROUND_TRIP[4:]) in README
