"""The Harbor stage: real `harbor run` jobs with lh as the agent, end to end.

A one-task dataset (a file to create, a verifier checking it) runs with the
oracle agent and with lh, `-n 2 -k 3`, in the chroot environment kept in
tests/harbor_stage/, inside `unshare -n` with the scripted model server on the
loopback. All rewards are 1.0; a dataset where the model does nothing gets 0.0.
Then `lh merge` gives one database with the sessions and the trials, and the
ATIF files validate against Harbor's own pydantic models.

It needs root, Python 3.13 and Harbor (tests/harbor_stage/setup.sh builds and
caches them outside the checkout: ~6 minutes the first time). It runs when CI=true
(.ci/run) or LEHARNESS_HARBOR_STAGE=1, and then never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from leharness import store
from leharness.cli import cli

STAGE = Path(__file__).parent / "harbor_stage"
CHECKOUT = Path(__file__).parent.parent
WANTED = os.environ.get("CI") == "true" or os.environ.get("LEHARNESS_HARBOR_STAGE") == "1"

pytestmark = [
    pytest.mark.skipif(
        not WANTED, reason="the Harbor stage runs under CI=true or LEHARNESS_HARBOR_STAGE=1"
    ),
    pytest.mark.long,
]

TEST_SH = """#!/bin/bash
if [ "$(cat /app/hello.txt 2>/dev/null)" = hello ]; then echo 1 > /logs/verifier/reward.txt
else echo 0 > /logs/verifier/reward.txt; fi
"""


def write_task(folder: Path, instruction: str) -> None:
    (folder / "environment").mkdir(parents=True)
    (folder / "solution").mkdir()
    (folder / "tests").mkdir()
    (folder / "task.toml").write_text(
        'schema_version = "1.4"\n\n[metadata]\n\n[verifier]\ntimeout_sec = 120.0\n\n'
        "[agent]\ntimeout_sec = 300.0\n\n[environment]\nbuild_timeout_sec = 60.0\n"
    )
    (folder / "instruction.md").write_text(instruction + "\n")
    (folder / "environment" / "Dockerfile").write_text("FROM debian:12\nWORKDIR /app\n")
    (folder / "solution" / "solve.sh").write_text("#!/bin/bash\necho hello > /app/hello.txt\n")
    (folder / "tests" / "test.sh").write_text(TEST_SH)
    for script in (folder / "solution" / "solve.sh", folder / "tests" / "test.sh"):
        script.chmod(0o755)


def rewards(job: Path) -> list[float | None]:
    found = []
    for result in sorted(job.glob("*/result.json")):
        data = json.loads(result.read_text())
        assert data.get("exception_info") is None, (result, data["exception_info"])
        found.append(((data.get("verifier_result") or {}).get("rewards") or {}).get("reward"))
    return found


def validate_atif(python: str, files: list[Path]) -> None:
    """Each file through Harbor's Trajectory model, in the Harbor venv."""
    check = (
        "import json, sys\n"
        "from harbor.models.trajectories import Trajectory\n"
        "for path in sys.argv[1:]:\n"
        "    Trajectory.model_validate(json.load(open(path)))\n"
    )
    done = subprocess.run([python, "-c", check, *map(str, files)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_harbor_runs_lh_and_lh_merge_gathers_the_fleet(tmp_path, isolated_home):
    assert os.geteuid() == 0, "the Harbor stage needs root (mounts, chroot, unshare)"
    assert shutil.which("unshare") and shutil.which("chroot"), "needs util-linux and coreutils"
    setup = subprocess.run(
        ["bash", str(STAGE / "setup.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "HOST_PY": sys.executable},
        timeout=1800,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    harbor_python, deps = setup.stdout.split()[-2:]

    out = tmp_path / "stage"
    write_task(out / "datasets" / "make-file" / "make-file", "Create /app/hello.txt saying hello.")
    write_task(
        out / "datasets" / "nothing" / "make-file-nothing",
        "NOTHING-TASK: create /app/hello.txt saying hello.",
    )
    wheelhouse = out / "wheelhouse"
    shutil.copytree(deps, wheelhouse)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), "."],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]

    jobs = subprocess.run(
        [
            "unshare",
            "-n",
            "bash",
            str(STAGE / "jobs.sh"),
            harbor_python,
            str(CHECKOUT),
            str(out),
            str(wheelhouse),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert jobs.returncode == 0, (jobs.stdout[-3000:], jobs.stderr[-3000:])
    assert rewards(out / "jobs" / "oracle") == [1.0] * 3
    assert rewards(out / "jobs" / "lh") == [1.0] * 3
    assert rewards(out / "jobs" / "nothing") == [0.0] * 3

    merged = CliRunner().invoke(cli, ["merge", str(out / "jobs" / "lh")])
    assert merged.exit_code == 0, merged.output
    conn = store.open_store()
    assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 3
    trials = conn.execute("SELECT agent, model, reward, input_tokens FROM trials").fetchall()
    assert [tuple(t)[:3] for t in trials] == [("leharness", "openai/scripted", 1.0)] * 3
    assert all(t[3] and t[3] > 0 for t in trials)  # populate_context_post_run filled tokens
    runs = conn.execute("SELECT reward, steps, finish_reason FROM trial_runs").fetchall()
    assert [tuple(r) for r in runs] == [(1.0, 2, "no_tool_calls")] * 3

    again = CliRunner().invoke(cli, ["merge", str(out / "jobs")])
    assert again.exit_code == 0, again.output
    assert "3 sessions added" in again.output and "3 already here" in again.output
    assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 6
    assert conn.execute("SELECT count(*) FROM trials").fetchone()[0] == 9
    by_job = conn.execute(
        "SELECT job, avg(reward) FROM trial_runs GROUP BY job ORDER BY job"
    ).fetchall()
    assert [tuple(r) for r in by_job] == [("lh", 1.0), ("nothing", 0.0)]

    trajectories = sorted((out / "jobs").glob("*/*/agent/trajectory.json"))
    assert len(trajectories) == 6
    session_id = conn.execute("SELECT session_id FROM trial_runs LIMIT 1").fetchone()[0]
    conn.close()
    exported = CliRunner().invoke(cli, ["export", "--format", "atif", session_id])
    assert exported.exit_code == 0, exported.output
    (tmp_path / "exported.json").write_text(exported.output)
    validate_atif(harbor_python, [*trajectories, tmp_path / "exported.json"])
