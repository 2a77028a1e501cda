"""A provider that misbehaves: cut streams are no answer, malformed streams no crash.

Each fault is scripted on the real HTTP server and read by the real adapter; the
end-to-end tests run the real `lh` and check the events, the files and the exit code.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time

import pytest

from leharness.cli.render import DISCARDED
from leharness.loop.model import OpenAICompatibleModel, ProviderError, RetryPolicy, StreamSink
from leharness.testing import Call, Cut, HttpError, Raw, ScriptedServer, Text, ToolCalls

from .e2e_helpers import event_types, lh_env, query, run_lh

HI = [{"role": "user", "content": "hi"}]
WRITE = ToolCalls(Call("write_file", {"path": "half.txt", "content": "x"}))
# role, call head, 5 argument pieces, then the finish chunk and usage: 7 chunks stop
# right before the finish_reason, with the whole call received
BEFORE_FINISH = 7


def complete(server: ScriptedServer, retries: int = 1, sink: StreamSink | None = None):
    model = OpenAICompatibleModel(
        "openai", "m", server.base_url, "k", RetryPolicy(retries=retries, base_delay_s=0)
    )
    return asyncio.run(model.complete(HI, [], sink or StreamSink()))


# -- 14.1: a cut stream is not an answer ----------------------------------------------


def test_a_stream_that_ends_without_finish_reason_or_done_is_retried_not_answered():
    discarded: list[str] = []
    sink = StreamSink(on_discard=lambda text, _reasoning: discarded.append(text))
    with ScriptedServer(
        [Cut(Text("half an answer, then nothing"), 3, clean=True), Text("whole")]
    ) as s:
        reply = complete(s, sink=sink)
    assert (reply.text, reply.attempts) == ("whole", 2)
    assert discarded == ["half an answer, "]  # two 8-character pieces had arrived


def test_a_finish_reason_without_done_or_done_without_finish_reason_is_an_answer():
    finish_only = Raw.events(
        {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]},
        done=False,
    )
    done_only = Raw.events({"choices": [{"index": 0, "delta": {"content": "ok too"}}]})
    with ScriptedServer([finish_only, done_only]) as s:
        assert complete(s, retries=0).text == "ok"
        assert complete(s, retries=0).text == "ok too"


def test_token_counts_no_report_could_hold_are_recorded_as_unknown(isolated_home, tmp_path):
    """A provider's usage with counts past any integer SQLite holds, negative or not
    numbers: the answer is kept and those counts recorded as 0 (before, 10**20 was
    recorded and `lh export --format md` then stopped with a pydantic error)."""
    answer = {"choices": [{"index": 0, "delta": {"content": "fine"}, "finish_reason": "stop"}]}
    usages = [
        {"prompt_tokens": 10**20, "completion_tokens": -5},
        {"prompt_tokens": "many", "completion_tokens": 7.0},
    ]
    steps = [Raw.events(answer, {"choices": [], "usage": usage}) for usage in usages]
    with ScriptedServer(steps) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("one", env=env, cwd=tmp_path).returncode == 0
        assert run_lh("-c", "two", env=env, cwd=tmp_path).returncode == 0
    recorded = query(
        isolated_home,
        "SELECT json_extract(data, '$.text'), json_extract(data, '$.usage.prompt_tokens'), "
        "json_extract(data, '$.usage.completion_tokens') FROM events "
        "WHERE type = 'model.completed' ORDER BY seq",
    )
    assert recorded == [("fine", 0, 0), ("fine", 0, 7)]
    ((session_id,),) = query(isolated_home, "SELECT id FROM sessions")
    exported = run_lh("export", "--format", "md", session_id, env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "fine" in exported.stdout


DEEP = "[" * 100_000 + "]" * 100_000  # past json.loads's recursion limit


def _call(name: str, arguments: str, call_id: str = "c1") -> dict:
    function = {"name": name, "arguments": arguments}
    part = {"index": 0, "id": call_id, "type": "function", "function": function}
    return {
        "choices": [{"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": "tool_calls"}]
    }


def test_json_nested_past_the_recursion_limit_is_a_malformed_chunk_or_bad_arguments(
    isolated_home, tmp_path
):
    """A chunk nested 100,000 deep is a malformed stream (retried), a call whose
    arguments are is a tool call with bad arguments: json.loads raised RecursionError,
    which no `except ValueError` caught, and lh ended in a traceback."""
    steps = [Raw.events(DEEP), Raw.events(_call("bash", DEEP)), Text("done")]
    with ScriptedServer(steps) as server:
        done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    ((attempts,),) = query(
        isolated_home,
        "SELECT json_extract(data, '$.attempts') FROM events "
        "WHERE type = 'model.completed' ORDER BY seq LIMIT 1",
    )
    assert attempts == 2  # the deep chunk was retried
    ((error,),) = query(
        isolated_home, "SELECT json_extract(data, '$.error') FROM events WHERE type = 'tool.failed'"
    )
    assert error.startswith("arguments for bash are not valid JSON (nested too deeply")
    ((session_id,),) = query(isolated_home, "SELECT id FROM sessions")
    for kind in ("atif", "md", "html"):
        exported = run_lh("export", "--format", kind, session_id, env=lh_env(isolated_home, ""))
        assert exported.returncode == 0, exported.stderr


def test_a_lone_surrogate_in_a_calls_id_or_name_is_stored_escaped(isolated_home, tmp_path):
    """JSON may escape a lone surrogate (\\ud800), which no UTF-8 text holds: a call id
    or tool name with one made the lookup of the id stop lh with UnicodeEncodeError.
    They are stored escaped, as arguments and results are; the call fails as unknown."""
    chunk = json.dumps(_call("b\ud800", "{}", call_id="c\ud800"), ensure_ascii=True)
    with ScriptedServer([Raw.events(chunk), Text("done")]) as server:
        done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ((call_id, name, error),) = query(
        isolated_home,
        "SELECT json_extract(data, '$.call_id'), json_extract(data, '$.name'), "
        "json_extract(data, '$.error') FROM events WHERE type = 'tool.failed'",
    )
    assert (call_id, name) == ("c\\ud800", "b\\ud800")
    assert error.startswith("unknown tool")


def test_a_cut_tool_call_reply_never_runs_and_ends_as_model_failed(isolated_home, tmp_path):
    cut = Cut(WRITE, BEFORE_FINISH, clean=True)
    with ScriptedServer([cut, cut, cut, cut]) as server:  # 1 attempt + 3 retries
        done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "half.txt").exists()
    assert event_types(isolated_home) == [
        "session.created", "invocation.received", "step.started", "model.failed",
        "agent.finished",
    ]  # fmt: skip
    ((kind, attempts, error),) = query(
        isolated_home,
        "SELECT json_extract(data, '$.kind'), json_extract(data, '$.attempts'), "
        "json_extract(data, '$.error') FROM events WHERE type = 'model.failed'",
    )
    assert (kind, attempts) == ("stream", 4)
    assert "no finish_reason" in error


def test_text_printed_by_a_cut_attempt_is_marked_discarded_on_screen(isolated_home):
    with ScriptedServer([Cut(Text("the first try " * 4), 3, clean=True), Text("finally")]) as s:
        done = run_lh("go", env=lh_env(isolated_home, s.base_url))
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert printed[0].startswith("the first try")
    assert printed[1] == DISCARDED
    assert printed[-1] == "finally"
    assert query(
        isolated_home,
        "SELECT json_extract(data, '$.text') FROM events WHERE type = 'model.completed'",
    ) == [("finally",)]


# -- 14.2: malformed streams are provider errors ---------------------------------------

CHUNK = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
NUMBER_NAME = {"choices": [{"index": 0, "delta": {"tool_calls": [
    {"index": 0, "id": "c1", "type": "function", "function": {"name": 7, "arguments": "{}"}}
]}, "finish_reason": "tool_calls"}]}  # fmt: skip
ANSWER = {"role": "assistant", "content": "hi"}
COMPLETION = {
    "object": "chat.completion",
    "choices": [{"message": ANSWER, "finish_reason": "stop"}],
}

MALFORMED = {
    "data is not JSON": Raw.events(CHUNK, "{not json"),
    "data is null": Raw.events("null"),
    "data is a list": Raw.events("[1,2]"),
    "a tool name that is a number": Raw.events(NUMBER_NAME),
    "a delta that is a string": Raw.events({"choices": [{"index": 0, "delta": "hi"}]}),
}
NOT_A_STREAM = {
    "a JSON completion": (Raw(json.dumps(COMPLETION), "application/json"), "JSON instead"),
    "a JSON error": (
        Raw(json.dumps({"error": {"message": "quota exceeded"}}), "application/json"),
        "answered with an error: quota exceeded",
    ),
    "an HTML page": (
        Raw("<!DOCTYPE html>\n<html><body>Welcome to nginx!</body></html>\n", "text/html"),
        "an HTML page instead of an event stream",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_a_malformed_stream_is_a_provider_error_that_is_retried(case):
    with ScriptedServer([MALFORMED[case]] * 2) as s, pytest.raises(ProviderError) as failed:
        complete(s, retries=1)
    assert (failed.value.kind, failed.value.attempts) == ("malformed", 2)
    assert "malformed" in str(failed.value)


@pytest.mark.parametrize("case", list(NOT_A_STREAM), ids=list(NOT_A_STREAM))
def test_a_200_whose_body_is_no_event_stream_is_a_provider_error_not_retried(case):
    step, message = NOT_A_STREAM[case]
    with ScriptedServer([step, Text("never asked")]) as s, pytest.raises(ProviderError) as failed:
        complete(s, retries=3)
    assert (failed.value.kind, failed.value.attempts) == ("bad_response", 1)
    assert message in str(failed.value)


@pytest.mark.parametrize("case", ["data is not JSON", "a tool name that is a number"])
def test_lh_records_model_failed_for_a_malformed_stream_and_does_not_crash(case, isolated_home):
    with ScriptedServer([MALFORMED[case]] * 4) as server:
        done = run_lh("--json", "go", env=lh_env(isolated_home, server.base_url))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert event_types(isolated_home)[-2:] == ["model.failed", "agent.finished"]


def test_a_malformed_attempt_then_a_good_one_is_an_answer():
    with ScriptedServer([MALFORMED["data is null"], Text("fine")]) as s:
        reply = complete(s, retries=1)
    assert (reply.text, reply.attempts) == ("fine", 2)


# -- retry timing: what the provider asks, jitter otherwise ----------------------------


def delays_for(headers: dict[str, str]) -> list[float]:
    seen: list[float] = []
    sink = StreamSink(on_retry=lambda _attempt, _message, delay: seen.append(delay))
    with ScriptedServer([HttpError(429, headers=headers), Text("ok")]) as s:
        model = OpenAICompatibleModel(
            "openai", "m", s.base_url, "k", RetryPolicy(retries=1, base_delay_s=9)
        )
        assert asyncio.run(model.complete(HI, [], sink)).text == "ok"
    return seen


def test_retry_after_ms_is_honoured():
    assert delays_for({"retry-after-ms": "120"}) == [pytest.approx(0.12)]


def test_retry_after_as_an_http_date_is_honoured():
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    (delay,) = delays_for({"Retry-After": when})
    assert 0.5 < delay <= 2.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_retry_after_that_is_no_finite_number_is_not_taken(value):
    """float() reads "nan" and "inf": a NaN delay made asyncio.sleep wait forever, so a
    429 with `retry-after-ms: nan` hung lh. Such a header counts as none: the backoff."""
    seen: list[float] = []
    sink = StreamSink(on_retry=lambda _attempt, _message, delay: seen.append(delay))
    with ScriptedServer([HttpError(429, headers={"retry-after-ms": value}), Text("ok")]) as s:
        model = OpenAICompatibleModel(
            "openai", "m", s.base_url, "k", RetryPolicy(retries=1, base_delay_s=0.01)
        )
        reply = asyncio.run(asyncio.wait_for(model.complete(HI, [], sink), timeout=10))
    assert reply.text == "ok"
    assert len(seen) == 1 and 0 < seen[0] <= 0.01


def test_the_backoff_has_jitter_within_a_quarter():
    policy = RetryPolicy(base_delay_s=1.0)
    draws = [policy.delay(3, None) for _ in range(200)]
    assert all(3.0 <= d <= 4.0 for d in draws)
    assert len(set(draws)) > 100
    assert policy.delay(3, 0.25) == 0.25  # the provider's word is taken as is


def test_the_repl_channel_drops_what_it_held_back_and_marks_the_rest_discarded():
    import io

    from rich.console import Console

    from leharness.cli.rich_channel import RichChannel

    out = io.StringIO()
    channel = RichChannel(Console(file=out, width=80))
    channel.text("a whole first paragraph.\n\nthe held-back half of a sec")
    channel.discard("a whole first paragraph.\n\nthe held-back half of a sec", "")
    channel.text("the retry's answer")
    channel._end_stream()
    shown = out.getvalue()
    assert "a whole first paragraph." in shown
    assert "held-back" not in shown
    assert shown.index(DISCARDED) < shown.index("the retry's answer")


def test_escape_sequences_a_model_or_tool_wrote_never_reach_the_terminal_as_such():
    """ESC and C1 controls in an answer, reasoning, a call's arguments, a command's output
    or an error would drive the user's terminal (a title, the clipboard through OSC 52, a
    cleared screen): the REPL's channel shows them as ␛ and \\x9b; its own colours stay."""
    import io

    from rich.console import Console

    from leharness.cli.rich_channel import RichChannel
    from leharness.store import Event
    from leharness.store import events as ev

    evil = "\x1b]52;c;cHduZWQ=\x07 \x1b[2J \x9b31m"
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system="standard")
    channel = RichChannel(console)
    call = ev.ToolCall(id="c1", name="bash", arguments=json.dumps({"command": f"echo {evil}"}))
    payloads = [
        ev.ModelCompleted(text="", tool_calls=[call]),
        ev.ToolStarted(call_id="c1", name="bash"),
        ev.ToolCompleted(call_id="c1", name="bash", result=f"{evil}\n[exit: 0]"),
        ev.ToolFailed(call_id="c2", name="bash", error=f"failed {evil}"),
        ev.ModelFailed(error=f"provider said {evil}", kind="status", attempts=1),
    ]
    channel.reasoning(f"thinking {evil}\n")
    channel.text(f"answer {evil}\n\n")
    channel.retry(1, f"busy {evil}", 0.5)
    for n, payload in enumerate(payloads, 1):
        channel.event(Event(seq=n, id=f"e{n}", session_id="s", session_seq=n, ts="t", data=payload))
    channel._end_stream()
    printed = out.getvalue()
    assert "\x1b]" not in printed and "\x1b[2J" not in printed and "\x9b" not in printed
    text = re.sub("\x1b\\[[0-9;]*m", "", printed)  # rich's own colours, which stay
    assert text != printed
    assert text.count("␛]52;c;cHduZWQ=") >= 6 and "\\x9b31m" in text


def test_the_one_shot_answer_keeps_its_escapes_only_when_piped():
    """`lh "…"` on a terminal shows an answer's ESC as ␛ (its tool lines and notes on
    stderr always); piped to a file, the answer is exactly what the model wrote."""
    import io

    from leharness.cli.render import TerminalChannel

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    evil = "title \x1b]0;PWNED\x07 clear \x1b[2J"
    for out, expected in ((Terminal(), "title ␛]0;PWNED\x07 clear ␛[2J"), (io.StringIO(), evil)):
        err = io.StringIO()
        channel = TerminalChannel(out, err)
        channel.text(evil)
        channel.retry(1, f"busy {evil}", 0.5)
        assert out.getvalue() == expected
        assert "\x1b" not in err.getvalue() and "␛]0;PWNED" in err.getvalue()
