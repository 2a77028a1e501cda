"""The supervisor starts once per bash command, so what it costs to start is paid on
every tool call: it imports no module that pulls in enum (the `signal` module does),
and lh runs its compiled bytecode when that is current (bench/oneshot.py times it)."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys

from leharness.tools.bash import SUPERVISOR, runnable


def test_the_supervisor_imports_no_enum(tmp_path):
    status = tmp_path / "status"
    argv = [sys.executable, "-I", "-S", "-X", "importtime", SUPERVISOR, str(status), "5", "1"]
    done = subprocess.run(
        [*argv, "-", "--", "/bin/true"], input=b"g", capture_output=True, timeout=30
    )
    assert done.returncode == 0 and status.exists()
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.decode().splitlines()}
    assert "select" in imported  # the probe sees the supervisor's own imports
    assert not imported & {"enum", "signal", "functools", "subprocess", "json", "threading"}


def test_lh_runs_the_compiled_supervisor_only_while_it_is_current(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys\nsys.stdout.write('ran')\n")
    assert runnable(str(script)) == str(script)  # nothing compiled yet
    compiled = py_compile.compile(str(script), doraise=True)
    assert runnable(str(script)) == compiled
    done = subprocess.run([sys.executable, "-I", "-S", compiled], capture_output=True, text=True)
    assert done.stdout == "ran"
    script.write_text("import sys\nsys.stdout.write('edited')\n")
    os.utime(script, (1, 1))  # another mtime: the bytecode is stale
    assert runnable(str(script)) == str(script)
