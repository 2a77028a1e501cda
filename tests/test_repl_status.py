"""The pieces the interactive session renders with, checked without a terminal:
the status line and the markdown block splitter."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from leharness.cli.rich_channel import RichChannel, complete_blocks, write_diff
from leharness.cli.status import status_line
from leharness.projections import SessionRow, TaskRow

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def session(last_prompt_tokens: int | None) -> SessionRow:
    return SessionRow(
        id="s",
        created_at="2026-01-01T12:00:00.000Z",
        updated_at="2026-01-01T12:00:00.000Z",
        status="running",
        event_count=5,
        steps=1,
        prompt_tokens=0,
        completion_tokens=0,
        last_prompt_tokens=last_prompt_tokens,
    )


def task(command: str) -> TaskRow:
    return TaskRow(
        session_id="s",
        task_id="task_1",
        kind="bash",
        status="running",
        command=command,
        started_at="2026-01-01T12:00:00.000Z",
        delivered=False,
    )


def test_status_line_while_a_tool_runs_with_a_background_task_and_a_queued_line():
    line = status_line(
        "gpt-4o-mini",
        session(8_000),
        [task("npm   test"), task("sleep 5")],
        ("bash: make", 100.0),
        2,
        now_monotonic=104.2,
        now=NOW,
    )
    parts = line.split(" │ ")
    assert parts[0].endswith("bash: make · 4.2s")  # spinner frame, what runs, elapsed
    assert parts[1:] == [
        "gpt-4o-mini",
        "8,000 / 128,000 tokens (6%)",  # the window compaction knows for gpt-4o
        "2 tasks running (npm test · 30.0s)",
        "2 queued",
    ]


def test_status_line_when_idle():
    line = status_line("m", session(None), [], None, 0, now_monotonic=0.0, now=NOW)
    assert line == "m │ 0 / 32,000 tokens (0%) │ no tasks running"  # an unknown model
    line = status_line("m", session(4_000), [], None, 0, 0.0, NOW, window_override=10_000)
    assert "4,000 / 10,000 tokens (40%)" in line  # --context-window wins


def test_markdown_is_rendered_in_whole_blocks_never_inside_a_code_fence():
    assert complete_blocks("a paragraph still strea") == 0
    assert complete_blocks("one\n\ntwo") == len("one\n\n")
    fenced = "```\ncode\n\nmore code\n"
    assert complete_blocks(fenced) == 0  # the blank line is inside the fence
    assert complete_blocks(fenced + "```\nafter") == len(fenced + "```\n")


def test_write_diff_of_a_new_and_of_a_replaced_file():
    assert write_diff("a.txt", None, "x\n")[:3] == ["--- /dev/null", "+++ b/a.txt", "@@ -0,0 +1 @@"]
    assert write_diff("a.txt", "x\ny\n", "x\nz\n")[-2:] == ["-y", "+z"]


def test_the_unfinished_block_shows_in_the_status_line_until_it_is_printed():
    from leharness.store import Event
    from leharness.store.events import StepStarted

    console = Console(file=io.StringIO(), width=80)
    channel = RichChannel(console)
    ts = "2026-01-01T12:00:00.000Z"
    channel.event(
        Event(seq=1, id="e", session_id="s", session_seq=2, ts=ts, data=StepStarted(step=1))
    )
    assert channel.activity[0] == "thinking"
    channel.text("A first paragraph.\n\nA second one, still")
    assert "A first paragraph." in console.file.getvalue()
    assert channel.activity[0] == "writing …A second one, still"
    assert "second" not in console.file.getvalue()
