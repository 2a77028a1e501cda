"""The exceptions leharness expects, in one tree that assigns blame.

- `UserError`: bad input or configuration; the CLI prints the one line, exit code 2.
- `StoreError`: the database cannot be opened or used as asked; one line, exit code 2.
- `ReplayError`: a session cannot be replayed as asked; one line, exit code 2.
- `ProviderError`: the provider gave no answer (retried, then `model.failed`).
- `ToolError`: a tool call failed; it becomes `tool.failed` and the model sees it.

Anything else is a bug and shows its traceback. Library code raises these and
never a click exception: the CLI maps them to messages and exit codes in one
place (`leharness/cli/errors.py`). This module imports nothing, so every layer
may use it.
"""

from __future__ import annotations


class LeharnessError(Exception):
    """The base of every failure leharness expects."""


class UserError(LeharnessError):
    """Bad input or configuration: one line on stderr, exit code 2, no traceback."""


class StoreError(LeharnessError):
    """The database cannot be opened or used as asked (a user-facing problem)."""


class ReplayError(LeharnessError):
    """The session cannot be replayed as asked (a user-facing problem)."""


class ProviderError(LeharnessError):
    """The provider could not give an answer (after retries where they make sense)."""

    def __init__(self, message: str, kind: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


class ProviderConfigError(UserError):
    """The provider cannot be used as configured (missing key, unknown name)."""


class ToolError(LeharnessError):
    """A tool call failed in a way the model should hear about (becomes tool.failed)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind
