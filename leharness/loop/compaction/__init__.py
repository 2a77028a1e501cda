"""Compaction: the pressure gradient, planned (planner.py) and applied (apply.py).

Before each model call the loop runs `compact_context`. Pressure is the last
model call's prompt tokens ÷ budget (0.85 × the model's context window); when
the provider reported no usage, or a compaction changed the conversation since
that call, the tokens are estimated from the prompt's characters (4 a token).
planner.py decides, with no I/O, which tiers the pressure reaches; apply.py
records each as `compaction.*` events, and the triggers in
projections/sql/messages.sql apply it to the visible messages: nothing here
edits or deletes a row. Old means outside the two most recent turns; a turn is
one model call with its input and its tool results, so a window or a hidden
prefix never separates a tool call from its result.

    T1 ≥ 0.50  old reasoning leaves the view
    T2 ≥ 0.65  old tool results of 1 KiB or more move to artifacts (a stub stays)
    T3 ≥ 0.75  remaining old tool result bodies become a marker
    T4 ≥ 0.85  the model summarises the oldest window of turns (transcript saved)
    T5 ≥ 0.95  …and a second window
    T6         whatever the pressure, the oldest turns are hidden until the
               request fits a hard character ceiling (also, once, with half
               the ceiling when the provider still says the prompt is too long)

A summary is never summarised again; once summaries hold more than a quarter
of the ceiling the oldest leave the view. Summaries are written by summary.py.
"""

from .apply import (
    Compacted,
    Interrupted,
    ManualResult,
    budget_of,
    compact_context,
    compact_now,
    shrink_after_overflow,
)
from .planner import (
    BUDGET_SHARE,
    CHARS_PER_TOKEN,
    CONTEXT_WINDOWS,
    DROPPED,
    EXEMPT_TURNS,
    FALLBACK_CONTEXT_WINDOW,
    FIT_SHARE,
    TIERS,
    Budget,
    Pressure,
    Request,
    context_window,
    measure,
    next_window,
    old_turns,
    plan,
    request_chars,
    turns,
)

__all__ = [
    "BUDGET_SHARE",
    "CHARS_PER_TOKEN",
    "CONTEXT_WINDOWS",
    "DROPPED",
    "EXEMPT_TURNS",
    "FALLBACK_CONTEXT_WINDOW",
    "FIT_SHARE",
    "TIERS",
    "Budget",
    "Compacted",
    "Interrupted",
    "ManualResult",
    "Pressure",
    "Request",
    "budget_of",
    "compact_context",
    "compact_now",
    "context_window",
    "measure",
    "next_window",
    "old_turns",
    "plan",
    "request_chars",
    "shrink_after_overflow",
    "turns",
]
