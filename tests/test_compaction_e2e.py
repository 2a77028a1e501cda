"""Compaction through the real `lh` entry point: a long session over the scripted
server, `lh compact`, `--context-window` and the REPL's `/compact`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from leharness import store
from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .e2e_helpers import lh_env, query, run_lh

WINDOW = 10_000  # budget 8,500 tokens


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


def summariser_calls(server: ScriptedServer) -> list:
    return [r for r in server.requests if "tools" not in r.body]


def session_id(home: Path) -> str:
    return query(home, "SELECT id FROM sessions")[0][0]


def test_a_24_kb_output_five_turns_and_pressure_0_9_give_one_summary(server, isolated_home):
    env = lh_env(isolated_home, server.base_url, LEHARNESS_CONTEXT_WINDOW=str(WINDOW))
    command = "head -c 24576 /dev/zero | tr '\\0' x"
    server.push(ToolCalls(Call("bash", {"command": command})), Text("made it", prompt_tokens=10))
    assert run_lh("make a big output", env=env).returncode == 0
    (bash_artifact,) = query(
        isolated_home, "SELECT data FROM events WHERE type = 'artifact.created'"
    )
    bash_artifact = json.loads(bash_artifact[0])
    assert bash_artifact["bytes"] > 24_000
    for turn, tokens in ((2, 10), (3, 10), (4, round(0.9 * 8_500))):
        server.push(Text(f"answer {turn}", prompt_tokens=tokens))
        assert run_lh("-c", f"turn {turn}", env=env).returncode == 0
    assert not summariser_calls(server)
    server.push(Text("SUMMARY: a 24 KB file of x was produced"), Text("answer 5"))
    done = run_lh("-c", "turn 5", env=env)
    assert done.returncode == 0, done.stderr
    assert "· context compacted (T4)" in done.stderr and done.stdout.strip() == "answer 5"
    assert len(summariser_calls(server)) == 1
    summary = json.loads(
        query(isolated_home, "SELECT data FROM events WHERE type = 'compaction.summary'")[0][0]
    )
    (path,) = query(
        isolated_home, "SELECT path FROM artifacts WHERE artifact_id = ?", summary["artifact_id"]
    )[0]
    assert path != bash_artifact["path"] and summary["artifact_id"] != bash_artifact["artifact_id"]
    assert "make a big output" in (isolated_home / path).read_text()
    original = (isolated_home / bash_artifact["path"]).read_bytes()
    assert hashlib.sha256(original).hexdigest() == bash_artifact["sha256"]
    assert original.startswith(b"xxxx") and len(original) == bash_artifact["bytes"]
    last = server.requests[-1].messages
    assert "SUMMARY: a 24 KB file" in last[1]["content"] and path in last[1]["content"]
    assert last[-1] == {"role": "user", "content": "turn 5"}
    tiers = query(
        isolated_home, "SELECT json_extract(data, '$.tier') FROM events "
        "WHERE type = 'compaction.started' ORDER BY seq"
    )  # fmt: skip
    assert [t for (t,) in tiers] == ["T3", "T4"]  # no reasoning; the stub is under 1 KiB
    # The compacted session replays as recorded: the summariser is served its recorded
    # summary, and the window comes from the recording (the variable is not set here).
    plain = lh_env(isolated_home, server.base_url)
    replayed = run_lh("replay", session_id(isolated_home), env=plain)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "no divergence" in replayed.stdout


def test_lh_compact_summarises_now_and_says_so(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    for turn in range(3):
        server.push(Text(f"answer {turn}"))
        assert (
            run_lh("-c" if turn else "first", *(["turn"] if turn else []), env=env).returncode == 0
        )
    sid = session_id(isolated_home)
    server.push(Text("SUMMARY of the first turns"))
    done = run_lh("compact", sid[:8], env=env)
    assert done.returncode == 0, done.stderr
    assert "summarised events 2–" in done.stdout
    assert len(summariser_calls(server)) == 1
    types = [t for (t,) in query(isolated_home, "SELECT type FROM events ORDER BY seq")]
    assert types[-4:] == [
        "compaction.started",
        "artifact.created",
        "compaction.summary",
        "compaction.completed",
    ]
    server.push(Text("next"))
    assert run_lh("-c", "and now?", env=env).returncode == 0
    assert "SUMMARY of the first turns" in server.requests[-1].messages[1]["content"]


def test_lh_compact_takes_the_settings_and_starts_no_mcp_server(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    for turn in range(3):
        server.push(Text(f"answer {turn}"))
        args = ["-c", "turn"] if turn else ["first"]
        assert run_lh(*args, env=env).returncode == 0
    (isolated_home / "settings.toml").write_text('model = "model-from-settings"\n')
    (isolated_home / "mcp.json").write_text(
        json.dumps({"mcpServers": {"nowhere": {"command": "/nonexistent/mcp-server"}}})
    )
    server.push(Text("SUMMARY"))
    done = run_lh("compact", session_id(isolated_home), env=env)
    assert done.returncode == 0, done.stderr
    (call,) = summariser_calls(server)
    assert call.body["model"] == "model-from-settings"
    assert query(isolated_home, "SELECT count(*) FROM events WHERE type LIKE 'mcp.%'") == [(0,)]


def test_a_context_window_under_1000_is_refused_from_the_flag_the_variable_or_the_file(
    server, isolated_home
):
    done = run_lh("--context-window", "500", "hi", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 2 and "--context-window" in done.stderr
    env = lh_env(isolated_home, server.base_url, LEHARNESS_CONTEXT_WINDOW="500")
    done = run_lh("hi", env=env)
    assert done.returncode == 2 and "LEHARNESS_CONTEXT_WINDOW must be a whole number of 1,000" in (
        done.stderr
    )
    isolated_home.mkdir(exist_ok=True)  # nothing above got far enough to make it
    (isolated_home / "settings.toml").write_text("context_window = 500\n")
    done = run_lh("config", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 2 and "context_window must be a whole number of 1,000" in done.stderr


def test_lh_compact_on_a_short_session_does_nothing(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    server.push(Text("hi"))
    assert run_lh("hello", env=env).returncode == 0
    done = run_lh("compact", session_id(isolated_home), env=env)
    assert done.returncode == 0 and "nothing to compact" in done.stdout
    assert len(server.requests) == 1


def test_a_failing_manual_compaction_exits_1_and_changes_nothing(server, isolated_home):
    from leharness.testing import HttpError

    env = lh_env(isolated_home, server.base_url)
    for text in ("one", "two", "three"):
        server.push(Text(f"re {text}"))
        assert run_lh("-c" if text != "one" else text, *([text] if text != "one" else []),
                      env=env).returncode == 0  # fmt: skip
    server.push(HttpError(400, "no summaries"))
    done = run_lh("compact", session_id(isolated_home), env=env)
    assert done.returncode == 1 and "no summaries" in done.stdout
    assert query(isolated_home, "SELECT count(*) FROM messages WHERE visible = 0") == [(0,)]
    assert query(
        isolated_home, "SELECT count(*) FROM events WHERE type = 'compaction.summary.failed'"
    ) == [(1,)]


def test_bad_input_is_a_clear_error(server, isolated_home):
    env = lh_env(isolated_home, server.base_url)
    done = run_lh("--context-window", "12", "hi", env=env)
    assert done.returncode == 2 and "--context-window" in done.stderr
    done = run_lh("compact", "nope", env=env)
    assert done.returncode == 2 and "no database at" in done.stderr  # nothing ran yet
    store.open_store(isolated_home / "sessions.db").close()
    done = run_lh("compact", "nope", env=env)
    assert done.returncode == 2 and "no session 'nope'" in done.stderr


def test_slash_compact_in_the_interactive_session(monkeypatch):
    from leharness import projections

    from .test_repl import drive

    with ScriptedServer(
        [Text("one"), Text("two"), Text("three"), Text("SUMMARY from the repl")]
    ) as server:
        repl, screen = drive(["first", "second", "third", "/help", "/compact", "/exit"],
                             server, monkeypatch)  # fmt: skip
    assert "/compact" in screen and "summarised events 2–" in screen
    assert "· context compacted (T4)" in screen  # the REPL renders the compaction event
    visible = projections.visible_messages(repl.active.loop.conn, repl.active.session_id)
    assert visible[0].kind == "summary" and "SUMMARY from the repl" in visible[0].content


def test_slash_compact_keeps_the_prompt_and_puts_typed_lines_back(monkeypatch):
    from leharness.testing import Slow

    from .test_repl import Typist, make_repl, screen, session_with, until

    steps = [Text("one"), Text("two"), Text("three"), Slow(Text("SUMMARY"), delay_s=0.5)]
    with ScriptedServer(steps) as server:
        repl = make_repl(server, monkeypatch)

        async def script(typist: Typist) -> None:
            for text in ("first", "second", "third"):
                await typist.line(text)
            await typist.line("/compact")
            assert repl.busy  # the summary runs while the prompt stays
            await typist.now("typed meanwhile")
            assert repl.queued == ["typed meanwhile"]
            await until(lambda: not repl.busy)
            assert typist.buffer.text == "typed meanwhile"  # back at the prompt, unsent
            typist.buffer.text = ""
            await typist.line("/exit")

        session_with(repl, script)
    shown = screen(repl)
    assert "⧗ queued: typed meanwhile" in shown and "summarised events 2–" in shown
    assert "1 queued line(s) put back at the prompt" in shown
    assert len(server.requests) == 4  # the line was not sent on its own
