"""Channels that render the loop's events: plain terminal, JSON lines, rich REPL.

The loop never prints; these do. Answers go to stdout, tool activity,
reasoning and retries to stderr, so `lh "prompt" > answer.txt` keeps only
the answer.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

from leharness.loop.channel import NullChannel

if TYPE_CHECKING:
    from leharness.store import Event

MAX_ARG_CHARS = 80
DISCARDED = "[the partial answer above was cut off: discarded]"


def call_summary(name: str, arguments: str) -> str:
    """`bash: ls -la` — the most telling argument of a call, on one line."""
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return f"{name} {arguments[:MAX_ARG_CHARS]}"
    if not isinstance(args, dict) or not args:
        return name
    key = next((k for k in ("command", "path", "pattern", "prompt") if k in args), next(iter(args)))
    value = " ".join(str(args[key]).split())
    if len(value) > MAX_ARG_CHARS:
        value = value[: MAX_ARG_CHARS - 1] + "…"
    return f"{name}: {value}"


def result_summary(result: str) -> str:
    lines = result.rstrip("\n").splitlines()
    last = lines[-1] if lines else ""
    exit_note = f" · {last.strip('[]')}" if last.startswith("[exit:") else ""
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''}{exit_note}"


class TerminalChannel:
    """One-shot rendering: streamed answer on stdout, compact tool lines on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._calls: dict[str, str] = {}
        self._mid_line = False
        self._dim = self.err.isatty()

    def text(self, delta: str) -> None:
        self.out.write(delta)
        self.out.flush()
        self._mid_line = not delta.endswith("\n")

    def reasoning(self, delta: str) -> None:
        self.err.write(f"\x1b[2m{delta}\x1b[0m" if self._dim else delta)
        self.err.flush()

    def retry(self, attempt: int, message: str, delay_s: float) -> None:
        self._note(f"! {message}; retrying in {delay_s:.1f}s (attempt {attempt + 1})")

    def discard(self, text: str, reasoning: str) -> None:
        if self._mid_line:
            self.out.write("\n")
            self.out.flush()
            self._mid_line = False
        if text:  # on stdout beside the text it disowns, so `lh … > answer.txt` shows it too
            self.out.write(DISCARDED + "\n")
            self.out.flush()
        else:
            self._note(DISCARDED)

    def event(self, event: Event) -> None:
        data = event.data
        if event.type in ("model.completed", "model.cancelled"):
            if self._mid_line:
                self.out.write("\n")
                self.out.flush()
                self._mid_line = False
            for call in getattr(data, "tool_calls", []):
                self._calls[call.id] = call_summary(call.name, call.arguments)
        elif event.type == "tool.started":
            self._note(f"→ {self._calls.get(data.call_id, data.name)}")
        elif event.type == "tool.completed":
            self._note(f"  ✓ {result_summary(data.result)} · {data.duration_ms or 0} ms")
        elif event.type == "tool.failed":
            first = data.error.splitlines()[0] if data.error else ""
            self._note(f"  ✗ {self._calls.get(data.call_id, data.name)}: {first}")
        elif event.type == "model.failed":
            self._note(f"✗ model call failed after {data.attempts} attempt(s): {data.error}")
        elif event.type == "compaction.completed":
            self._note(f"· context compacted ({data.tier})")
        elif event.type == "compaction.summary.failed":
            self._note(f"! compaction summary failed, going on without it: {data.error}")
        elif event.type == "agent.finished" and _empty_answer(data):
            self._note("(the model returned an empty answer)")

    def _note(self, line: str) -> None:
        self.err.write(line + "\n")
        self.err.flush()


def _empty_answer(data) -> bool:
    return data.reason == "no_tool_calls" and not data.text.strip()


class JsonChannel(NullChannel):
    """`--json`: every stored event as one JSON line on stdout, nothing else."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def event(self, event: Event) -> None:
        self.out.write(json.dumps(event.as_record()) + "\n")
        self.out.flush()
