"""The request's conversation is converted and JSON-encoded once per message
(loop/request.py): a step converts only the messages new since the last one,
a compaction converts only the rows it changed, and the bytes sent are always
exactly `json.dumps` of the request in UTF-8, as a fresh process builds them."""

from __future__ import annotations

import json

import pytest

from leharness import projections, store
from leharness.loop import prompt, request
from leharness.loop.compaction import request_chars
from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .e2e_helpers import lh_env, query, run_lh
from .util import tool_round

TO_OPENAI = prompt.to_openai  # the converter itself, whatever a test counts


def counting(monkeypatch) -> list[int]:
    """Record the session_seq of every message converted from now on."""
    converted: list[int] = []
    original = prompt.to_openai

    def to_openai(message):  # build_messages looks the name up at each call
        converted.append(message.session_seq)
        return original(message)

    monkeypatch.setattr(prompt, "to_openai", to_openai)
    return converted


def body(messages) -> dict:
    return {
        "messages": messages,
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "bash", "parameters": {}}}],
    }


def fresh_request(path, session_id: str) -> bytes:
    """The request as built without any cache: a new connection's rows, each message
    converted on the spot, plain json.dumps."""
    conn = store.open_store(path)
    try:
        view = projections.session_view(conn, session_id)
    finally:
        conn.close()
    converted = [TO_OPENAI(m) for m in view.messages]
    system = {"role": "system", "content": "system"}
    return json.dumps(body([system, *[m for m in converted if m is not None]])).encode()


def test_a_step_converts_only_new_messages_and_sends_the_same_bytes(tmp_path, monkeypatch):
    path = tmp_path / "sessions.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    for n in range(3):
        tool_round(conn, session_id, f"question {n}")
    converted = counting(monkeypatch)
    first = prompt.build_messages(projections.session_view(conn, session_id), "system")
    assert len(converted) == 12
    assert request.encode_body(body(first)) == fresh_request(path, session_id)

    tool_round(conn, session_id, "question 3")
    converted.clear()
    second = prompt.build_messages(projections.session_view(conn, session_id), "system")
    new = [m.session_seq for m in projections.session_view(conn, session_id).messages[12:]]
    assert converted == new and len(new) == 4
    sent = request.encode_body(body(second))
    assert sent == fresh_request(path, session_id) == json.dumps(body(list(second))).encode()
    # Compaction measures the same request without encoding it again.
    assert request_chars(second, []) == len(json.dumps(list(second)))
    # A second build in the same step (compaction's, then the model call's) converts nothing.
    converted.clear()
    prompt.build_messages(projections.session_view(conn, session_id), "system")
    assert converted == []
    conn.close()


def long_result(conn, session_id: str) -> None:
    """A tool call whose result is long enough for T3 to drop."""
    store.append(conn, session_id, {"type": "invocation.received", "text": "long"})
    store.append(conn, session_id, {"type": "step.started", "step": 1})
    call = {"id": "call_long", "name": "bash", "arguments": "{}"}
    store.append(conn, session_id, {"type": "model.completed", "tool_calls": [call]})
    store.append(conn, session_id, {"type": "tool.started", "call_id": "call_long", "name": "bash"})
    result = {"call_id": "call_long", "name": "bash", "result": "x" * 100}
    store.append(conn, session_id, {"type": "tool.completed", **result})
    store.append(conn, session_id, {"type": "model.completed", "text": "done"})
    store.append(conn, session_id, {"type": "agent.finished", "reason": "no_tool_calls"})


def test_a_compaction_converts_only_the_rows_it_changed(tmp_path, monkeypatch):
    path = tmp_path / "sessions.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)
    for n in range(4):
        tool_round(conn, session_id, f"question {n}")
    long_result(conn, session_id)
    before = projections.session_view(conn, session_id).messages
    prompt.build_messages(projections.session_view(conn, session_id), "system")
    converted = counting(monkeypatch)

    # T6 hides the first round: the rows left are the same objects, nothing is converted.
    hide = {"hide_through_seq": before[3].session_seq}
    store.append(conn, session_id, {"type": "compaction.completed", "tier": "T6", "details": hide})
    after = projections.session_view(conn, session_id).messages
    assert all(a is b for a, b in zip(after, before[4:], strict=True))
    hidden = prompt.build_messages(projections.session_view(conn, session_id), "system")
    assert converted == []
    assert request.encode_body(body(hidden)) == fresh_request(path, session_id)

    # T3 drops old tool results: only the rows it changed are converted again.
    results = [m.session_seq for m in after if m.role == "tool"]
    drop = {"from_seq": after[0].session_seq, "drop_results_through_seq": results[-1]}
    store.append(conn, session_id, {"type": "compaction.completed", "tier": "T3", "details": drop})
    dropped = prompt.build_messages(projections.session_view(conn, session_id), "system")
    changed = [
        m.session_seq
        for m in projections.session_view(conn, session_id).messages
        if m.compacted_by is not None
    ]
    assert changed and converted == changed
    assert request.encode_body(body(dropped)) == fresh_request(path, session_id)
    conn.close()


def test_encode_body_is_json_dumps_whatever_the_body(tmp_path):
    messages = [{"role": "system", "content": 'é \u2028 "quoted"'}, {"role": "user", "content": ""}]
    built = request.Messages(messages, [json.dumps(m) for m in messages])
    for shape in (
        body(built),
        {"messages": built},
        {"messages": request.Messages([], []), "model": "m", "max_tokens": 5},
        {"model": "m", "messages": built},  # not messages first: plain json.dumps
    ):
        plain = {k: list(v) if k == "messages" else v for k, v in shape.items()}
        assert request.encode_body(shape) == json.dumps(plain).encode()


def test_warm_leaves_the_first_step_only_new_rows_to_read(tmp_path, monkeypatch):
    """`lh --session` reads and encodes the conversation before start-up ends (then
    the collector freezes it): its first step reads and converts only what is new."""
    conn = store.open_store(tmp_path / "sessions.db")
    session_id = store.create_session(conn)
    for n in range(2):
        tool_round(conn, session_id, f"question {n}")
    prompt.warm(conn, session_id)
    seen = projections.visible_messages(conn, session_id)[-1].session_seq
    last = store.last_seq(conn, session_id)
    store.append(conn, session_id, {"type": "invocation.received", "text": "again"})
    converted = counting(monkeypatch)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    prompt.build_messages(projections.session_view(conn, session_id), "system")
    (read,) = [s for s in statements if "FROM transcript" in s]
    assert f"session_seq > {seen}" in read
    assert converted == [last + 1]
    conn.close()


def reference_images(view, system: str) -> list:
    """The request as built before the cache (main at 2026-12-06), images included."""
    found = [
        match["id"]
        for message in view.messages
        if message.role == "tool"
        for match in prompt.IMAGE_MARKER.finditer(message.content or "")
    ]
    wanted = set(found[-prompt.MAX_IMAGES :])
    messages = [{"role": "system", "content": system}]
    pending: list = []
    for message in view.messages:
        if pending and message.role != "tool":
            messages.append(prompt._image_message(pending))
            pending = []
        converted = TO_OPENAI(message)
        if converted is not None:
            messages.append(converted)
        if message.role == "tool" and wanted:
            pending += [p for p in prompt._image_parts(message.content) if p["id"] in wanted]
    if pending:
        messages.append(prompt._image_message(pending))
    return messages


def image_reply(conn, session_id: str, tmp_path, names: list[str]) -> None:
    """One model call whose tool calls each return an image (as tools/mcp marks it)."""
    calls = [{"id": f"call_{name}", "name": "mcp", "arguments": "{}"} for name in names]
    store.append(conn, session_id, {"type": "model.completed", "tool_calls": calls})
    for name in names:
        path = tmp_path / f"{name}.png"
        path.write_bytes(name.encode())
        marker = f"[image: image/png, {len(name)} bytes, artifact {name} at {path}]"
        store.append(
            conn, session_id, {"type": "tool.started", "call_id": f"call_{name}", "name": "mcp"}
        )
        result = {"call_id": f"call_{name}", "name": "mcp", "result": f"look:\n{marker}"}
        store.append(conn, session_id, {"type": "tool.completed", **result})


def test_images_follow_their_results_as_before(tmp_path):
    conn = store.open_store(tmp_path / "sessions.db")
    session_id = store.create_session(conn)
    store.append(conn, session_id, {"type": "invocation.received", "text": "look"})
    image_reply(conn, session_id, tmp_path, ["a", "b"])  # two images after one reply
    image_reply(conn, session_id, tmp_path, ["c"])
    for step in range(3):
        image_reply(conn, session_id, tmp_path, [f"d{step}", f"e{step}"])
        view = projections.session_view(conn, session_id)
        built = prompt.build_messages(view, "system", images=True)
        assert list(built) == reference_images(view, "system")
        assert request.encode_body(body(built)) == json.dumps(body(list(built))).encode()
    store.append(conn, session_id, {"type": "model.completed", "text": "seen"})
    view = projections.session_view(conn, session_id)
    built = prompt.build_messages(view, "system", images=True)
    assert list(built) == reference_images(view, "system")
    assert built[-1] == {"role": "assistant", "content": "seen"}
    assert sum(m["role"] == "user" and isinstance(m["content"], list) for m in built) == 2
    conn.close()


def reference(path, session_id: str, system: str, images: bool) -> bytes:
    """The request built from scratch: a new connection's rows, each message converted
    on the spot (images placed as before the cache), plain json.dumps in UTF-8."""
    conn = store.open_store(path)
    try:
        view = projections.session_view(conn, session_id)
        messages = reference_images(view, system) if images else None
    finally:
        conn.close()
    if messages is None:
        converted = [TO_OPENAI(m) for m in view.messages]
        messages = [{"role": "system", "content": system}, *[m for m in converted if m]]
    return json.dumps(body(messages)).encode()


def step_request(conn, session_id: str, system: str = "system", images: bool = False):
    """Build the request as a step does: compaction measures it, the model call sends it."""
    view = projections.session_view(conn, session_id)
    measured = prompt.build_messages(view, system, images=images)
    sent = prompt.build_messages(view, system, images=images)
    assert request_chars(measured, []) == len(json.dumps(list(measured)))
    return sent


def test_the_bytes_sent_are_a_fresh_json_dumps_through_a_whole_session(tmp_path):
    """Appends, an earlier request encoded late, images, compaction hiding and
    changing rows, a changed system prompt, a new connection and a new process:
    at every point the incremental bytes are those of a from-scratch json.dumps."""
    path = tmp_path / "sessions.db"
    conn = store.open_store(path)
    session_id = store.create_session(conn)

    def check(system: str = "system", images: bool = False):
        sent = step_request(conn, session_id, system, images)
        assert request.encode_body(body(sent)) == reference(path, session_id, system, images)
        return sent

    for n in range(3):
        tool_round(conn, session_id, f'question {n}: é ☃ \u2028 "quoted" 🙂')
        check()
    earlier = check()
    tool_round(conn, session_id, "one more")
    check()
    # A request built before the last appends still encodes to its own bytes.
    assert request.encode_body(body(earlier)) == json.dumps(body(list(earlier))).encode()

    store.append(conn, session_id, {"type": "invocation.received", "text": "look"})
    image_reply(conn, session_id, tmp_path, ["a", "b"])
    check(images=True)
    check()
    image_reply(conn, session_id, tmp_path, ["c"])
    store.append(conn, session_id, {"type": "model.completed", "text": "seen"})
    check()
    check(images=True)
    long_result(conn, session_id)
    check()

    messages = projections.session_view(conn, session_id).messages
    hide = {"hide_through_seq": messages[3].session_seq}  # T6: the first round leaves
    store.append(conn, session_id, {"type": "compaction.completed", "tier": "T6", "details": hide})
    check()
    tool_round(conn, session_id, "after the hide")
    check()
    messages = projections.session_view(conn, session_id).messages
    results = [m.session_seq for m in messages if m.role == "tool"]
    drop = {"from_seq": messages[0].session_seq, "drop_results_through_seq": results[-2]}
    store.append(conn, session_id, {"type": "compaction.completed", "tier": "T3", "details": drop})
    check()
    check("another system prompt")
    tool_round(conn, session_id, "after the drop")
    check(images=True)
    conn.close()

    conn = store.open_store(path)  # a new connection in this process (its rows are new objects)
    check()
    tool_round(conn, session_id, "on a new connection")
    check()
    conn.close()

    request._KEPT.clear()  # a new process: `lh --session` warms the cache, then steps
    conn = store.open_store(path)
    prompt.warm(conn, session_id)
    tool_round(conn, session_id, "resumed")
    check()
    check(images=True)
    conn.close()


def test_a_step_builds_its_request_once_and_extends_the_kept_bytes(tmp_path):
    """The second build of a step (compaction measured it, the model call sends it) is
    the same request; the next step adds its messages to the same list and the same
    byte buffer, leaving what was there as it was; a changed system prompt replaces
    the first message in place."""
    conn = store.open_store(tmp_path / "sessions.db")
    session_id = store.create_session(conn)
    for n in range(3):
        tool_round(conn, session_id, f"question {n}")
    view = projections.session_view(conn, session_id)
    first = prompt.build_messages(view, "system")
    assert prompt.build_messages(view, "system") is first
    before, encodings = list(first), list(first.encoded)
    buffer, length = first.tail
    tool_round(conn, session_id, "question 3")
    second = prompt.build_messages(projections.session_view(conn, session_id), "system")
    assert second is first and len(second) == len(before) + 4  # extended, not rebuilt
    assert second[: len(before)] == before and second.encoded[: len(encodings)] == encodings
    assert all(a is b for a, b in zip(second, before, strict=False))
    assert second.tail[0] is buffer and second.tail[1] > length
    assert bytes(buffer[:length]) == ", ".join(encodings[1:]).encode()
    assert request.encode_body(body(second)) == json.dumps(body(list(second))).encode()
    assert request_chars(second, []) == len(json.dumps(list(second)))

    other = prompt.build_messages(projections.session_view(conn, session_id), "another system")
    assert other is first and other[0] == {"role": "system", "content": "another system"}
    assert [json.loads(e) for e in other.encoded] == list(other)
    assert request.encode_body(body(other)) == json.dumps(body(list(other))).encode()
    assert request_chars(other, []) == len(json.dumps(list(other)))
    conn.close()


def test_a_read_of_the_visible_messages_stays_as_it_was_read(tmp_path):
    """visible_messages hands out the kept list without copying it: an earlier read
    keeps its length and rows while later rows arrive, and reads like a list."""
    conn = store.open_store(tmp_path / "sessions.db")
    session_id = store.create_session(conn)
    for n in range(2):
        tool_round(conn, session_id, f"question {n}")
    first = projections.visible_messages(conn, session_id)
    rows = list(first)
    tool_round(conn, session_id, "question 2")
    grown = projections.visible_messages(conn, session_id)
    assert len(first) == len(rows) == 8 and list(first) == rows and first == rows
    assert len(grown) == 12 and grown[:8] == rows and grown != first
    assert first[-1] is rows[-1] and first[-1] is not grown[-1]
    assert first[::-1] == rows[::-1] and first[2:5] == rows[2:5] and first[5:100] == rows[5:]
    with pytest.raises(IndexError):
        first[8]
    with pytest.raises(IndexError):
        first[-9]
    assert [m.session_seq for m in grown[8:]] == [
        row[0]
        for row in conn.execute(
            "SELECT session_seq FROM transcript WHERE session_id = ? ORDER BY session_seq",
            (session_id,),
        ).fetchall()[8:]
    ]
    conn.close()


def test_lh_sends_each_request_as_json_dumps_bytes_across_a_resume(isolated_home, tmp_path):
    """Over HTTP, through a run and a resume (a new process that warms the kept
    encodings): every body is byte for byte json.dumps of itself, and the last one
    holds exactly the session's messages converted from scratch (but its answer)."""
    calls = [ToolCalls(Call("bash", {"command": f"echo 'é ☃ {n}'"})) for n in range(3)]
    with ScriptedServer([*calls, Text("done ☃"), *calls, Text("again")]) as server:
        env = lh_env(isolated_home, server.base_url)
        assert run_lh("echo three times, ☃", env=env, cwd=tmp_path).returncode == 0
        done = run_lh("-c", "and again 🙂", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert len(server.requests) == 8
    for recorded in server.requests:
        assert recorded.raw == json.dumps(json.loads(recorded.raw)).encode()
    last = server.requests[-1].body
    (session_id,) = query(isolated_home, "SELECT id FROM sessions")[0]
    system = last["messages"][0]["content"]
    fresh = json.loads(reference(isolated_home / "sessions.db", session_id, system, False))
    assert last["messages"] == fresh["messages"][:-1]  # all but the answer it got
    assert fresh["messages"][-1] == {"role": "assistant", "content": "again"}


def test_a_step_tells_new_messages_by_the_visible_lists_generation(tmp_path, monkeypatch):
    """A visible list grown since the last step keeps its generation (only the new rows
    are matched and converted); a compaction reads a new list (a new generation: every
    row is matched again, so a changed row in the middle is converted again); a plain
    list is matched row by row."""
    conn = store.open_store(tmp_path / "sessions.db")
    session_id = store.create_session(conn)
    for n in range(3):
        tool_round(conn, session_id, f"question {n}")
    long_result(conn, session_id)
    first = projections.visible_messages(conn, session_id)
    prompt.build_messages(projections.session_view(conn, session_id), "system")
    tool_round(conn, session_id, "question 3")
    grown = projections.visible_messages(conn, session_id)
    assert grown.generation == first.generation and grown[: len(first)] == first
    converted = counting(monkeypatch)
    prompt.build_messages(projections.session_view(conn, session_id), "system")
    assert converted == [m.session_seq for m in grown[len(first) :]]

    messages = projections.session_view(conn, session_id).messages
    results = [m.session_seq for m in messages if m.role == "tool"]
    drop = {"from_seq": messages[0].session_seq, "drop_results_through_seq": results[-2]}
    store.append(conn, session_id, {"type": "compaction.completed", "tier": "T3", "details": drop})
    converted.clear()
    view = projections.session_view(conn, session_id)
    assert view.messages.generation != first.generation
    assert view.messages[-1] is grown[-1]  # the last row is unchanged: the same object
    built = prompt.build_messages(view, "system")
    changed = [m.session_seq for m in view.messages if m.compacted_by is not None]
    assert changed and converted == changed
    assert request.encode_body(body(built)) == json.dumps(body(list(built))).encode()

    # A plain list (no generation) with one row replaced by an equal copy: matched row
    # by row, that row is converted again.
    plain = list(view.messages)
    plain[1] = plain[1].model_copy()
    converted.clear()
    kept = request.conversation(session_id, plain, prompt.to_openai, prompt._image_ids)
    assert converted == [plain[1].session_seq] and kept.sources[1] is plain[1]
    conn.close()
