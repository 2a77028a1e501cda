"""The interactive session's renderer: answers as markdown, tool calls, diffs, activity.

Everything is printed in whole lines (markdown in whole blocks) because the
prompt stays on screen while the agent runs: partial lines would tear it. The
channel also keeps what the status line shows while a run is going (what is
running and since when); it never touches the database.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.segment import Segment, Segments
from rich.text import Text

from leharness import store
from leharness.store import jsontext
from leharness.store.events import ToolCall

from .diffs import counts_summary, read_before, write_diff
from .render import DISCARDED, call_summary, output_preview, result_summary, shown

MAX_DIFF_LINES = 60


def complete_blocks(text: str) -> int:
    """How much of `text` is whole markdown blocks: up to its last blank line outside a
    code fence, or the end of a closing fence."""
    end = pos = 0
    in_fence = False
    for line in text.splitlines(keepends=True):
        pos += len(line)
        if not line.endswith("\n"):
            break
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            if not in_fence:
                end = pos
        elif not stripped and not in_fence:
            end = pos
    return end


class RichChannel:
    """Streams answers as markdown blocks; tool calls as one-line cells; diffs for edits."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._activity: tuple[str, float] | None = None  # what runs now, since (monotonic)
        self._text = ""
        self._blocks = 0  # markdown blocks of the answer streaming now
        self._reasoning = ""
        self._calls: dict[str, ToolCall] = {}
        self._before: dict[str, str | None] = {}  # write_file call id -> old content

    @property
    def activity(self) -> tuple[str, float] | None:
        """What runs now and since when (monotonic); while answer text streams, the end
        of the block not shown yet, so a long paragraph is never a silent wait."""
        if self._activity is None:
            return None
        label, started = self._activity
        tail = " ".join(self._text.split())[-40:]
        if label == "writing" and tail:
            label = f"writing …{tail}"
        return label, started

    # -- streamed deltas ----------------------------------------------------

    def text(self, delta: str) -> None:
        self._flush_reasoning()
        if self._activity is not None and self._activity[0] == "thinking":
            self._activity = ("writing", self._activity[1])  # blocks show once they are whole
        self._text += delta
        if "\n" not in delta:  # no block can have ended: skip the rescan
            return
        end = complete_blocks(self._text)
        if end:
            self._print_markdown(self._text[:end])
            self._text = self._text[end:]

    def reasoning(self, delta: str) -> None:
        self._reasoning += delta
        whole, _, self._reasoning = self._reasoning.rpartition("\n")
        if whole:
            self.console.print(shown(whole), style="dim", markup=False)

    def retry(self, attempt: int, message: str, delay_s: float) -> None:
        self.console.print(f"! {shown(message)}; retrying in {delay_s:.1f}s", style="yellow")

    def discard(self, text: str, reasoning: str) -> None:
        """Drop what was held back of the cut attempt; say that what is shown is void."""
        self._text = self._reasoning = ""
        self.console.print(DISCARDED, style="yellow", markup=False)

    def _flush_reasoning(self) -> None:
        if self._reasoning:
            self.console.print(shown(self._reasoning), style="dim", markup=False)
            self._reasoning = ""

    def _end_stream(self) -> None:
        self._flush_reasoning()
        if self._text.strip():
            self._print_markdown(self._text)
        self._text = ""
        self._blocks = 0

    def _print_markdown(self, text: str) -> None:
        """Blocks of one answer one blank line apart, and none before or after the answer:
        rich pads some blocks (lists, tables, code) with blank lines of their own."""
        lines = self.console.render_lines(Markdown(shown(text)), pad=False)
        while lines and not "".join(seg.text for seg in lines[-1]).strip():
            lines.pop()
        while lines and not "".join(seg.text for seg in lines[0]).strip():
            lines.pop(0)
        if not lines:
            return
        if self._blocks:
            self.console.print()
        self._blocks += 1
        self.console.print(Segments([seg for line in lines for seg in (*line, Segment.line())]))

    # -- stored events ------------------------------------------------------

    def event(self, event: store.Event) -> None:
        data = event.data
        if data.type == "step.started":
            self._activity = ("thinking", time.monotonic())
        elif data.type in ("model.completed", "model.cancelled"):
            self._end_stream()
            self._activity = None
            for call in getattr(data, "tool_calls", []):
                self._calls[call.id] = call
        elif data.type == "tool.started":
            call = self._calls.get(data.call_id)
            label = call_summary(call.name, call.arguments) if call else data.name
            self._activity = (label, time.monotonic())
            self.console.print(f"⏺ {shown(label)}", style="cyan", markup=False)
            if call is not None and call.name == "write_file":
                self._snapshot(call)
        elif data.type == "tool.completed":
            self._activity = None
            diff = self._diff(data.call_id, data.name, data.result)
            summary = counts_summary(diff) if diff is not None else result_summary(data.result)
            self.console.print(f"  ⎿ {shown(summary)}", style="dim", markup=False)
            if data.name == "bash":
                for line in output_preview(data.result):
                    line = shown(line)
                    self.console.print(f"    {line}", style="dim", markup=False, highlight=False)
            if diff:
                print_diff(self.console, diff)
        elif data.type == "tool.failed":
            self._activity = None
            self._before.pop(data.call_id, None)
            first = data.error.splitlines()[0] if data.error else ""
            self.console.print(f"  ✗ {shown(first)}", style="red", markup=False)
        elif data.type == "invocation.received" and data.kind == "steering":
            self.console.print(f"» {shown(data.text)}", style="bold", markup=False)
        elif data.type == "model.failed":
            self.console.print(f"✗ {shown(data.error)}", style="red", markup=False)
        elif data.type == "compaction.completed":
            self.console.print(f"· context compacted ({data.tier})", style="dim", markup=False)
        elif data.type == "compaction.summary.failed":
            note = f"! compaction summary failed, going on without it: {shown(data.error)}"
            self.console.print(note, style="yellow", markup=False)
        elif data.type == "agent.finished":
            self._activity = None
            if data.reason == "cancelled":
                self.console.print("(cancelled)", style="yellow")

    # -- diffs --------------------------------------------------------------

    def _path(self, call: ToolCall) -> tuple[str, Path] | None:
        try:
            path = jsontext.loads(call.arguments).get("path")
        except (json.JSONDecodeError, AttributeError):
            return None
        if not isinstance(path, str):
            return None
        return path, Path.cwd() / Path(path).expanduser()  # the REPL's sessions run here

    def _snapshot(self, call: ToolCall) -> None:
        """Keep the file as it is before write_file replaces it (None: it does not exist);
        a file too large or unreadable gets no diff."""
        found = self._path(call)
        if found is None:
            return
        before = read_before(found[1])
        if before is not False:
            self._before[call.id] = before

    def _diff(self, call_id: str, name: str, result: str) -> list[str] | None:
        """The diff a write_file / edit_file call made (None for other tools, or when it
        cannot be known)."""
        call = self._calls.get(call_id)
        if name == "edit_file":  # its result already ends with the unified diff
            return result.splitlines()[1:]
        if name != "write_file" or call is None or call_id not in self._before:
            return None
        before = self._before.pop(call_id)
        found = self._path(call)
        try:
            content = jsontext.loads(call.arguments).get("content")
        except json.JSONDecodeError:
            content = None
        if found is None or not isinstance(content, str):
            return None
        return write_diff(found[0], before, content)


def print_diff(console: Console, lines: list[str]) -> None:
    """A unified diff, coloured, cut at MAX_DIFF_LINES."""
    styles = {"+": "green", "-": "red", "@": "cyan"}
    kept = lines[:MAX_DIFF_LINES]
    for line in kept:
        style = "bold" if line.startswith(("+++", "---")) else styles.get(line[:1], "")
        console.print(Text("    " + shown(line), style=style))
    if len(lines) > len(kept):
        console.print(f"    … {len(lines) - len(kept)} more diff lines", style="dim")
