"""Run the benchmarks and rewrite BENCHMARKS.md (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("results.json")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="default: all")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs (< 2 min)")
    options = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in options.names or BENCHMARKS:
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        figures = module.run(options.quick)
        results[name] = {
            "doc": (module.__doc__ or "").strip(),
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": options.quick,
            "seconds": round(time.monotonic() - started, 1),
            "machine": machine(),
            "figures": [figure.as_dict() for figure in figures],
        }
        for figure in figures:
            print(f"   {line(figure.as_dict())}", file=sys.stderr, flush=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "BENCHMARKS.md").write_text(render(results))


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def line(fig: dict) -> str:
    met = {True: "met", False: "NOT met", None: ""}[fig["met"]]
    return (
        f"{fig['name']}: {fmt(fig['median'])} {fig['unit']} "
        f"(min {fmt(min(fig['samples']))}, max {fmt(max(fig['samples']))}, n={len(fig['samples'])})"
        f" target {fig['target'] or '-'} {met}"
    )


def render(results: dict) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (all), `python -m bench NAME` (one) or",
        "`python -m bench --quick` (smaller, under two minutes). Each figure is the median",
        "of its samples with min and max; ratios are measured within one run.",
        "",
    ]
    for name in BENCHMARKS:
        if name not in results:
            continue
        entry = results[name]
        quick = " · quick mode" if entry["quick"] else ""
        out += [
            f"## {name}",
            "",
            entry["doc"],
            "",
            f"_{entry['when']} · {entry['machine']} · {entry['seconds']} s{quick}_",
            "",
        ]
        out += [
            "| figure | median | min | max | n | target | met |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for fig in entry["figures"]:
            met = {True: "yes", False: "**no**", None: "—"}[fig["met"]]
            low, high = fmt(min(fig["samples"])), fmt(max(fig["samples"]))
            out.append(
                f"| {fig['name']} | {fmt(fig['median'])} {fig['unit']} | {low} | {high} "
                f"| {len(fig['samples'])} | {fig['target'] or '—'} | {met} |"
            )
        notes = [f"- {fig['name']}: {fig['note']}" for fig in entry["figures"] if fig["note"]]
        out += ["", *notes, ""] if notes else [""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
