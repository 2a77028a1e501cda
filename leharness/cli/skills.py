"""`lh skills`: the skills a session started here is offered, and the ones it is not."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import user_errors
from .output import output_options, print_rows

TABLE_DESCRIPTION_CHARS = 60


@click.command("skills")
@output_options
@user_errors
def skills_command(as_json: bool, as_csv: bool) -> None:
    """List the skills found from here: in use, shadowed, and unreadable SKILL.md files."""
    from leharness import store
    from leharness.tools import skills

    home, cwd = store.home_dir(), Path.cwd()
    found = skills.discover(home, cwd)
    rows = [(s.name, "active", s.description, str(s.path)) for s in found.skills]
    rows += [(s.name, "shadowed", "", str(path)) for s in found.skills for path in s.shadowed]
    rows += [(p.path.parent.name, "error", p.error, str(p.path)) for p in found.problems]
    if as_json or as_csv:
        print_rows(("name", "status", "description", "path"), rows, as_json=as_json, as_csv=as_csv)
        return
    if not rows:
        roots = ", ".join(str(root) for root in skills.skill_roots(home, cwd))
        click.echo(f"no skills found; looked in {roots} for <folder>/SKILL.md", err=True)
        return
    short = [(n, s, skills.one_line(d, TABLE_DESCRIPTION_CHARS), p) for n, s, d, p in rows]
    print_rows(("name", "status", "description", "path"), short, as_json=False, as_csv=False)
