"""Turning expected failures into one-line errors with exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click


class UserError(click.ClickException):
    """Bad input or configuration: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


def user_errors(command: Callable) -> Callable:
    """Report the store's and the library's user-facing errors as UserError."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from leharness.store import StoreError

        try:
            return command(*args, **kwargs)
        except StoreError as error:
            raise UserError(str(error)) from None

    return wrapper
