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
from .commands import LazyCommands, stored
from .errors import UserError, reported


class LhGroup(DefaultGroup):
    """`lh PROMPT` beside the subcommands, with a guard against mistyped commands; every
    command runs inside `reported()`, the one place expected failures become exit codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands()  # each command's module is imported on first use

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

            hidden = {name for name, known in stored().items() if known["hidden"]}
            meant = suggestion(word, (n for n in self.commands if n not in hidden))
            if meant is not None:
                raise UserError(
                    f"did you mean `{meant}`? (to send it as a prompt: lh -- {shlex.join(args)})"
                )
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `lh --help`, from stand-ins (commands.json): importing every
        command module for its one line of help would double the time `--help` takes."""
        known = stored()
        if set(known) != set(self.commands):  # stale: the exact, slower way
            return super().format_commands(ctx, formatter)
        stand_ins = {name: click.Command(name, **known[name]) for name in self.commands}
        listed = DefaultGroup(self.name, stand_ins, default=self.default_cmd_name)
        return listed.format_commands(ctx, formatter)


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
