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


def rendered(console_events) -> str:
    """What a RichChannel prints for (text deltas | events)."""
    out = io.StringIO()
    channel = RichChannel(Console(file=out, width=60, color_system=None))
    for item in console_events:
        if isinstance(item, str):
            channel.text(item)
        else:
            channel.event(fake_event(item))
    return out.getvalue()


def fake_event(payload):
    from types import SimpleNamespace

    return SimpleNamespace(type=payload.type, data=payload)


def test_markdown_blocks_are_one_blank_line_apart_and_none_trail_the_answer():
    from leharness.store import events as ev

    shown = rendered(
        [
            "Intro:\n\n- a\n- b\n\n",
            "```\ncode\n```\n\nAfter.",
            ev.ModelCompleted(text="", tool_calls=[ev.ToolCall(id="c", name="x", arguments="{}")]),
            ev.ToolStarted(call_id="c", name="x"),
        ]
    )
    lines = [line.rstrip() for line in shown.splitlines()]
    assert lines[0] == "Intro:"  # nothing before the answer
    assert "\n\n\n" not in "\n".join(lines)  # never two blank lines in a row
    assert lines[-2] == "After." and lines[-1] == "⏺ x"  # no blank line after the answer
    assert lines.count("") == 3  # between intro, list, code and "After."


def test_bash_results_show_their_first_and_last_lines():
    from leharness.store import events as ev

    output = "\n".join(f"line {i}" for i in range(1, 21)) + "\n[exit: 0]"
    call = ev.ToolCall(id="c", name="bash", arguments='{"command": "seq"}')
    shown = rendered(
        [
            ev.ModelCompleted(tool_calls=[call]),
            ev.ToolStarted(call_id="c", name="bash"),
            ev.ToolCompleted(call_id="c", name="bash", result=output),
        ]
    )
    lines = [line.strip() for line in shown.splitlines()]
    assert lines[1] == "⎿ 20 lines · exit: 0"  # the [exit] line is not counted
    assert lines[2:] == [
        "line 1",
        "line 2",
        "line 3",
        "… 14 more lines",
        *(f"line {i}" for i in (18, 19, 20)),
    ]


def test_the_summary_of_an_edit_counts_what_its_diff_shows(tmp_path, monkeypatch):
    import asyncio

    from leharness.store import events as ev
    from leharness.tools.base import ToolContext
    from leharness.tools.files import EditFileArgs, edit_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.txt").write_text("a\nb\nc\n")
    args = EditFileArgs(path="f.txt", old_string="b\n", new_string="B1\nB2\nB3\n")
    result = asyncio.run(edit_file(args, ToolContext(cwd=tmp_path, session_id="s")))
    call = ev.ToolCall(id="c", name="edit_file", arguments=args.model_dump_json())
    shown = rendered(
        [
            ev.ModelCompleted(tool_calls=[call]),
            ev.ToolStarted(call_id="c", name="edit_file"),
            ev.ToolCompleted(call_id="c", name="edit_file", result=result),
        ]
    )
    diff = [line.strip() for line in shown.splitlines()[2:]]
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    removed = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    assert (len(added), len(removed)) == (3, 1)
    assert shown.splitlines()[1].strip() == "⎿ +3 -1 lines"
