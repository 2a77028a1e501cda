"""The `lh` command: one click group, thin commands calling the library.

Heavy imports (openai, datasette, pydantic models) happen inside the commands
that need them so that `lh --help` stays fast.
"""

from __future__ import annotations

import click

from leharness import __version__

from .history import fork_command, sessions_command, sql_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lh")
def cli() -> None:
    """leharness: an agent harness whose whole history is one SQLite database.

    Sessions live in .leharness/sessions.db (or $LEHARNESS_HOME/sessions.db).
    """


cli.add_command(sessions_command)
cli.add_command(sql_command)
cli.add_command(fork_command)


def main() -> None:
    cli()
