"""The subcommands of `lh`, each imported only when it runs.

`lh --help` lists every command with its one-line help; importing all the
command modules for that cost ~30 ms of a ~60 ms `--help`. The names and the
modules that define them are listed here; the short help texts are kept in
`commands.json` beside this file (as the tool schemas are in tools/schemas.json),
and `lh --help` itself, as click renders it at the usual width, in `help.txt`:
printed without importing click (~15 ms of imports). `python -m
leharness.cli.commands` rewrites both; tests/test_startup.py fails when they no
longer match the commands.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import cache
from pathlib import Path
from typing import Any

# name: (module in leharness.cli, attribute); `run` first, as the group's default
MODULES = {
    "run": ("run", "run_command"),
    "demo": ("demo", "demo_command"),
    "show": ("history", "show_command"),
    "sessions": ("history", "sessions_command"),
    "sql": ("history", "sql_command"),
    "fork": ("history", "fork_command"),
    "export": ("history", "export_command"),
    "import": ("history", "import_command"),
    "merge": ("merge", "merge_command"),
    "config": ("config", "config_command"),
    "skills": ("skills", "skills_command"),
    "mcp": ("mcp", "mcp_group"),
    "inspect": ("inspect", "inspect_command"),
    "replay": ("replay", "replay_command"),
    "doctor": ("doctor", "doctor_command"),
    "compact": ("compact", "compact_command"),
    "search": ("search", "search_command"),
    "rewind": ("rewind", "rewind_command"),
    "diff": ("rewind", "diff_command"),
}


def load(name: str) -> Any:
    """The click command `name` (its module is imported now)."""
    module, attribute = MODULES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


class LazyCommands(dict):
    """A group's commands by name; a command's module is imported when it is looked up.
    Iterating over the names (`sorted(cli.commands)`, `name in cli.commands`) imports
    nothing."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys(MODULES))

    def __getitem__(self, name: str) -> Any:
        command = super().__getitem__(name)
        if command is None:
            command = load(name)
            self[name] = command
        return command

    def get(self, name: str, default: Any = None) -> Any:
        if name not in self:
            return default
        return self[name]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[name] for name in self]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(name, self[name]) for name in self]


@cache
def stored() -> dict[str, dict[str, Any]]:
    """Per command, the arguments of a stand-in `click.Command` that lists it in the
    group's help as the real one does (see `describe`)."""
    raw = pkgutil.get_data(__package__, "commands.json")
    return json.loads(raw) if raw else {}


def describe(command: Any) -> dict[str, Any]:
    """What the group's help shows of a command: click makes the one-line help from the
    short help or else the first paragraph of the help, and skips hidden commands."""
    first_paragraph = command.help.partition("\n\n")[0] if command.help else None
    return {
        "help": first_paragraph,
        "short_help": command.short_help,
        "hidden": bool(command.hidden),
        "deprecated": command.deprecated,
    }


def generate() -> dict[str, dict[str, Any]]:
    return {name: describe(load(name)) for name in MODULES}


def render_help() -> str:
    """`lh --help` as click writes it on a terminal of 80 columns or more (78 wide)."""
    from click.testing import CliRunner

    from .group import cli

    return CliRunner().invoke(cli, ["--help"], prog_name="lh", terminal_width=78).output


def write() -> Path:
    path = Path(__file__).with_name("commands.json")
    path.write_text(json.dumps(generate(), indent=1, sort_keys=True) + "\n")
    path.with_name("help.txt").write_text(render_help())
    return path


if __name__ == "__main__":
    import sys

    sys.stdout.write(f"wrote {write()}\n")  # a developer's command
