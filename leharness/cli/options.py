"""Option decorators shared by several commands. Imports only click, so that
registering a command never drags in what its body needs."""

from __future__ import annotations

from typing import Any

import click


def context_window_option(command: Any) -> Any:
    """--context-window; its variable and the settings file are read by settings.py, which
    knows where each value came from (lh config)."""
    return click.option(
        "--context-window",
        type=click.IntRange(min=1_000),
        metavar="TOKENS",
        help="The model's context window (default: known models, else 32,000)  "
        "[env LEHARNESS_CONTEXT_WINDOW]",
    )(command)
