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
        import sqlite3

        from leharness.store import StoreError, db_path, storage_problem

        try:
            return command(*args, **kwargs)
        except StoreError as error:
            raise UserError(str(error)) from None
        except (sqlite3.DatabaseError, OSError) as error:
            # A read-only home or a full disk, also mid-run: name the file and the cause.
            problem = storage_problem(db_path(), error)
            if problem is not None:
                raise UserError(problem) from None
            if not isinstance(error, sqlite3.DatabaseError):
                raise
            from leharness.store.health import is_corruption

            if not is_corruption(error):
                raise
            raise UserError(
                f"{db_path()} is damaged ({error}); `lh doctor` says what it finds, and "
                "`sqlite3 sessions.db .recover` may save its events"
            ) from None

    return wrapper
