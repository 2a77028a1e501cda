"""The `lh` click group: thin commands calling the library.

Heavy imports (httpx, datasette, pydantic models) happen inside the commands
that need them so that `lh --help` stays fast.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import click
from click_default_group import DefaultGroup

from leharness import __version__

from . import process
from .compact import compact_command
from .config import config_command
from .demo import demo_command
from .doctor import doctor_command
from .errors import UserError, reported
from .history import (
    export_command,
    fork_command,
    import_command,
    sessions_command,
    show_command,
    sql_command,
)
from .inspect import inspect_command
from .mcp import mcp_group
from .merge import merge_command
from .replay import replay_command
from .rewind import diff_command, rewind_command
from .run import run_command
from .search import search_command
from .skills import skills_command


class LhGroup(DefaultGroup):
    """`lh PROMPT` beside the subcommands, with a guard against mistyped commands; every
    command runs inside `reported()`, the one place expected failures become exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        with reported():
            return super().invoke(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["lh.dashdash"] = bool(args) and args[0] == "--"
        if ctx.resilient_parsing and not args:  # shell completion: offer the subcommands
            return click.Group.parse_args(self, ctx, args)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        word = args[0] if args else ""
        typed = word not in self.commands and not word.startswith("-")
        if typed and not ctx.meta.get("lh.dashdash"):
            from .typos import suggestion

            meant = suggestion(word, (n for n, c in self.commands.items() if not c.hidden))
            if meant is not None:
                raise UserError(
                    f"did you mean `{meant}`? (to send it as a prompt: lh -- {shlex.join(args)})"
                )
        return super().resolve_command(ctx, args)


@click.group(
    cls=LhGroup,
    default="run",
    default_if_no_args=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="lh")
def cli() -> None:
    """leharness: an agent harness whose whole history is one SQLite database.

    \b
    lh "summarize this repo"     run one prompt and exit
    lh                           interactive session
    lh --session ID [PROMPT]     resume a session (-c: the latest)
    lh demo                      a recorded session, offline, no key
    lh inspect                   browse every session in Datasette
    lh run --help                every option of a run
    lh config                    the settings in effect, and where each comes from
    lh skills                    the skills the model is offered here

    Sessions live in .leharness/sessions.db (or $LEHARNESS_HOME/sessions.db).
    """
    if click.get_current_context().invoked_subcommand != "run":
        process.collecting()  # `run` turns the collector on once it has started
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UserError(
            "the current directory no longer exists (deleted or moved?): "
            "cd to an existing folder and run lh again"
        ) from None


cli.add_command(run_command)
cli.add_command(demo_command)
cli.add_command(show_command)
cli.add_command(sessions_command)
cli.add_command(sql_command)
cli.add_command(fork_command)
cli.add_command(export_command)
cli.add_command(import_command)
cli.add_command(merge_command)
cli.add_command(config_command)
cli.add_command(skills_command)
cli.add_command(mcp_group)
cli.add_command(inspect_command)
cli.add_command(replay_command)
cli.add_command(doctor_command)
cli.add_command(compact_command)
cli.add_command(search_command)
cli.add_command(rewind_command)
cli.add_command(diff_command)
