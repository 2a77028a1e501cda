"""The one place where expected failures become one-line errors and exit codes.

Library code raises the exceptions of `leharness.errors`; the `lh` group runs
every command inside `reported()`, which turns them (and a full disk, a
read-only home or a damaged file) into click's one-line `Error: …` with exit
code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from leharness.errors import LeharnessError, ReplayError, StoreError, UserError

__all__ = ["EXPECTED", "Failure", "UserError", "reported"]

# The failures that are the user's to fix (exit code 2); any other LeharnessError that
# reaches the CLI is a bug and keeps its traceback.
EXPECTED: tuple[type[LeharnessError], ...] = (UserError, StoreError, ReplayError)


class Failure(click.ClickException):
    """What click prints and exits with: `Error: <message>` on stderr, exit code 2."""

    exit_code = 2


@contextmanager
def reported() -> Iterator[None]:
    """Run a command; expected failures leave as a `Failure` (one line, exit code 2)."""
    try:
        yield
    except EXPECTED as error:
        raise Failure(str(error)) from None
    except Exception as error:
        problem = storage_failure(error)
        if problem is None:
            raise
        raise Failure(problem) from None


def storage_failure(error: Exception) -> str | None:
    """A read-only home, a full disk (also mid-run) or a damaged file: the line naming the
    file and the cause; None for any other error (a bug: it keeps its traceback)."""
    import sqlite3  # here, not at the top: `lh --help` does without it

    if not isinstance(error, (sqlite3.DatabaseError, OSError)):
        return None
    from leharness.store import db_path, storage_problem

    problem = storage_problem(db_path(), error)
    if problem is not None:
        return problem
    if not isinstance(error, sqlite3.DatabaseError):
        return None
    from leharness.store.health import is_corruption

    if not is_corruption(error):
        return None
    return (
        f"{db_path()} is damaged ({error}); `lh doctor` says what it finds, and "
        "`sqlite3 sessions.db .recover` may save its events"
    )
