"""The package as people install it: the MIT LICENSE travels in the sdist and the wheel,
the metadata names it, and the build works with the setuptools it asks for."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys
from setuptools import build_meta
out = sys.argv[1]
sdist = build_meta.build_sdist(out)
wheel = build_meta.build_wheel(out)
print("BUILT", sdist, wheel)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """The sdist and wheel built once from a clean copy of the tracked files:
    (dist folder, sdist name, wheel name)."""
    tmp_path = tmp_path_factory.mktemp("build")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    source = tmp_path / "src"
    for name in tracked:  # a clean copy: the build writes build/ and *.egg-info beside it
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    dist.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(dist)], cwd=source, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("BUILT "))
    sdist_name, wheel_name = line.split()[1:]
    return dist, sdist_name, wheel_name


def test_the_license_is_in_the_sdist_and_the_wheel(built):
    dist, sdist_name, wheel_name = built
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    with tarfile.open(dist / sdist_name) as sdist:
        names = sdist.getnames()
        assert any(name.endswith("/LICENSE") for name in names), names
    with zipfile.ZipFile(dist / wheel_name) as wheel:
        licenses = [n for n in wheel.namelist() if n.endswith("licenses/LICENSE")]
        assert licenses and wheel.read(licenses[0]).decode() == license_text
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = wheel.read(metadata).decode()
    assert "License-Expression: MIT" in meta
    assert "License-File: LICENSE" in meta
    assert "Classifier: Programming Language :: Python :: 3.11" in meta
    assert "Project-URL: Homepage" in meta


def test_the_build_asks_for_a_setuptools_that_knows_pep_639():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "setuptools>=77" in project["build-system"]["requires"]
    assert project["project"]["license"] == "MIT"


def test_the_wheel_leaves_the_crash_points_and_the_kill_hook_out(built):
    """An installed lh never SIGKILLs itself because LEHARNESS_TEST_KILL_AT is set: the
    crash points, the sweep and the kill hook ship only in a source checkout; the scripted
    server (users' own tests use it), the inspector and the app are in the wheel."""
    dist, _, wheel_name = built
    with zipfile.ZipFile(dist / wheel_name) as wheel:
        names = set(wheel.namelist())
    assert not [name for name in names if name.startswith("leharness/testing/crash")]
    for present in (
        "leharness/testing/server.py",
        "leharness/inspector/__init__.py",
        "leharness/inspector/templates/leharness_session.html",
        "leharness/app/session.py",
        "leharness/errors.py",
    ):
        assert present in names, present
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(dist / wheel_name) as wheel:
        assert "leharness = leharness.inspector\n" in wheel.read(entry_points).decode()
