"""`lh export --format md|html`: readable transcripts with calls folded and subagents nested,
secrets still redacted; html is one self-contained page with the timeline."""

from __future__ import annotations

import re

import pytest

from leharness.cli.history import EXPORT_FORMATS
from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .e2e_helpers import TEST_KEY, lh_env, query, run_lh


@pytest.fixture
def exported(isolated_home, tmp_path):
    """A session whose bash call runs, then a subagent that answers; exported both ways."""
    with ScriptedServer() as server:
        env = lh_env(isolated_home, server.base_url)
        server.push(
            ToolCalls(Call("bash", {"command": "echo hello from bash"})),
            ToolCalls(Call("spawn_agent", {"prompt": "child: look around", "inline_ms": 60000})),
            Text("the child says **all clear**"),  # the subagent's answer
            Text("Final: `done` <script>alert(1)</script>"),
        )
        done = run_lh("do the thing", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        parent = query(isolated_home, "SELECT id FROM sessions WHERE parent_session_id IS NULL")
        session_id = parent[0][0]
        md = run_lh("export", session_id, "--format", "md", env=env, cwd=tmp_path)
        html_file = tmp_path / "out.html"
        html = run_lh("export", session_id[:10], "--format", "html", "-o", str(html_file), env=env)
        assert md.returncode == 0 and html.returncode == 0, md.stderr + html.stderr
    (child_id,) = query(isolated_home, "SELECT id FROM sessions WHERE parent_session_id = ?",
                        session_id)[0]  # fmt: skip
    return session_id, child_id, md.stdout, html_file.read_text(), html.stdout


def test_markdown_folds_calls_and_nests_the_subagent(exported):
    session_id, child_id, md, _, _ = exported
    assert md.startswith("# do the thing\n")
    assert f"- session `{session_id}`" in md
    assert "**User** · #2" in md and "> do the thing" in md
    assert "<details><summary>bash: command: echo hello from bash (completed)</summary>" in md
    assert "```\nhello from bash\n[exit: 0]\n```" in md
    # The child's transcript sits inside the spawn_agent call's details, a level deeper.
    spawn = md.index("<details><summary>spawn_agent")
    child = md.index(f"- session `{child_id}`")
    assert spawn < child < md.index("</details>", child)
    assert "## child: look around" in md
    assert "Final: `done`" in md
    assert TEST_KEY not in md


def test_html_is_one_self_contained_page_with_timeline(exported):
    session_id, child_id, _, html, stdout = exported
    assert stdout == ""  # -o: nothing on stdout
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert f'id="session-{child_id}"' in html and f'id="session-{session_id}"' in html
    assert "<svg" in html and "Timeline" in html
    assert "hello from bash" in html and "<strong>all clear</strong>" in html
    assert "<script>" not in html  # the model's text is escaped, and the page has no script
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
    assert "<link" not in html
    assert TEST_KEY not in html


def test_formats_are_one_table_beside_jsonl_and_atif():
    assert set(EXPORT_FORMATS) == {"jsonl", "atif", "md", "html"}


def test_html_shows_a_notification_as_text_as_the_inspector_does(db):
    """A task notification is plain text (a <pre>), as on the inspector's page, never
    rendered as Markdown; both pages share one message template."""
    from leharness import store
    from leharness.cli.export import export_html

    session_id = store.create_session(db)
    store.append(db, session_id, {"type": "invocation.received", "text": "go"})
    store.append(
        db, session_id, {"type": "task.delivered", "task_ids": ["t1"], "text": "**task t1** done"}
    )
    html = "".join(export_html(db, session_id))
    assert '<pre class="lh-pre">**task t1** done</pre>' in html
    assert "<strong>task t1</strong>" not in html
