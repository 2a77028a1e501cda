"""`lh` as a Harbor installed agent: `harbor run -a leharness.harbor:Leharness ...`.

The agent itself (`agent.py`) needs Harbor, hence Python >= 3.12 and the
`leharness[harbor]` extra; it is imported on first use of `Leharness` so that
`leharness.harbor.trial` (what a trial's database says: tokens, cost, the ATIF
trajectory) works without Harbor. Nothing else in leharness imports this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Leharness"]


def __getattr__(name: str) -> Any:
    if name == "Leharness":
        try:
            from .agent import Leharness
        except ImportError as error:  # harbor missing, or Python < 3.12
            raise ImportError(
                f"leharness.harbor needs Harbor (pip install 'leharness[harbor]', "
                f"Python >= 3.12): {error}"
            ) from error
        return Leharness
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
