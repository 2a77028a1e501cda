"""Skills and project instructions on the hot path: the system prompt's skills
catalog is rebuilt every step (a scan of the skill roots, a stat per SKILL.md,
files read again only when their stat changed), with 20 and 200 skills, against
the first scan that reads and parses every file; and the project instructions,
read once per invocation, from a folder five levels below a repository root."""

from __future__ import annotations

import tempfile
from pathlib import Path

from leharness.tools import skills
from leharness.tools.project import project_instructions

from . import Figure, timed


def make_skills(root: Path, count: int, first: int = 0) -> None:
    for number in range(first, first + count):
        folder = root / f"skill-{number:03}"
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(
            f"---\nname: skill-{number:03}\ndescription: Does task {number} well\n---\n"
            + "Step by step instructions.\n" * 40
        )


def run(quick: bool) -> list[Figure]:
    repeat = 20 if quick else 100
    figures = []
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for count in (20, 200):
            home, cwd = base / f"home{count}", base / f"cwd{count}"
            make_skills(home / "skills", count // 2)
            make_skills(cwd / ".agents" / "skills", count - count // 2, first=count // 2)

            def rescan(home: Path = home, cwd: Path = cwd) -> str:
                return skills.catalog(skills.discover(home, cwd))

            def first_scan(home: Path = home, cwd: Path = cwd) -> str:
                skills._cache.clear()
                return rescan(home, cwd)

            cold = timed(first_scan, max(5, repeat // 10))
            warm = timed(rescan, repeat)
            limit = 1 if count == 20 else 5
            name = f"catalog per step, {count} skills"
            figures.append(Figure(name, "ms", warm, f"< {limit} ms", median(warm) < limit))
            figures.append(Figure(f"first scan, {count} skills (every file read)", "ms", cold))
        repo = base / "repo"
        deep = repo / "a" / "b" / "c" / "d" / "e"
        deep.mkdir(parents=True)
        (repo / ".git").mkdir()
        for level in (repo, repo / "a", repo / "a" / "b" / "c"):
            (level / "AGENTS.md").write_text("Follow the house style.\n" * 50)
        instructions = timed(lambda: project_instructions(deep), repeat)
        figures.append(
            Figure(
                "project instructions per invocation (3 AGENTS.md, 6 folders)",
                "ms",
                instructions,
                "< 2 ms",
                median(instructions) < 2,
            )
        )
    return figures
