"""Skills and project instructions: the real `lh` against the scripted server."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from leharness import store
from leharness.loop import runner
from leharness.replay.model import RecordedModel
from leharness.store.events import ModelCompleted
from leharness.testing import Call, ScriptedServer, Text, ToolCalls
from leharness.tools import default_registry, skills
from leharness.tools.project import project_instructions

from .e2e_helpers import event_types, lh_env, query, run_lh
from .loop_helpers import TEST_TOOLS, make_session


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


def write_skill(root: Path, folder: str, description: str, body: str, name: str = "") -> Path:
    path = root / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = f"name: {name}\n" if name else ""
    path.write_text(f"---\n{meta}description: {description}\n---\n\n{body}\n")
    return path


def system_of(request) -> str:
    first = request.messages[0]
    assert first["role"] == "system"
    return first["content"]


def loaded_events(home: Path) -> list[dict]:
    rows = query(home, "SELECT data FROM events WHERE type = 'skill.loaded' ORDER BY seq")
    return [json.loads(data) for (data,) in rows]


def test_catalog_in_the_prompt_and_load_skill_returns_the_body(server, isolated_home, tmp_path):
    path = write_skill(
        isolated_home / "skills",
        "release",
        "Cut a release: bump, tag, changelog",
        "1. Bump the version.\n2. Tag it.",
        name="release-notes",
    )
    write_skill(tmp_path / ".agents" / "skills", "lint", "Run the linters", "ruff check .")
    server.push(ToolCalls(Call("load_skill", {"name": "release-notes"})), Text("Released."))
    done = run_lh("make a release", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    system = system_of(server.requests[0])
    assert "# Skills" in system
    assert "- lint: Run the linters" in system
    assert "- release-notes: Cut a release: bump, tag, changelog" in system
    assert system.index("- lint") < system.index("- release-notes")  # by name
    tool_message = server.requests[1].messages[-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].endswith("1. Bump the version.\n2. Tag it.")
    assert str(path) in tool_message["content"]
    assert event_types(isolated_home) == [
        "session.created",
        "invocation.received",
        "step.started",
        "model.completed",
        "tool.started",
        "skill.loaded",
        "tool.completed",
        "step.started",
        "model.completed",
        "agent.finished",
    ]
    assert loaded_events(isolated_home) == [
        {
            "name": "release-notes",
            "path": str(path),
            "content_hash": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    ]


def test_a_long_skill_body_reaches_the_model_whole(server, isolated_home, tmp_path):
    body = "\n".join(f"{n}. a step of the procedure, explained at some length" for n in range(400))
    write_skill(isolated_home / "skills", "long", "A long procedure", body)
    server.push(ToolCalls(Call("load_skill", {"name": "long"})), Text("ok"))
    done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(body) > 16_000
    assert server.requests[1].messages[-1]["content"].endswith(body)
    assert "artifact.created" not in event_types(isolated_home)


def test_first_root_wins_and_shadowed_copies_are_listed(server, isolated_home, tmp_path):
    home_copy = write_skill(isolated_home / "skills", "deploy", "Deploy (home)", "home body")
    agents_copy = write_skill(tmp_path / ".agents" / "skills", "deploy", "Deploy (agents)", "a")
    claude_root = tmp_path / ".claude" / "skills"
    claude_copy = write_skill(claude_root, "ship", "Deploy (claude)", "c", name="deploy")
    found = skills.discover(isolated_home, tmp_path)
    assert [s.name for s in found.skills] == ["deploy"]
    assert found.skills[0].shadowed == (agents_copy, claude_copy)
    server.push(ToolCalls(Call("load_skill", {"name": "deploy"})), Text("ok"))
    done = run_lh("deploy it", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    system = system_of(server.requests[0])
    assert "- deploy: Deploy (home)" in system and "Deploy (agents)" not in system
    result = server.requests[1].messages[-1]["content"]
    assert result.endswith("home body")
    assert f"Shadowed copies, not used: {agents_copy}, {claude_copy}" in result
    assert loaded_events(isolated_home)[0]["path"] == str(home_copy)


def test_an_edited_skill_shows_at_the_next_step(server, isolated_home, tmp_path):
    root = tmp_path / ".claude" / "skills"
    path = write_skill(root, "notes", "Old description", "old body")
    new_text = "---\ndescription: New description, longer\n---\nnew body\n"
    server.push(
        ToolCalls(Call("write_file", {"path": str(path), "content": new_text})),
        ToolCalls(Call("load_skill", {"name": "notes"})),
        Text("done"),
    )
    done = run_lh("edit the skill", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, second, _third = (system_of(r) for r in server.requests)
    assert "- notes: Old description" in first
    assert "- notes: New description, longer" in second and "Old description" not in second
    assert server.requests[2].messages[-1]["content"].endswith("new body")
    assert (
        loaded_events(isolated_home)[0]["content_hash"]
        == hashlib.sha256(new_text.encode()).hexdigest()
    )


def test_unknown_skill_fails_with_the_names_and_bad_files_are_skipped(
    server, isolated_home, tmp_path
):
    root = tmp_path / ".agents" / "skills"
    write_skill(root, "good", "A good skill", "body")
    (root / "broken").mkdir()
    (root / "broken" / "SKILL.md").write_text("---\ndescription: [unclosed\n---\nbody\n")
    (root / "plain").mkdir()
    (root / "plain" / "SKILL.md").write_text("no front matter here\n")
    (root / "empty-folder").mkdir()
    server.push(ToolCalls(Call("load_skill", {"name": "nope"})), Text("ok"))
    done = run_lh("go", env=lh_env(isolated_home, server.base_url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "- good: A good skill" in system_of(server.requests[0])
    result = server.requests[1].messages[-1]["content"]
    assert "no skill named 'nope'; skills: good" in result
    assert "skill.loaded" not in event_types(isolated_home)
    problems = skills.discover(isolated_home, tmp_path).problems
    assert [(p.path.parent.name, p.error.split(":")[0]) for p in problems] == [
        ("broken", "invalid YAML front matter"),
        ("plain", "no YAML front matter"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\ndescription: Use when: it fails\n---\nB", ("folder", "Use when: it fails")),
        ("\ufeff---\nname: x\ndescription: 'quoted: fine'\n---\nB", ("x", "quoted: fine")),
        ("---\ndescription: >\n  folded\n  text\n---\nB", ("folder", "folded text")),
        ("---\nname: two words\ndescription: d\n---\nB", "invalid name 'two words'"),
        ("---\ndescription: d\nB", "the front matter has no closing --- line"),
        ("---\n- a list\n---\nB", "the front matter is not a mapping"),
        # PyYAML raised RecursionError here, which stopped `lh skills` and every run
        # started in the folder with a traceback
        ("---\ndescription: " + "[" * 100_000 + "\n---\nB", "invalid YAML front matter: nested"),
        # a lone surrogate (YAML's "\\ud800") would stop the output and the events
        ('---\nname: x\ndescription: "\\ud800 lone"\n---\nB', ("x", "\\ud800 lone")),
    ],
)
def test_front_matter_parsing(text, expected):
    parsed = skills.parse_skill(Path("/s/folder/SKILL.md"), text.encode())
    if isinstance(expected, str):
        assert isinstance(parsed, skills.SkillProblem) and parsed.error.startswith(expected)
    else:
        assert (parsed.name, parsed.description, parsed.body) == (*expected, "B")


def test_the_catalog_is_bounded_with_a_count_of_the_rest(tmp_path):
    root = tmp_path / "skills"
    for number in range(100):
        write_skill(root, f"skill-{number:03}", f"Does task number {number} " + "x" * 80, "b")
    found = skills.discover(tmp_path, tmp_path / "elsewhere")
    text = skills.catalog(found)
    assert len(text) <= skills.CATALOG_CHARS
    listed = [line for line in text.splitlines() if line.startswith("- skill-")]
    last = text.splitlines()[-1]
    assert last == f"… {100 - len(listed)} more skills: load_skill with any name lists them all"
    assert 30 < len(listed) < 100
    assert skills.catalog(skills.Skills()) == ""


def test_unchanged_skill_files_are_not_read_again(tmp_path, monkeypatch):
    path = write_skill(tmp_path / "skills", "one", "First", "body")
    reads: list[Path] = []
    real_parse = skills.parse_skill
    monkeypatch.setattr(
        skills, "parse_skill", lambda p, data: reads.append(p) or real_parse(p, data)
    )
    for _ in range(3):
        assert skills.discover(tmp_path, tmp_path).skills[0].description == "First"
    assert reads == [path]
    path.write_text("---\ndescription: Second version\n---\nbody\n")
    assert skills.discover(tmp_path, tmp_path).skills[0].description == "Second version"
    assert reads == [path, path]


def test_skill_roots_cover_the_working_directory_and_the_repo_root(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    cwd = repo / "pkg"
    cwd.mkdir()
    home = tmp_path / "home"
    assert skills.skill_roots(home, cwd) == [
        home / "skills",
        cwd / ".agents" / "skills",
        repo / ".agents" / "skills",
        cwd / ".claude" / "skills",
        repo / ".claude" / "skills",
    ]
    assert skills.skill_roots(home, repo) == [
        home / "skills",
        repo / ".agents" / "skills",
        repo / ".claude" / "skills",
    ]


def test_lh_skills_lists_active_shadowed_and_broken_skills(isolated_home, tmp_path):
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1")
    empty = run_lh("skills", env=env, cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout == ""
    assert f"no skills found; looked in {isolated_home / 'skills'}, " in empty.stderr
    home_copy = write_skill(isolated_home / "skills", "deploy", "Deploy: the home copy", "b")
    root = tmp_path / ".claude" / "skills"
    claude_copy = write_skill(root, "deploy", "Deploy (claude)", "b")
    (root / "broken").mkdir()
    (root / "broken" / "SKILL.md").write_text("---\nname: broken\n---\nbody\n")
    done = run_lh("skills", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {
            "name": "deploy",
            "status": "active",
            "description": "Deploy: the home copy",
            "path": str(home_copy),
        },
        {"name": "deploy", "status": "shadowed", "description": "", "path": str(claude_copy)},
        {
            "name": "broken",
            "status": "error",
            "description": "the front matter has no description",
            "path": str(root / "broken" / "SKILL.md"),
        },
    ]
    table = run_lh("skills", env=env, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert [line.split()[:2] for line in table.stdout.splitlines()[2:]] == [
        ["deploy", "active"],
        ["deploy", "shadowed"],
        ["broken", "error"],
    ]


def test_no_catalog_for_a_session_that_cannot_load_skills(isolated_home, tmp_path):
    write_skill(isolated_home / "skills", "lint", "Run the linters", "ruff check .")
    systems = {}
    for label, tools in (("without", TEST_TOOLS), ("with", default_registry())):
        model = RecordedModel([ModelCompleted(text="ok")])
        session = make_session(model, tools=tools, cwd=tmp_path)
        asyncio.run(runner.run_invocation(session, "hi"))
        systems[label] = model.requests[0][0]["content"]
    assert "- lint: Run the linters" in systems["with"]
    assert "# Skills" not in systems["without"]


# -- project instructions -------------------------------------------------------------


def make_repo(tmp_path: Path) -> tuple[Path, Path]:
    """outer/AGENTS.md (outside the repo), repo/.git, repo/AGENTS.md + CLAUDE.md,
    repo/sub/CLAUDE.md, and the working directory repo/sub/deep."""
    outer = tmp_path / "outer"
    repo = outer / "repo"
    cwd = repo / "sub" / "deep"
    cwd.mkdir(parents=True)
    (repo / ".git").mkdir()
    (outer / "AGENTS.md").write_text("OUTSIDE THE REPO\n")
    (repo / "AGENTS.md").write_text("Use tabs, never spaces.\n")
    (repo / "CLAUDE.md").write_text("IGNORED: an AGENTS.md sits beside me\n")
    (repo / "sub" / "CLAUDE.md").write_text("In sub/, run make test.\n")
    return repo, cwd


def test_agents_md_from_parent_folders_enters_the_prompt(server, isolated_home, tmp_path):
    repo, cwd = make_repo(tmp_path)
    server.push(Text("ok"))
    done = run_lh("hello", env=lh_env(isolated_home, server.base_url), cwd=cwd)
    assert done.returncode == 0, done.stderr
    system = system_of(server.requests[0])
    assert "# Project instructions" in system
    assert f"## {repo / 'AGENTS.md'}\n\nUse tabs, never spaces." in system
    assert f"## {repo / 'sub' / 'CLAUDE.md'}\n\nIn sub/, run make test." in system
    assert system.index("Use tabs") < system.index("In sub/")  # root first
    assert "IGNORED" not in system and "OUTSIDE THE REPO" not in system
    (data,) = query(isolated_home, "SELECT data FROM events WHERE type = 'invocation.received'")[0]
    expected = project_instructions(cwd)
    assert expected.paths == (repo / "AGENTS.md", repo / "sub" / "CLAUDE.md")
    assert json.loads(data)["instructions_hash"] == expected.hash
    assert expected.hash == hashlib.sha256(expected.text.encode()).hexdigest()


def test_the_hash_follows_edits_and_is_absent_without_instructions(tmp_path):
    repo, cwd = make_repo(tmp_path)
    before = project_instructions(cwd).hash
    (repo / "AGENTS.md").write_text("Use spaces.\n")
    assert project_instructions(cwd).hash not in (before, None)
    lone = tmp_path / "lone"
    lone.mkdir()
    assert project_instructions(lone).hash is None
    (lone / "CLAUDE.md").write_text("Be brief.\n")
    assert project_instructions(lone).text == f"## {lone / 'CLAUDE.md'}\n\nBe brief."


def test_an_automatic_wake_up_records_the_hash_too(tmp_path):
    (tmp_path / "AGENTS.md").write_text("Be brief.\n")
    model = RecordedModel([ModelCompleted(text="ok")])
    session = make_session(model, tools=default_registry(), cwd=tmp_path)
    asyncio.run(runner.run_invocation(session, None))
    auto = [e for e in store.read_events(session.conn, session.session_id)][1]
    assert auto.type == "invocation.auto"
    assert auto.data.instructions_hash == project_instructions(tmp_path).hash is not None
    assert "Be brief." in model.requests[0][0]["content"]


def test_repl_skills_command_lists_active_and_shadowed(isolated_home, tmp_path, monkeypatch):
    from leharness.testing import ScriptedServer, Text

    from .test_repl import drive

    write_skill(isolated_home / "skills", "review", "Review a change", "body one")
    write_skill(tmp_path / ".agents" / "skills", "review", "A shadowed copy", "body two")
    with ScriptedServer([Text("hi")]) as server:
        _repl, screen = drive(["hello", "/skills", "/exit"], server, monkeypatch)
    lines = [line for line in screen.splitlines() if line.startswith("review")]
    assert [line.split()[1] for line in lines] == ["active", "shadowed"]
    assert "Review a change" in lines[0]
