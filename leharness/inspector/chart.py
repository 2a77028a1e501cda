"""The session page's timeline chart: bars on a time axis, drawn as SVG here
on the server, so the inspector needs no JavaScript library and no network.

Input is rows of the session_timeline view; each kind gets a lane, and
things that overlap in time (background tasks, subagents, parallel tool
calls) are stacked in sub-rows of their lane.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from markupsafe import Markup, escape

LANES = {
    "step": "steps",
    "model": "model calls",
    "tool": "tool calls",
    "task": "tasks",
    "subagent": "subagents",
}
MAX_SUBROWS = 8  # per lane; beyond that, bars share the last sub-row
WIDTH, GUTTER, RIGHT = 1000, 100, 16
ROW, BAR, AXIS = 20, 14, 26

STYLE = """
.lh-axis{stroke:#cbd5e1;stroke-width:1}
.lh-tick{font:11px sans-serif;fill:#475569}
.lh-lane{font:12px sans-serif;fill:#1e293b}
.lh-bar{stroke-width:1.5}
.lh-step{fill:#cbd5e1}.lh-model{fill:#6366f1}.lh-tool{fill:#10b981}
.lh-task{fill:#f59e0b}.lh-subagent{fill:#ec4899}
.lh-failed{stroke:#dc2626}.lh-interrupted,.lh-cancelled{stroke:#0f172a;stroke-dasharray:3 2}
.lh-running,.lh-requested{opacity:.55}
"""


def parse_ts(value: str | None) -> float | None:
    """Milliseconds since the epoch of an `events.ts` string."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


def draw(rows: list[dict], until: str, link: Callable[[dict], str | None]) -> Markup:
    """An SVG of the rows; open bars run to `until` (the session's last event).

    `link(row)` gives the URL a bar points to, or None.
    """
    drawn = [_bar(row, parse_ts(until)) for row in rows if row["kind"] in LANES]
    bars = [bar for bar in drawn if bar is not None]
    if not bars:
        return Markup("")
    start = min(bar["start"] for bar in bars)
    span = max(max(bar["end"] for bar in bars) - start, 1.0)
    scale = (WIDTH - GUTTER - RIGHT) / span
    lanes = _pack(bars)
    height = AXIS + ROW * sum(len(subrows) for _, subrows in lanes) + 6
    out = [
        f'<svg class="lh-timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="timeline of the session"><style>{STYLE}</style>'
    ]
    out += _axis(span, scale, height)
    y = AXIS
    for kind, subrows in lanes:
        out.append(
            f'<text class="lh-lane" x="4" y="{y + BAR - 1}">{escape(LANES[kind])}</text>'
            f'<line class="lh-axis" x1="{GUTTER}" x2="{WIDTH - RIGHT}" y1="{y - 3}" y2="{y - 3}"/>'
        )
        for subrow in subrows:
            for bar in subrow:
                x = GUTTER + (bar["start"] - start) * scale
                # 1 px less than the span, so that back-to-back bars stay apart.
                width = max((bar["end"] - bar["start"]) * scale - 1, 2.0)
                out.append(_rect(bar, x, y, width, link(bar["row"])))
            y += ROW
    out.append("</svg>")
    return Markup("".join(out))


def _bar(row: dict, until: float | None) -> dict | None:
    start = parse_ts(row["started_at"])
    if start is None:
        return None
    end = parse_ts(row["finished_at"])
    if end is None:  # still open: draw it up to the session's last event
        end = max(until or start, start)
    return {"row": row, "kind": row["kind"], "start": start, "end": end}


def _pack(bars: list[dict]) -> list[tuple[str, list[list[dict]]]]:
    """Per lane, sub-rows of bars that do not overlap (first fit, by start)."""
    lanes = []
    for kind in LANES:
        subrows: list[list[dict]] = []
        for bar in sorted((b for b in bars if b["kind"] == kind), key=lambda b: b["start"]):
            for subrow in subrows:
                if subrow[-1]["end"] <= bar["start"]:
                    subrow.append(bar)
                    break
            else:
                if len(subrows) < MAX_SUBROWS:
                    subrows.append([bar])
                else:
                    subrows[-1].append(bar)
        if subrows:
            lanes.append((kind, subrows))
    return lanes


def _axis(span: float, scale: float, height: int) -> list[str]:
    step = nice_step(span / 8)
    out = []
    tick = 0.0
    while tick <= span + step / 1000:
        x = GUTTER + tick * scale
        out.append(
            f'<line class="lh-axis" x1="{x:.1f}" x2="{x:.1f}" y1="{AXIS - 8}" y2="{height}"/>'
            f'<text class="lh-tick" x="{x + 2:.1f}" y="{AXIS - 12}">{format_ms(tick)}</text>'
        )
        tick += step
    return out


def _rect(bar: dict, x: float, y: int, width: float, href: str | None) -> str:
    row = bar["row"]
    status = str(row.get("status") or "")
    duration = row.get("duration_ms")
    took = format_ms(duration) if duration is not None else status
    tip = escape(f"{row['kind']}: {row.get('label') or ''} · {status} · {took}")
    rect = (
        f'<rect class="lh-bar lh-{escape(row["kind"])} lh-{escape(status)}" '
        f'data-kind="{escape(row["kind"])}" data-status="{escape(status)}" '
        f'x="{x:.1f}" y="{y}" width="{width:.1f}" height="{BAR}" rx="2">'
        f"<title>{tip}</title></rect>"
    )
    return f'<a href="{escape(href)}">{rect}</a>' if href else rect


def nice_step(raw: float) -> float:
    """The 1, 2 or 5 times a power of ten at or above `raw` milliseconds."""
    if raw <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return float(factor * power)
    return float(10 * power)


def format_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.3g} min"
    return f"{ms / 3_600_000:.3g} h"
