"""Skills: folders holding a `SKILL.md`, offered to the model as a catalog.

A skill is `<root>/<folder>/SKILL.md`: YAML front matter with `name` and
`description`, then the body the model reads with `load_skill`. Roots, first
wins: `$LEHARNESS_HOME/skills`, then `.agents/skills` and `.claude/skills` of
the working directory and of the repository root; a skill whose name an earlier
one already took is shadowed (listed, never used). The loop rescans every step
so edits show at once; a file whose stat is unchanged is not read again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from leharness.store import events as ev
from leharness.store import home_dir
from leharness.store.text import storable

from .base import Tool, ToolContext, ToolError
from .project import repo_root

SKILL_FILE = "SKILL.md"
CATALOG_CHARS = 6_000  # the whole catalog, "… N more skills" line included
DESCRIPTION_CHARS = 300  # one skill's description in the catalog
SKILL_INLINE_BYTES = 64 * 1024  # a skill body is read whole, not as an artifact preview
YAML_SYNTAX = tuple("\"'[{|>&*!%@`")  # a value starting so was meant as YAML


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: Path  # its SKILL.md
    body: str
    content_hash: str  # sha256 of the SKILL.md file as read
    shadowed: tuple[Path, ...] = ()  # SKILL.md files of the same name that lost


@dataclass(frozen=True)
class SkillProblem:
    """A SKILL.md that cannot be used, and why."""

    path: Path
    error: str


@dataclass(frozen=True)
class Skills:
    skills: tuple[Skill, ...] = ()  # the winners, by name
    problems: tuple[SkillProblem, ...] = ()

    def get(self, name: str) -> Skill | None:
        return next((skill for skill in self.skills if skill.name == name), None)


def skill_roots(home: Path, cwd: Path) -> list[Path]:
    """Where skills are looked for, first wins."""
    cwd = cwd.resolve()
    folders = [cwd]
    root = repo_root(cwd)
    if root is not None and root != cwd:
        folders.append(root)
    roots = [home / "skills"]
    roots += [folder / kind / "skills" for kind in (".agents", ".claude") for folder in folders]
    return list(dict.fromkeys(roots))


def discover(home: Path, cwd: Path) -> Skills:
    """Every skill under the roots, the shadowed copies and the unreadable ones."""
    winners: dict[str, Skill] = {}
    shadowed: dict[str, list[Path]] = {}
    problems: list[SkillProblem] = []
    for root in skill_roots(home, cwd):
        for name in _skill_files(root):
            found = _read_cached(name)
            if isinstance(found, SkillProblem):
                problems.append(found)
            elif found is not None and found.name in winners:
                shadowed.setdefault(found.name, []).append(found.path)
            elif found is not None:
                winners[found.name] = found
    skills = tuple(
        replace(skill, shadowed=tuple(shadowed[name])) if name in shadowed else skill
        for name, skill in sorted(winners.items())
    )
    return Skills(skills, tuple(problems))


def catalog(found: Skills, limit: int = CATALOG_CHARS) -> str:
    """The system prompt's list of skills, at most `limit` characters."""
    if not found.skills:
        return ""
    lines = [
        "# Skills",
        "",
        "Skills hold instructions for particular tasks. When a task matches a skill's "
        "description, call load_skill with its name before you start, then follow it.",
    ]
    used = sum(len(line) + 1 for line in lines)
    for index, skill in enumerate(found.skills):
        line = f"- {skill.name}: {one_line(skill.description, DESCRIPTION_CHARS)}"
        left = len(found.skills) - index
        room_for_more = len(_more(left - 1)) + 1 if left > 1 else 0
        if used + len(line) + 1 + room_for_more > limit:
            lines.append(_more(left))
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def _more(count: int) -> str:
    return f"… {count} more skills: load_skill with any name lists them all"


# -- reading SKILL.md files ------------------------------------------------------

# Keyed by path strings, not Path objects: building Paths was most of a rescan's cost.
_cache: dict[str, tuple[tuple[int, int, int], Skill | SkillProblem]] = {}


def _skill_files(root: Path) -> list[str]:
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError:  # no such root (the usual case), or not a folder
        return []
    return [os.path.join(entry.path, SKILL_FILE) for entry in entries if entry.is_dir()]


def _read_cached(name: str) -> Skill | SkillProblem | None:
    """The parsed file (None: no SKILL.md), read again only when its stat changed."""
    try:
        info = os.stat(name)
    except OSError:
        return None
    key = (info.st_mtime_ns, info.st_size, info.st_ino)
    cached = _cache.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]
    path = Path(name)
    try:
        data = path.read_bytes()
    except OSError as error:
        parsed: Skill | SkillProblem = SkillProblem(path, f"cannot read it: {error.strerror}")
    else:
        parsed = parse_skill(path, data)
    _cache[name] = (key, parsed)
    return parsed


def parse_skill(path: Path, data: bytes) -> Skill | SkillProblem:
    """A SKILL.md's front matter and body; `name` defaults to the folder's name."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return SkillProblem(path, "no YAML front matter: start the file with a --- line")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        return SkillProblem(path, "the front matter has no closing --- line")
    import yaml  # here, not at the top: most runs find no skill (11 ms of every start)

    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except (yaml.YAMLError, RecursionError) as error:  # a RecursionError: nested too deep
        meta = _plain_pairs(lines[1:end])
        if meta is None:
            why = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            return SkillProblem(path, f"invalid YAML front matter: {one_line(why, 200)}")
    if not isinstance(meta, dict):
        return SkillProblem(path, "the front matter is not a mapping of keys to values")
    # YAML may escape a lone surrogate ("\ud800"), which no output nor event can hold.
    name = storable(str(meta.get("name") or path.parent.name)).strip()
    description = meta.get("description")
    if isinstance(description, str):
        description = storable(description)
    if not isinstance(description, str) or not description.strip():
        return SkillProblem(path, "the front matter has no description")
    if not name or any(char.isspace() for char in name):
        return SkillProblem(path, f"invalid name {name!r}: use letters, digits and hyphens")
    body = "".join(lines[end + 1 :]).strip()
    digest = hashlib.sha256(data).hexdigest()
    return Skill(name, description.strip(), path, body, digest)


def _plain_pairs(lines: list[str]) -> dict[str, str] | None:
    """`key: value` lines read literally, for front matter that is not strict YAML only
    because a value holds ": " (`description: Use it when: …`); None if not that."""
    pairs = {}
    for line in filter(str.strip, lines):
        key, colon, value = line.partition(":")
        value = value.strip()
        if not colon or not key.isidentifier() or value.startswith(YAML_SYNTAX):
            return None
        pairs[key] = value
    return pairs


def one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the tool ----------------------------------------------------------------------


class LoadSkillArgs(BaseModel):
    """Load a skill: the full instructions of one skill listed under "Skills" in the
    system prompt. Call it before starting a task that matches the skill's description."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    name: str = Field(min_length=1, description="The skill's name, as listed.")


async def load_skill(args: LoadSkillArgs, ctx: ToolContext) -> str:
    found = discover(ctx.home or home_dir(), ctx.cwd)
    skill = found.get(args.name.strip())
    if skill is None:
        names = ", ".join(skill.name for skill in found.skills) or "none are installed"
        raise ToolError(f"no skill named {args.name!r}; skills: {names}", "unknown_skill")
    record = ctx.record
    if record is not None:
        loaded = ev.SkillLoaded(
            name=skill.name, path=str(skill.path), content_hash=skill.content_hash
        )
        record(loaded)
    return render(skill)


def render(skill: Skill) -> str:
    """What the model reads: where the skill lives, then its body."""
    lines = [
        f"Skill {skill.name} from {skill.path}",
        f"(paths in it are relative to {skill.path.parent})",
    ]
    if skill.shadowed:
        lines.append("Shadowed copies, not used: " + ", ".join(map(str, skill.shadowed)))
    return "\n".join(lines) + "\n\n" + skill.body


LOAD_SKILL = Tool(
    name="load_skill",
    args=LoadSkillArgs,
    run=load_skill,
    read_only=True,
    inline_limit=SKILL_INLINE_BYTES,
)
