"""A read-only home or a full disk: one line naming the file and the cause, never a
traceback, and the database stays intact (on a small tmpfs; mounting needs root)."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .e2e_helpers import lh_env, run_lh


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def intact(path: Path) -> list[tuple]:
    """integrity_check is ok and every session's log is contiguous; returns (session, n)."""
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute(
            "SELECT session_id, count(*), max(session_seq) FROM events GROUP BY session_id"
        ).fetchall()
    assert all(count == last for _id, count, last in rows)
    return [(session_id, count) for session_id, count, _last in rows]


def one_line(stderr: str) -> str:
    """The one error line (stderr also shows the run's progress, e.g. `→ bash: …`)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and stderr.rstrip().endswith(lines[0]), stderr
    return lines[0]


def test_a_read_only_home_is_one_line_and_the_file_is_untouched(small_disk):
    home = small_disk / "home"
    with ScriptedServer([Text("one"), Text("two")]) as server:
        env = lh_env(home, server.base_url)
        assert run_lh("hi", env=env).returncode == 0
        before = intact(home / "sessions.db")
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        try:
            results = [run_lh(*args, env=env) for args in (["-c", "again"], ["doctor"])]
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    for result in results:
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert f"cannot write {home / 'sessions.db'}" in line
        assert "read-only file system" in line
    assert intact(home / "sessions.db") == before


def test_a_disk_that_fills_up_mid_run_is_one_line_and_loses_nothing(small_disk):
    home = small_disk / "home"
    fill = f"dd if=/dev/zero of={small_disk / 'filler'} bs=64k 2>/dev/null; echo filled"
    script = [
        Text("one"),
        ToolCalls(Call("bash", {"command": fill})),
        Text("a long answer " * 20_000),  # 280 KB: the WAL has to grow
    ]
    with ScriptedServer(script) as server:
        env = lh_env(home, server.base_url)
        assert run_lh("hi", env=env).returncode == 0
        before = intact(home / "sessions.db")
        full = run_lh("-c", "fill the disk", env=env)
        assert full.returncode == 2, full.stderr
        line = one_line(full.stderr)
        assert f"cannot write {home / 'sessions.db'}: the disk is full" in line
        (small_disk / "filler").unlink()
        after = intact(home / "sessions.db")
        assert after[0][1] > before[0][1]  # what was written before the disk filled is kept
        server.push(Text("resumed"))
        resumed = run_lh("-c", "go on", env=env)
    assert resumed.returncode == 0, resumed.stderr
    intact(home / "sessions.db")
