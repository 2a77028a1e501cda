"""Finding a session to resume: the picker (`lh --resume`, `/resume`), its filter, the
recap of the earlier conversation, and session ids completing in the shell."""

from __future__ import annotations

import asyncio
import io
import subprocess
from datetime import UTC, datetime

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from leharness import projections, store
from leharness.cli.picker import Choice, build_app, choices, filter_choices
from leharness.cli.recap import show_recap
from leharness.projections import SessionRow
from leharness.testing import ScriptedServer, Text

from .e2e_helpers import LH, lh_env, run_lh
from .test_repl import Typist, make_repl, screen, session_with


def row(id: str, title: str, updated: str, parent: str | None = None) -> SessionRow:
    return SessionRow(
        id=id, title=title, created_at=updated, updated_at=updated, status="idle",
        event_count=3, steps=2, prompt_tokens=12_345, completion_tokens=67,
        parent_session_id=parent,
    )  # fmt: skip


def test_choices_are_recent_top_level_sessions_with_age_steps_tokens_and_status():
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    rows = [
        row("OLD", "fix the parser", "2026-01-01T12:00:00.000Z"),
        row("NEW", "write\nthe docs", "2026-01-02T11:55:00.000Z"),
        row("KID", "a subagent", "2026-01-02T11:59:00.000Z", parent="NEW"),
    ]
    items = choices(rows, now)
    assert [(c.id, c.title, c.age) for c in items] == [
        ("NEW", "write the docs", "5m"),
        ("OLD", "fix the parser", "1d"),
    ]
    line = items[0].line()
    assert "write the docs" in line and "12.3k / 67" in line and "idle" in line and " 2 " in line


def test_the_filter_matches_every_word_and_takes_a_content_search():
    items = [
        Choice("A1", "fix the parser", "1m", 1, "", "idle"),
        Choice("B2", "write docs", "1m", 1, "", "failed"),
    ]
    assert [c.id for c in filter_choices(items, "")] == ["A1", "B2"]
    assert [c.id for c in filter_choices(items, "PARSER fix")] == ["A1"]
    assert [c.id for c in filter_choices(items, "failed")] == ["B2"]
    assert filter_choices(items, "sqlite") == []
    found = filter_choices(items, "sqlite", search=lambda text: ["B2"])  # e.g. full-text
    assert [c.id for c in found] == ["B2"]


def test_typing_filters_and_enter_picks():
    items = [
        Choice("A1", "fix the parser", "1m", 1, "", "idle"),
        Choice("B2", "write docs", "1m", 1, "", "idle"),
    ]

    async def main(keys: str) -> str | None:
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            return await build_app(items, input=pipe, output=DummyOutput()).run_async()

    assert asyncio.run(main("\r")) == "A1"
    assert asyncio.run(main("\x1b[B\r")) == "B2"  # down arrow
    assert asyncio.run(main("docs\r")) == "B2"
    assert asyncio.run(main("\x1b")) is None  # Esc leaves


def test_slash_resume_without_an_id_opens_the_picker_and_shows_the_recap(monkeypatch):
    with ScriptedServer([Text("alpha answer"), Text("beta answer"), Text("again")]) as server:
        repl = make_repl(server, monkeypatch)
        first = repl.active.session_id

        async def script(typist: Typist) -> None:
            with create_pipe_input() as picker_keys:
                repl.picker_options = dict(input=picker_keys, output=DummyOutput())
                picker_keys.send_text("alpha\r")
                for line in ["alpha prompt", "/new", "beta prompt", "/resume", "again", "/exit"]:
                    await typist.line(line)

        session_with(repl, script)
    assert repl.active.session_id == first
    shown = screen(repl)
    recap = shown[shown.index("earlier in this session") :]
    assert recap.index("› alpha prompt") < recap.index("alpha answer")
    assert "beta" not in recap.split("──\n")[0]


def test_recap_shows_the_last_messages(db):
    sid = store.create_session(db)
    for n in range(5):
        store.append(db, sid, {"type": "invocation.received", "text": f"prompt {n}"})
        store.append(db, sid, {"type": "model.completed", "text": f"answer {n}"})
    out = io.StringIO()
    show_recap(Console(file=out, width=80), db, sid)
    lines = out.getvalue().splitlines()
    assert lines[1:-1] == ["› prompt 2", "answer 2", "› prompt 3", "answer 3", "› prompt 4",
                           "answer 4"]  # fmt: skip
    assert projections.get_session(db, sid) is not None


def test_resume_without_a_terminal_says_what_to_use(isolated_home):
    done = run_lh("--resume", env=lh_env(isolated_home, "http://127.0.0.1:9/v1"))
    assert done.returncode == 2
    assert "--resume needs a terminal" in done.stderr and "--session ID" in done.stderr


def test_session_ids_complete_in_the_shell(db, isolated_home):
    first = store.create_session(db)
    store.append(db, first, {"type": "invocation.received", "text": "the parser"})
    env = lh_env(isolated_home, "unused", _LH_COMPLETE="bash_complete", COMP_CWORD="2")
    for words in (f"lh show {first[:8]}", f"lh --session {first[:8]}"):
        done = subprocess.run(
            [LH], env=dict(env, COMP_WORDS=words), capture_output=True, text=True, timeout=30
        )
        assert f"plain,{first}" in done.stdout.splitlines(), (words, done.stdout, done.stderr)
    commands = subprocess.run(
        [LH], env=dict(env, COMP_WORDS="lh sess", COMP_CWORD="1"), capture_output=True,
        text=True, timeout=30,
    )  # fmt: skip
    assert "plain,sessions" in commands.stdout.splitlines()


def test_the_picker_filters_by_content_through_the_search_index(db):
    """Typing a word that is in a session's conversation but not in its title finds it."""
    from leharness.cli.picker import content_search

    from .util import tool_round

    first, second = store.create_session(db), store.create_session(db)
    tool_round(db, first, "fix the parser")
    tool_round(db, second, "write docs")
    store.append(db, second, {"type": "invocation.received", "text": "mention zanzibar here"})
    search = content_search(db)
    assert list(search("zanzibar")) == [second]
    assert list(search('"unclosed')) == []  # not a valid query yet: nothing, no error
    items = choices(projections.list_sessions(db, 10))
    shown = filter_choices(items, "zanzibar", search)
    assert [c.id for c in shown] == [second]


def test_slash_resumes_picker_filters_by_content_too(db):
    """/resume's picker (pick_async) searches the conversations as `lh --resume` does."""
    from leharness.cli.picker import pick, pick_async

    from .util import tool_round

    first, second = store.create_session(db), store.create_session(db)
    tool_round(db, first, "fix the parser")
    tool_round(db, second, "write docs")
    store.append(db, second, {"type": "invocation.received", "text": "mention zanzibar here"})

    async def in_loop() -> str | None:
        with create_pipe_input() as pipe:
            pipe.send_text("zanzibar\r")
            return await pick_async(db, input=pipe, output=DummyOutput())

    assert asyncio.run(in_loop()) == second
    with create_pipe_input() as pipe:
        pipe.send_text("zanzibar\r")
        assert pick(db, input=pipe, output=DummyOutput()) == second
