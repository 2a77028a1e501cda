"""The suite's own parallel run (tests/conftest.py): two workers share the tests, and a
`serial` test runs while no other test does, on any worker."""

from __future__ import annotations

from pathlib import Path

import pytest

INNER = """
import os, time
import pytest

LOG = {log!r}

def note(what, name):
    line = f"{{what}} {{name}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())  # one short O_APPEND write: lines never interleave
    os.close(fd)

@pytest.fixture(autouse=True)
def logged(request):
    note("start", request.node.name)
    time.sleep(0.3)  # long enough for a test on the other worker to overlap
    yield
    note("end", request.node.name)

@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    pass

@pytest.mark.serial
@pytest.mark.parametrize("n", range(2))
def test_alone(n):
    pass
"""


def test_serial_tests_run_while_no_other_test_does(pytester: pytest.Pytester, tmp_path: Path):
    log = tmp_path / "order.log"
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    serial: alone\n    long: first\n")
    pytester.makepyfile(test_inner=INNER.format(log=str(log)))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "worksteal", "-p", "xdist")
    result.assert_outcomes(passed=8)
    lines = [line.split() for line in log.read_text().splitlines()]
    assert {worker for _, _, worker in lines} == {"gw0", "gw1"}  # both workers ran tests
    running: set[str] = set()
    for what, name, _ in lines:
        if what == "start":
            assert not any(n.startswith("test_alone") for n in running), (name, lines)
            if name.startswith("test_alone"):
                assert not running, (name, lines)
            running.add(name)
        else:
            running.remove(name)
    assert not running
