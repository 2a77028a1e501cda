"""The interactive session's status line: model, context used, tasks, what is running.

A pure function of projection rows and the channel's activity, so it can be
tested without a terminal; the REPL shows it as prompt_toolkit's bottom toolbar.
"""

from __future__ import annotations

from datetime import UTC, datetime

from leharness.loop.compaction import context_window
from leharness.projections import SessionRow, TaskRow

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def elapsed(seconds: float) -> str:
    """`4.2s`, `3m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def parse_ts(ts: str) -> datetime:
    """An event timestamp (UTC ISO-8601, `Z` suffix) as an aware datetime."""
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def since(ts: str, now: datetime) -> float:
    """Seconds from an event timestamp to `now`."""
    return max(0.0, (now - parse_ts(ts)).total_seconds())


def context_used(model: str, row: SessionRow | None, window_override: int | None = None) -> str:
    """`1,234 / 32,000 tokens (4%)`: the last model call's prompt tokens against the window
    compaction uses (--context-window, else the model's known window, else 32,000)."""
    window = context_window(model, window_override)
    used = (row.last_prompt_tokens or 0) if row else 0
    return f"{used:,} / {window:,} tokens ({used * 100 // window}%)"


def task_label(task: TaskRow) -> str:
    what = task.command or task.prompt or task.kind
    what = " ".join(what.split())
    return what if len(what) <= 30 else what[:29] + "…"


def status_line(
    model: str,
    row: SessionRow | None,
    tasks: list[TaskRow],
    activity: tuple[str, float] | None,
    queued: int,
    now_monotonic: float,
    now: datetime | None = None,
    window_override: int | None = None,
) -> str:
    """One line: spinner and what runs (with elapsed time), model, context, tasks, queue."""
    now = now or datetime.now(UTC)
    frame = SPINNER[int(now_monotonic * 10) % len(SPINNER)]
    parts = []
    if activity is not None:
        label, started = activity
        parts.append(f"{frame} {label} · {elapsed(now_monotonic - started)}")
    parts += [model, context_used(model, row, window_override)]
    if tasks:
        oldest = tasks[0]
        count = f"{len(tasks)} task{'s' if len(tasks) != 1 else ''} running"
        spin = "" if activity else f"{frame} "
        parts.append(
            f"{spin}{count} ({task_label(oldest)} · {elapsed(since(oldest.started_at, now))})"
        )
    else:
        parts.append("no tasks running")
    if queued:
        parts.append(f"{queued} queued")
    return " │ ".join(parts)
