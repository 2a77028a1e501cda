"""`lh import` of the original TypeScript leharness's sessions (sessions/<id>/events.jsonl)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from leharness import projections, store
from leharness.cli import cli

FIXTURE = Path(__file__).parent / "fixtures" / "ts-session"


def lh_import(source: Path):
    return CliRunner().invoke(cli, ["import", str(source)])


def test_a_hand_written_original_session_imports_as_the_expected_transcript(db):
    result = lh_import(FIXTURE)
    assert result.exit_code == 0, result.output
    (session_id,) = result.stdout.split()
    assert "skipped 1 events" in result.stderr and "compaction.tool_promoted (1)" in result.stderr

    messages = projections.all_messages(db, session_id)
    assert [(m.role, m.kind) for m in messages] == [
        ("user", "prompt"),
        ("assistant", "answer"),
        ("tool", "tool_result"),
        ("assistant", "answer"),
        ("tool", "tool_result"),
        ("tool", "tool_error"),
        ("user", "notification"),
        ("assistant", "answer"),
    ]
    prompt, first, ls, second, started, failed, notice, final = messages
    assert prompt.content == "how many python files are there?"
    assert first.content == "Let me count them." and first.reasoning == "ls is enough"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in first.tool_calls] == [
        ("call_ls", "bash", {"command": "ls *.py | wc -l"})
    ]
    assert ls.tool_call_id == "call_ls" and ls.content == "3\n"
    assert [c.name for c in second.tool_calls] == ["bash", "read_file"]
    assert json.loads(started.content)["task_id"] == "task_1"
    assert failed.content == "Error: ENOENT: no such file missing.py"
    assert notice.content == "[background task task_1] completed · exit 0\n5 passed"
    assert final.content == "There are 3 Python files and the 5 tests pass."

    row = projections.get_session(db, session_id)
    assert (row.provider, row.model, row.status, row.steps) == ("openai", "gpt-4o-mini", "idle", 3)
    assert (row.prompt_tokens, row.completion_tokens, row.event_count) == (470, 50, 18)
    assert row.created_at == "2026-05-01T09:00:00.000Z"
    calls = {c.call_id: c for c in projections.tool_calls(db, session_id)}
    assert {k: c.status for k, c in calls.items()} == {
        "call_ls": "completed",
        "call_tests": "completed",
        "call_gone": "failed",
    }
    assert calls["call_tests"].task_id == "task_1"
    (task,) = projections.tasks(db, session_id)
    assert (task.kind, task.status, task.command, task.output, task.delivered) == (
        "bash",
        "completed",
        "pytest -q",
        "5 passed",
        True,
    )
    shown = CliRunner().invoke(cli, ["show", session_id]).output
    assert "› how many python files are there?" in shown
    assert "⏺ bash" in shown and "✗ Error: ENOENT" in shown


def test_the_events_file_itself_and_a_sessions_folder_with_a_subagent(db, tmp_path):
    alone = lh_import(FIXTURE / "events.jsonl")
    assert alone.exit_code == 0, alone.output
    assert len(alone.stdout.split()) == 1

    sessions = tmp_path / ".leharness" / "sessions"
    parent, child = sessions / "01PARENT", sessions / "child_01KID"
    shutil.copytree(FIXTURE, parent)
    spawn = {
        "v": 1,
        "id": "01JTS00000000000000000SPWN",
        "ts": "2026-05-01T09:00:06.000Z",
        "type": "task.started",
        "task": {
            "id": "task_kid",
            "kind": "delegated",
            "payload": {"kind": "delegated", "childSessionId": "child_01KID", "prompt": "look"},
        },
    }
    with (parent / "events.jsonl").open("a") as out:
        out.write(json.dumps(spawn) + "\n")
    child.mkdir()
    (child / "events.jsonl").write_text(
        '{"v":1,"id":"c1","ts":"2026-05-01T09:00:06.100Z","type":"invocation.received",'
        '"text":"look"}\n'
        '{"v":1,"id":"c2","ts":"2026-05-01T09:00:06.200Z","type":"agent.finished",'
        '"reason":"no_tool_calls"}\n'
    )
    both = lh_import(sessions)
    assert both.exit_code == 0, both.output
    new_parent, new_child = both.stdout.split()  # folder order: ULIDs sort before child_…
    rows = {r.id: r for r in projections.list_sessions(db)}
    assert rows[new_child].parent_session_id == new_parent
    assert rows[new_child].parent_task_id == "task_kid" and rows[new_child].title == "look"
    assert rows[new_parent].cwd == str(tmp_path)  # <cwd>/.leharness/sessions/<id>
    kid_task = [t for t in projections.tasks(db, new_parent) if t.task_id == "task_kid"]
    assert kid_task[0].kind == "agent" and kid_task[0].child_session_id == new_child


def test_a_broken_original_file_is_a_clear_error_and_writes_nothing(db, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    lines = (FIXTURE / "events.jsonl").read_text().splitlines()
    (folder / "events.jsonl").write_text("\n".join([*lines[:3], "{not json", *lines[3:]]))
    result = lh_import(folder)
    assert result.exit_code == 2 and "line 4" in result.output and "not JSON" in result.output
    (folder / "events.jsonl").write_text("\n".join([*lines[:3], '{"type": "x"}']))
    result = lh_import(folder)
    assert result.exit_code == 2 and "line 4" in result.output and "not a v1 event" in result.output
    bad_call = '{"v":1,"id":"x","ts":"t","type":"model.completed","toolCalls":[{"name":"bash"}]}'
    (folder / "events.jsonl").write_text("\n".join([*lines[:2], bad_call]))
    result = lh_import(folder)
    assert result.exit_code == 2 and "line 3" in result.output
    assert "model.completed not understood" in result.output
    odd_end = '{"v":1,"id":"x","ts":"t","type":"agent.finished","reason":"exploded"}'
    (folder / "events.jsonl").write_text("\n".join([*lines[:2], odd_end]))
    result = lh_import(folder)
    assert result.exit_code == 2 and "line 3" in result.output and "reason" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = lh_import(empty)
    assert result.exit_code == 2 and "holds no events.jsonl" in result.output
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert store.last_seq(db, "anything") == 0


def test_every_mapped_original_type_becomes_a_valid_event_of_ours(db, tmp_path):
    folder = tmp_path / "s1"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "artifacts" / "artifact_1").write_text("x" * 9000)
    events = [
        {"type": "invocation.received", "text": "go"},
        {"type": "step.started", "stepNumber": 1},
        {"type": "compaction.started", "phase": "summarizing", "pressureRatio": 0.9},
        {"type": "compaction.summary", "coveredEventIds": ["e1", "e2"], "summaryText": "s"},
        {"type": "compaction.summary.failed", "attemptedEventIds": [], "error": "x"},
        {"type": "compaction.completed", "strategy": "pressure_gradient", "pressureRatio": 0.9},
        {"type": "model.failed", "error": "rate limited"},
        {"type": "agent.finished", "reason": "model_failed"},
        {"type": "invocation.auto", "reason": "background_completion"},
        {"type": "step.started", "stepNumber": 1},
        {"type": "artifact.created", "id": "artifact_1", "byteCount": 9000, "sourceCallId": "c"},
        {"type": "skill.loaded", "name": "pdf", "path": "skills/pdf", "contentHash": "abc"},
        {"type": "task.failed", "taskId": "t", "error": "exit 1"},
        {"type": "task.cancelled", "taskId": "u", "reason": "parent"},
        {"type": "model.cancelled", "text": "partial"},
        {"type": "agent.finished", "reason": "cancelled", "maxSteps": 3},
    ]
    lines = [
        json.dumps({"v": 1, "id": f"e{n}", "ts": f"2026-05-01T10:00:{n:02}.000Z", **e})
        for n, e in enumerate(events, 1)
    ]
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = lh_import(folder)
    assert result.exit_code == 0, result.output
    (session_id,) = result.stdout.split()
    stored = list(store.read_events(db, session_id))
    assert [e.type for e in stored] == [
        "session.created",
        "invocation.received",
        "step.started",
        "compaction.started",
        "compaction.summary",
        "compaction.completed",
        "model.failed",
        "agent.finished",
        "invocation.auto",
        "step.started",
        "artifact.created",
        "skill.loaded",
        "task.failed",
        "task.delivered",
        "task.cancelled",
        "task.delivered",
        "model.cancelled",
        "agent.finished",
    ]
    summary, artifact = stored[4].data, stored[10].data
    assert (summary.from_seq, summary.to_seq) == (2, 3)  # e1, e2 -> our events 2 and 3
    assert artifact.sha256 == hashlib.sha256(b"x" * 9000).hexdigest() and artifact.bytes == 9000
    assert stored[15].data.text == "[background task u] cancelled\nreason: parent"
    assert "compaction.summary.failed (1)" in result.stderr


def test_importing_an_original_session_twice_adds_nothing_the_second_time(db):
    first = lh_import(FIXTURE)
    assert first.exit_code == 0, first.output
    count = db.execute("SELECT count(*) FROM events").fetchone()[0]
    again = lh_import(FIXTURE)
    assert again.exit_code == 0, again.output
    assert again.stdout == "" and "nothing imported" in again.stderr
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == count
    copy = CliRunner().invoke(cli, ["import", "--as-new", str(FIXTURE)])
    assert copy.exit_code == 0 and copy.stdout.split() != first.stdout.split()
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 2 * count
