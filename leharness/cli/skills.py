"""`lh skills`: the skills a session started here is offered, and the ones it is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .output import output_options, print_rows

TABLE_DESCRIPTION_CHARS = 60


@click.command("skills")
@output_options
def skills_command(as_json: bool, as_csv: bool) -> None:
    """List the skills found from here: in use, shadowed, and unreadable SKILL.md files."""
    from leharness import store
    from leharness.tools import skills

    home, cwd = store.home_dir(), Path.cwd()
    rows = skill_rows(home, cwd)
    if as_json or as_csv:
        print_rows(("name", "status", "description", "path"), rows, as_json=as_json, as_csv=as_csv)
        return
    if not rows:
        roots = ", ".join(str(root) for root in skills.skill_roots(home, cwd))
        click.echo(f"no skills found; looked in {roots} for <folder>/SKILL.md", err=True)
        return
    print_rows(("name", "status", "description", "path"), _short(rows), as_json=False, as_csv=False)


def skill_rows(home: Path, cwd: Path) -> list[tuple[str, str, str, str]]:
    """(name, active | shadowed | error, description or error, path) for every SKILL.md found."""
    from leharness.tools import skills

    found = skills.discover(home, cwd)
    rows = [(s.name, "active", s.description, str(s.path)) for s in found.skills]
    rows += [(s.name, "shadowed", "", str(path)) for s in found.skills for path in s.shadowed]
    rows += [(p.path.parent.name, "error", p.error, str(p.path)) for p in found.problems]
    return rows


def show_skills(console: Any, home: Path, cwd: Path) -> None:
    """`/skills` in the interactive session: what this session's working directory offers."""
    from tabulate import tabulate

    rows = skill_rows(home, cwd)
    if not rows:
        console.print("no skills found (lh skills --help says where they are looked for)")
        return
    table = tabulate(_short(rows), headers=("name", "status", "description", "path"))
    console.print(table, markup=False, highlight=False)


def _short(rows: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    from leharness.tools import skills

    return [(n, s, skills.one_line(d, TABLE_DESCRIPTION_CHARS), p) for n, s, d, p in rows]
