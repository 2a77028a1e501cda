"""Channels that render the loop's events: plain terminal, JSON lines, rich REPL.

The loop never prints; these do. Answers go to stdout, tool activity,
reasoning and retries to stderr, so `lh "prompt" > answer.txt` keeps only
the answer.
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, TextIO

from leharness.loop.channel import NullChannel
from leharness.store import jsontext

if TYPE_CHECKING:
    from leharness.store import Event
    from leharness.store.events import AgentFinished

MAX_ARG_CHARS = 80
DISCARDED = "[the partial answer above was cut off: discarded]"


def call_summary(name: str, arguments: str) -> str:
    """`bash: ls -la` — the most telling argument of a call, on one line."""
    try:
        args = jsontext.loads(arguments or "{}")
    except json.JSONDecodeError:
        return f"{name} {arguments[:MAX_ARG_CHARS]}"
    if not isinstance(args, dict) or not args:
        return name
    key = next((k for k in ("command", "path", "pattern", "prompt") if k in args), next(iter(args)))
    value = " ".join(str(args[key]).split())
    if len(value) > MAX_ARG_CHARS:
        value = value[: MAX_ARG_CHARS - 1] + "…"
    return f"{name}: {value}"


def result_summary(result: str, name: str = "") -> str:
    """`10 lines · exit 0` (the `[exit: N]` line is not one of the output's lines); for an
    edit, the +/- counts of its diff; for a write, what it wrote."""
    if name == "edit_file":
        from .diffs import counts_summary

        return counts_summary(result.splitlines()[1:])
    lines = result.rstrip("\n").splitlines()
    if name == "write_file" and lines:
        return lines[0]
    last = lines[-1] if lines else ""
    exit_note = ""
    if last.startswith("[exit:"):
        exit_note = f" · {last.strip('[]')}"
        lines = lines[:-1]
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''}{exit_note}"


PREVIEW_LINES = 3  # of a bash result: the first and the last this many lines
PREVIEW_CHARS = 120


def output_preview(result: str, keep: int = PREVIEW_LINES) -> list[str]:
    """The first and last `keep` lines of a bash result (its `[exit: N]` line left to the
    summary), with a `… N more lines` between them, each cut to one terminal line."""
    lines = result.rstrip("\n").splitlines()
    if lines and lines[-1].startswith("[exit:"):
        lines = lines[:-1]

    def cut(line: str) -> str:
        line = line.expandtabs(4).rstrip()
        return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"

    if len(lines) <= 2 * keep + 1:
        return [cut(line) for line in lines]
    hidden = len(lines) - 2 * keep
    return [*map(cut, lines[:keep]), f"… {hidden} more lines", *map(cut, lines[-keep:])]


# ESC and the C1 controls start escape sequences: in what a model or a tool wrote they
# would drive the terminal (set its title, write the clipboard, clear the screen).
_CONTROL = re.compile("[\x1b\x80-\x9f]")


def shown(text: str) -> str:
    """`text` as this terminal may print it: ESC as ␛, a C1 control as \\xNN."""
    return _CONTROL.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return "␛" if char == "\x1b" else f"\\x{ord(char):02x}"


class TerminalChannel:
    """One-shot rendering: streamed answer on stdout, compact tool lines on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._calls: dict[str, str] = {}
        self._mid_line = False
        self._dim = self.err.isatty()
        self._told = False  # said how to let refused calls run
        # On a terminal the answer's escape sequences are shown, not run (see shown());
        # piped (`lh … > answer.txt`), the answer stays as the model wrote it.
        self._answer = shown if self.out.isatty() else str

    def text(self, delta: str) -> None:
        self.out.write(self._answer(delta))
        self.out.flush()
        self._mid_line = not delta.endswith("\n")

    def reasoning(self, delta: str) -> None:
        delta = shown(delta)
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
        if data.type in ("model.completed", "model.cancelled"):
            if self._mid_line:
                self.out.write("\n")
                self.out.flush()
                self._mid_line = False
            for call in getattr(data, "tool_calls", []):
                self._calls[call.id] = call_summary(call.name, call.arguments)
        elif data.type == "tool.started":
            self._note(f"→ {self._calls.get(data.call_id, data.name)}")
        elif data.type == "tool.completed":
            summary = result_summary(data.result, data.name)
            self._note(f"  ✓ {summary} · {data.duration_ms or 0} ms")
            if data.name == "bash":
                for line in output_preview(data.result):
                    self._note(f"    {line}")
        elif data.type == "tool.failed":
            first = data.error.splitlines()[0] if data.error else ""
            self._note(f"  ✗ {self._calls.get(data.call_id, data.name)}: {first}")
        elif data.type == "approval.decided" and data.by == "no_terminal" and not self._told:
            self._told = True  # once per run, not once per refused call
            self._note(
                "  ! refused: no terminal to answer on (approval is ask). To let bash and "
                "file changes run without asking: lh --approval auto, LEHARNESS_APPROVAL=auto "
                'or approval = "auto" in settings.toml'
            )
        elif data.type == "model.failed":
            self._note(f"✗ model call failed after {data.attempts} attempt(s): {data.error}")
        elif data.type == "compaction.completed":
            self._note(f"· context compacted ({data.tier})")
        elif data.type == "compaction.summary.failed":
            self._note(f"! compaction summary failed, going on without it: {data.error}")
        elif data.type == "agent.finished" and _empty_answer(data):
            self._note("(the model returned an empty answer)")

    def _note(self, line: str) -> None:
        self.err.write(shown(line) + "\n")
        self.err.flush()


def _empty_answer(data: AgentFinished) -> bool:
    return data.reason == "no_tool_calls" and not data.text.strip()


class JsonChannel(NullChannel):
    """`--json`: every stored event as one JSON line on stdout, nothing else."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def event(self, event: Event) -> None:
        self.out.write(json.dumps(event.as_record()) + "\n")
        self.out.flush()
