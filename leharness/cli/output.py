"""Printing rows as a table, JSON or CSV: the shared `--json/--csv/--table` options."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click


def output_options(command: Callable) -> Callable:
    """Add `--json`, `--csv` and `--table` (the default) to a command."""
    command = click.option("--csv", "as_csv", is_flag=True, help="Output CSV.")(command)
    command = click.option("--json", "as_json", is_flag=True, help="Output JSON.")(command)
    return command


def print_rows(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, as_json: bool, as_csv: bool
) -> None:
    rows = list(rows)
    if as_json:
        click.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2))
    elif as_csv:
        import csv  # only here: every `lh "…"` imports this module (~0.6 ms)

        writer = csv.writer(sys.stdout, lineterminator="\n")  # not csv's default \r\n
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        from tabulate import tabulate

        click.echo(tabulate(rows, headers=list(columns), tablefmt="simple", disable_numparse=True))
