"""What a bash call's checkpoint costs in git runs, and that what it keeps between calls
never gives a wrong tree. Outside a git work tree no git runs at all; inside one, a call
that changed nothing runs two per snapshot (ls-files of the project, update-index of
lh's own index) instead of four, and what lh kept is dropped whenever its index file was
written by anyone else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leharness.tools import checkpoints


@pytest.fixture
def git_runs(monkeypatch) -> list[tuple[str, ...]]:
    """Every git command the checkpoints run, by its arguments."""
    runs: list[tuple[str, ...]] = []
    real = checkpoints._git

    def counted(*args: str, **kwargs):
        runs.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "_git", counted)
    return runs


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def tree_names(git_dir: Path, tree: str) -> list[str]:
    """The paths a snapshot tree holds."""
    listed = ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", tree]
    return subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()


@pytest.fixture
def repo(tmp_path) -> Path:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    git("init", "-q", cwd=work)
    (work / ".gitignore").write_text("*.log\n")
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (work / name).write_text(name)
    git("add", ".", cwd=work)
    return work


def test_outside_a_work_tree_no_git_runs(tmp_path, git_runs):
    (tmp_path / "plain").mkdir()
    assert checkpoints.worktree_of(tmp_path / "plain") is None
    assert git_runs == []


def test_the_work_tree_is_asked_once_and_again_when_its_git_changes(repo, git_runs):
    sub = repo / "sub"
    assert checkpoints.worktree_of(sub) == repo
    assert checkpoints.worktree_of(sub) == repo
    assert [run[0] for run in git_runs] == ["rev-parse"]  # the second answer was kept
    git("init", "-q", cwd=sub)  # a repository of its own inside: git now finds that one
    assert checkpoints.worktree_of(sub) == sub


def test_a_snapshot_that_changed_nothing_runs_two_gits_and_keeps_its_tree(repo, tmp_path, git_runs):
    store = tmp_path / "snapshots"
    first = checkpoints.snapshot(store, repo)
    git_runs.clear()
    assert checkpoints.snapshot(store, repo) == first
    assert [run[0] for run in git_runs] == ["ls-files", "update-index"]
    (repo / "a.txt").write_text("changed")
    changed = checkpoints.snapshot(store, repo)
    assert changed != first
    (repo / "a.txt").write_text("a.txt")
    assert checkpoints.snapshot(store, repo) == first


def test_what_lh_kept_is_dropped_when_another_process_wrote_its_index(repo, tmp_path):
    """Another lh on the same work tree snapshots in between: this one's kept list and
    tree no longer describe the index, so it asks git again and gets the right tree."""
    store = tmp_path / "snapshots"
    first = checkpoints.snapshot(store, repo)
    (repo / "new.txt").write_text("new")
    (repo / "b.txt").unlink()
    script = (
        "import sys; from pathlib import Path; from leharness.tools.checkpoints import snapshot;"
        "print(snapshot(Path(sys.argv[1]), Path(sys.argv[2])))"
    )
    other = [sys.executable, "-c", script, str(store), str(repo)]
    theirs = subprocess.run(other, capture_output=True, text=True, check=True).stdout.strip()
    assert theirs != first
    (repo / "new.txt").unlink()
    (repo / "b.txt").write_text("b.txt")
    assert checkpoints.snapshot(store, repo) == first  # new.txt left the index again
    (repo / "new.txt").write_text("new")
    (repo / "b.txt").unlink()
    assert checkpoints.snapshot(store, repo) == theirs
    assert tree_names(store, theirs) == [".gitignore", "a.txt", "new.txt", "sub/c.txt"]


def test_a_file_that_becomes_ignored_leaves_the_snapshot(repo, tmp_path):
    store = tmp_path / "snapshots"
    (repo / "notes.txt").write_text("n")
    with_notes = checkpoints.snapshot(store, repo)
    (repo / ".gitignore").write_text("*.log\nnotes.txt\n")
    without = checkpoints.snapshot(store, repo)
    assert without != with_notes and "notes.txt" not in tree_names(store, without)
