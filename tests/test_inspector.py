"""The Datasette inspector in process: the plugin's session page, the views,
readable cells and the metadata, through Datasette's own test client."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from contextlib import closing

import pytest

from leharness import store
from leharness.inspector import chart, metadata
from leharness.inspector.app import make_datasette
from leharness.loop import runner
from leharness.loop.model import Reply
from leharness.store.events import Usage
from leharness.tools import default_registry

from .loop_helpers import make_session
from .test_subagents import RoutingModel, answer, tool

VIEWS = ("transcript", "session_timeline", "tool_failures", "task_durations", "token_usage")


@pytest.fixture
def scripted(isolated_home):
    """A finished session with tool calls (one failing), a background task and a
    subagent; returns (parent id, child id)."""
    usage = Usage(prompt_tokens=100, completion_tokens=7)
    model = RoutingModel(
        {
            "parent task: **find** <b>files</b>": [
                tool("bash", "t1", command="echo hi"),
                tool("read_file", "t2", path="missing.txt"),
                tool("bash", "t3", command="sleep 0.2; echo later", inline_ms=0),
                tool("spawn_agent", "t4", prompt="child: summarise", type="explore"),
                Reply("waiting", "", [], usage),
                Reply("All **done**: <script>alert(1)</script>", "", [], usage),
            ],
            "child: summarise": [answer("summary from the child")],
        }
    )
    session = make_session(model, tools=default_registry())
    prompt = "parent task: **find** <b>files</b>"
    asyncio.run(runner.run_until_settled(session, prompt, 30.0, True))
    (child,) = session.conn.execute(
        "SELECT id FROM sessions WHERE parent_session_id = ?", (session.session_id,)
    ).fetchone()
    session.conn.close()
    return session.session_id, child


def get(path: str, status: int = 200):
    """GET `path` from a fresh in-process Datasette over the test's sessions.db."""
    datasette = make_datasette(store.db_path())

    async def fetch():
        await datasette.invoke_startup()
        return await datasette.client.get(path)

    response = asyncio.run(fetch())
    assert response.status_code == status, (path, response.text[:500])
    return response


def bars(html: str) -> list[str]:
    return re.findall(r'data-kind="(\w+)"', html)


def test_session_page_folds_tool_calls_and_draws_every_kind_of_bar(scripted):
    parent, child = scripted
    html = get(f"/sessions/-/session/{parent}").text
    assert "parent task: <strong>find</strong> &lt;b&gt;files&lt;/b&gt;" in html
    assert "All <strong>done</strong>: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    # Each call is one <details> holding its arguments and its result; no tool
    # result stands on its own.
    first = html[html.index('id="call-t1"') :]
    first = first[: first.index("</details>")]
    assert "echo hi" in first and "hi\n[exit: 0]" in first and "completed" in first
    assert 'class="lh-call lh-status-failed" id="call-t2"' in html
    assert 'class="lh-msg lh-tool' not in html
    kinds = bars(html)
    assert kinds.count("step") == 6 and kinds.count("model") == 6
    assert kinds.count("tool") == 4 and kinds.count("task") == 1 and kinds.count("subagent") == 1
    tasks = re.findall(r'<tr id="task-[^"]+">(.*?)</tr>', html, re.S)
    assert len(tasks) == 2 and any("sleep 0.2; echo later" in row for row in tasks)
    # The subagent's bar and its task row link to the child's own page.
    assert html.count(f'href="/sessions/-/session/{child}"') >= 3


def test_child_page_links_back_to_its_parent(scripted):
    parent, child = scripted
    html = get(f"/sessions/-/session/{child}").text
    assert "summary from the child" in html
    parent_line = re.search(r'<li class="lh-parent">.*?</li>', html, re.S).group(0)
    assert f'href="/sessions/-/session/{parent}"' in parent_line and "explore" in parent_line
    assert "echo hi" not in html  # the parent's history is not the child's


def test_a_fork_page_shows_only_its_own_history(scripted):
    parent, _ = scripted
    with closing(store.open_store()) as conn:
        (cut,) = conn.execute(
            "SELECT session_seq FROM events WHERE session_id = ? AND type = 'tool.completed' "
            "ORDER BY session_seq LIMIT 1",
            (parent,),
        ).fetchone()
        fork = store.fork(conn, parent, cut)
        store.append(conn, fork, {"type": "invocation.received", "text": "only in the fork"})
    html = get(f"/sessions/-/session/{fork}").text
    assert "echo hi" in html and "only in the fork" in html
    assert "missing.txt" not in html and "All <strong>done</strong>" not in html
    assert bars(html).count("tool") == 1 and "subagent" not in bars(html)
    source_line = re.search(r'<li class="lh-source">.*?</li>', html, re.S).group(0)
    assert f'href="/sessions/-/session/{parent}"' in source_line
    parent_html = get(f"/sessions/-/session/{parent}").text
    assert f'href="/sessions/-/session/{fork}"' in parent_html
    assert "only in the fork" not in parent_html


def test_a_session_prefix_works_and_an_unknown_session_is_a_404(scripted):
    parent, _ = scripted
    assert "echo hi" in get(f"/sessions/-/session/{parent[:20]}").text
    assert "no session" in get("/sessions/-/session/NOPE", status=404).text


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_with_its_description(scripted, view):
    parent, _ = scripted
    html = get(f"/sessions/{view}?session_id={parent}").text
    assert metadata.TABLES[view]["description"] in html
    rows = get(f"/sessions/{view}.json?session_id={parent}&_shape=array").json()
    assert rows and all(row["session_id"] == parent for row in rows)


def test_views_over_http_return_the_scripted_rows(scripted):
    parent, child = scripted
    failures = get(f"/sessions/tool_failures.json?session_id={parent}&_shape=array").json()
    assert [(r["name"], r["error_kind"]) for r in failures] == [("read_file", "not_found")]
    tasks = get(f"/sessions/task_durations.json?session_id={parent}&_shape=array").json()
    assert sorted((r["kind"], r["child_session_id"]) for r in tasks) == [
        ("agent", child),
        ("bash", None),
    ]
    usage = get(f"/sessions/token_usage.json?session_id={parent}&_shape=array").json()
    assert [(r["model"], r["model_calls"], r["total_tokens"]) for r in usage] == [
        ("routing", 6, 214)
    ]


def test_cells_render_markdown_json_and_session_links(scripted):
    parent, _ = scripted
    messages = get(f"/sessions/messages?session_id={parent}").text
    assert '<div class="lh-md"><p>All <strong>done</strong>' in messages
    assert f'<a href="/sessions/-/session/{parent}">{parent}</a>' in messages
    events = get(f"/sessions/events?session_id={parent}&type=model.completed").text
    pretty = re.search(r'<pre class="lh-json"[^>]*>(.*?)</pre>', events, re.S).group(1)
    assert pretty.startswith("{\n  &#34;text&#34;: &#34;All **done**: &lt;script&gt;")
    sessions = get("/sessions/sessions").text
    assert f'<a href="/sessions/-/session/{parent}">parent task: **find**' in sessions


def test_facets_and_sorts_come_from_the_metadata(scripted):
    page = get("/sessions/tool_calls.json?_facet_size=5").json()
    assert set(page["facet_results"]) == {"name", "status"}
    names = {f["value"] for f in page["facet_results"]["name"]["results"]}
    assert names == {"bash", "read_file", "spawn_agent"}
    events = get("/sessions/events.json?_shape=objects").json()
    seqs = [row["seq"] for row in events["rows"]]
    assert seqs == sorted(seqs, reverse=True)


def test_every_table_view_and_column_is_described(isolated_home):
    with closing(store.open_store()) as conn:
        columns = metadata.table_columns(conn)
    built = metadata.build("sessions", columns)["databases"]["sessions"]["tables"]
    for table, names in columns.items():
        entry = built[table]
        assert entry["title"] != table and entry.get("description"), table
        missing = [name for name in names if not entry["columns"].get(name)]
        assert not missing, f"{table}: no description for {missing} in inspector/metadata.py"


def test_overlapping_bars_stack_in_sub_rows_of_their_lane():
    def row(kind, start, end):
        return {
            "kind": kind,
            "label": kind,
            "status": "completed",
            "duration_ms": 1,
            "ref": "r",
            "started_at": f"2026-01-01T00:00:0{start}.000Z",
            "finished_at": f"2026-01-01T00:00:0{end}.000Z",
        }

    rows = [row("task", 0, 5), row("task", 1, 2), row("task", 3, 4), row("tool", 0, 1)]
    svg = str(chart.draw(rows, "2026-01-01T00:00:05.000Z", lambda r: None))
    ys = {y for y in re.findall(r'data-kind="task"[^>]*y="(\d+)"', svg)}
    assert len(ys) == 2  # the long task on one row, the two short ones share another
    assert chart.nice_step(130) == 200 and chart.format_ms(1500) == "1.5 s"
    assert chart.draw([], "2026-01-01T00:00:05.000Z", lambda r: None) == ""


def test_metadata_json_is_what_datasette_serves(isolated_home):
    store.open_store().close()
    served = get("/-/metadata.json").json()
    assert served["title"] == "leharness"
    tables = served["databases"]["sessions"]["tables"]
    assert tables["events"]["facets"] == ["type"]
    assert json.dumps(tables)  # plain JSON, nothing Python-only


def test_compacted_messages_stay_on_the_page_marked_as_not_sent(isolated_home):
    with closing(store.open_store()) as conn:
        session_id = store.create_session(conn)
        store.append(conn, session_id, {"type": "invocation.received", "text": "old question"})
        store.append(conn, session_id, {"type": "step.started", "step": 1, "model": "m"})
        store.append(conn, session_id, {"type": "model.completed", "text": "old answer"})
        store.append(conn, session_id, {"type": "agent.finished", "reason": "no_tool_calls"})
        store.append(
            conn,
            session_id,
            {"type": "compaction.completed", "tier": "drop", "details": {"hide_through_seq": 4}},
        )
        store.append(conn, session_id, {"type": "invocation.received", "text": "new question"})
    html = get(f"/sessions/-/session/{session_id}").text
    hidden = re.findall(r'<article class="lh-msg [^"]*lh-hidden"', html)
    assert len(hidden) == 2
    assert html.count("compacted away: not sent to the model") == 2
    assert "new question" in html
    # The step still shows on the timeline, ended by agent.finished.
    assert bars(html).count("step") == 1 and bars(html).count("model") == 1


def test_plain_datasette_without_our_metadata_serves_the_views(scripted):
    from datasette.app import Datasette

    parent, _ = scripted
    datasette = Datasette([str(store.db_path())])  # as `datasette sessions.db` opens it

    async def fetch(path):
        return await datasette.client.get(path)

    for view in VIEWS:
        response = asyncio.run(fetch(f"/sessions/{view}.json?_shape=array"))
        assert response.status_code == 200
        assert any(row["session_id"] == parent for row in response.json()), view


def test_the_sessions_table_shows_what_people_scan_first_and_folds_descriptions(scripted):
    html = get("/sessions/sessions").text
    headers = re.findall(r'<th [^>]*data-column="(\w+)"', html)
    assert headers[:7] == [
        "title", "status", "model", "steps", "prompt_tokens", "completion_tokens", "updated_at",
    ]  # fmt: skip
    with closing(store.open_store()) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(sessions)")]
    assert sorted(headers) == sorted(columns)  # every column still shown, once
    assert 'title="' in html  # descriptions are the headers' tooltips
    assert "column descriptions" in html  # and the block above the rows folds (script)
    other = get("/sessions/tool_calls").text
    assert "column descriptions" in other  # every leharness table page


def test_the_session_page_shows_mcp_events_and_notifications_preformatted(scripted):
    parent, _ = scripted
    with closing(store.open_store()) as conn:
        store.append(conn, parent, {"type": "mcp.connected", "server": "web",
                                    "transport": "http", "tools": ["web__get"]})  # fmt: skip
        store.append(conn, parent, {"type": "mcp.failed", "server": "db", "error": "exited",
                                    "stderr_tail": "missing TOKEN"})  # fmt: skip
    html = get(f"/sessions/-/session/{parent}").text
    mcp = html[html.index("<h2>MCP servers</h2>") : html.index("<h2>Transcript</h2>")]
    assert "<strong>web</strong> connected (http): web__get" in mcp
    assert "<strong>db</strong> failed (start): exited" in mcp and "missing TOKEN" in mcp
    start = re.search(r'<article class="lh-msg [^"]*lh-kind-notification', html).start()
    notification = html[start:]
    body = notification[notification.index("</div>") : notification.index("</article>")]
    assert '<pre class="lh-pre">' in body and "lh-md" not in body  # not markdown


def test_merged_trials_have_facets_and_the_session_page_links_its_trial(tmp_path, isolated_home):
    from click.testing import CliRunner

    from leharness.cli import cli

    from .test_merge import make_trial

    job = tmp_path / "jobs" / "job-1"
    session_id = make_trial(job, "make-file__abc", reward=1.0)
    make_trial(job, "make-file__oracle", reward=0.0, with_db=False)
    assert CliRunner().invoke(cli, ["merge", str(job)]).exit_code == 0
    page = get("/sessions/trials.json?_facet_size=5").json()
    assert {"job", "task", "agent", "reward"} <= set(page["facet_results"])
    rewards = {f["value"] for f in page["facet_results"]["reward"]["results"]}
    assert rewards == {0.0, 1.0}
    runs = get("/sessions/trial_runs.json?_shape=array").json()
    assert [(r["session_id"], r["trial"], r["reward"]) for r in runs] == [
        (session_id, "make-file__abc", 1.0)
    ]
    html = get(f"/sessions/-/session/{session_id}").text
    assert '<a href="/sessions/trials/id-make-file__abc">make-file__abc</a>' in html
    assert get("/sessions/trials/id-make-file__abc").status_code == 200


def test_the_plugin_imports_alone_without_click_or_the_cli():
    """`leharness.inspector` is the Datasette entry point: importing it (and the app that
    builds the Datasette) loads no click and no leharness.cli module."""
    probe = (
        "import json, sys\n"
        "import leharness.inspector, leharness.inspector.app\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'click'"
        " or m.startswith('leharness.cli')]\n"
        "print(json.dumps(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_datasette_entry_point_names_the_plugin_package():
    import importlib.metadata

    (entry,) = [
        e for e in importlib.metadata.entry_points(group="datasette") if e.name == "leharness"
    ]
    assert entry.value == "leharness.inspector"
    import leharness.inspector

    assert entry.load() is leharness.inspector
