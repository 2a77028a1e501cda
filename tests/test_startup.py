"""Start-up stays light: `lh --help` and `lh show` (with and without --at) run
without importing pydantic, asyncio or openai. Checked on `sys.modules` in a
fresh interpreter, so a module-level import anywhere on those paths fails here
(bench/cold_start.py and bench/history.py time them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leharness import __version__, projections, store
from leharness.projections import records
from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from . import e2e_helpers
from .util import tool_round

HEAVY = ("pydantic", "asyncio", "openai", "rich", "prompt_toolkit", "datasette")

PROBE = """
import json, sys
from leharness.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit as end:
    code = end.code
else:
    code = 0
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(HEAVY)))
sys.stderr.write("\\n" + json.dumps({"code": code, "heavy": heavy}))
"""


def run_lh(*args: str) -> tuple[str, dict]:
    """`lh ARGS` in a fresh interpreter: its stdout and what it had imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("HEAVY", repr(json.dumps(HEAVY))), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout, json.loads(done.stderr.rsplit("\n", 1)[1])


def test_importing_the_cli_loads_nothing_heavy():
    stdout, probe = run_lh("--help")
    assert probe == {"code": 0, "heavy": []}
    assert "show" in stdout and "inspect" in stdout


def test_sessions_lists_without_pydantic(db):
    session_id = store.create_session(db)
    tool_round(db, session_id, "a question")
    stdout, probe = run_lh("sessions")
    assert probe == {"code": 0, "heavy": []}
    assert session_id in stdout


@pytest.mark.parametrize("extra", [[], ["--at", "6"], ["--full"]])
def test_show_reads_plain_records_without_pydantic(db, extra):
    session_id = store.create_session(db)
    tool_round(db, session_id, "first question")
    tool_round(db, session_id, "second question")
    stdout, probe = run_lh("show", session_id[:8], *extra)
    assert probe == {"code": 0, "heavy": []}
    assert "first question" in stdout and "⏺ bash: ls" in stdout
    assert ("second question" in stdout) is (extra != ["--at", "6"])


def test_show_json_still_types_its_rows(db):
    """--json keeps the typed models' shape, so it may load pydantic."""
    session_id = store.create_session(db)
    tool_round(db, session_id)
    stdout, probe = run_lh("show", session_id, "--json")
    assert probe["code"] == 0 and "pydantic" in probe["heavy"]
    assert json.loads(stdout)["messages"][1]["tool_calls"][0]["name"] == "bash"


def test_records_hold_what_the_typed_rows_hold(db):
    session_id = store.create_session(db)
    tool_round(db, session_id)
    row = records.session(db, session_id)
    assert row.status == row["status"] == "idle"
    assert projections.SessionRow(**row) == projections.get_session(db, session_id)
    messages = records.all_messages(db, session_id)
    assert [projections.Message(**m) for m in messages] == projections.all_messages(db, session_id)
    (call,) = messages[1].tool_calls
    assert (call.name, call.arguments) == ("bash", '{"command": "ls"}')
    assert records.session(db, "nope") is None
    with pytest.raises(AttributeError):
        _ = row.no_such_column


def test_lazy_package_names_resolve_and_unknown_ones_fail():
    assert store.append is store.log.append
    assert projections.tasks is projections.read.tasks
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = store.nothing
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = projections.nothing


def test_version_prints_without_importing_click():
    """`lh --version` answers from the entry point itself (bench/cold_start.py times it)."""
    lh = str(Path(sys.executable).with_name("lh"))
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run([lh, "--version"], capture_output=True, text=True, env=env, check=True)
    assert done.stdout == "lh, version " + __version__ + "\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "leharness.cli" in imported
    assert not {name.split(".")[0] for name in imported} & {"click", *HEAVY}


GC_PROBE = """
import gc, sys
from leharness.cli import process
from leharness.cli.group import cli
process.entered()
assert not gc.isenabled()
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write(f"\\ngc enabled: {gc.isenabled()}")
"""


@pytest.mark.parametrize("command", [["config"], ["sessions"], ["hi"]])
def test_the_collector_is_on_again_once_a_command_runs(command, isolated_home):
    """The entry point starts with the collector off (start-up frees nearly nothing);
    `run` turns it on once started, every other command before it begins."""
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home), "OPENAI_API_KEY": "k"}
    env.update(OPENAI_BASE_URL="http://127.0.0.1:9/v1", LEHARNESS_RETRY_BASE_S="0")
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE, *command], capture_output=True, text=True, env=env
    )
    assert done.stderr.rsplit("\n", 1)[1] == "gc enabled: True", done.stderr


def lh_help(columns: int, *args: str) -> tuple[str, set[str]]:
    """`lh --help` (or ARGS) through the real entry point: stdout and the modules imported."""
    lh = str(Path(sys.executable).with_name("lh"))
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": str(columns)}
    done = subprocess.run([lh, *(args or ["--help"])], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout, {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}


def click_help(columns: int) -> str:
    """`lh --help` as click renders it with every command imported."""
    from click.testing import CliRunner

    from leharness.cli import cli

    for name in cli.commands:
        cli.commands[name]  # imports the command
    width = max(min(columns, 80) - 2, 50)  # what click's HelpFormatter makes of a terminal
    return CliRunner().invoke(cli, ["--help"], prog_name="lh", terminal_width=width).output


@pytest.mark.parametrize("columns", [80, 200])
def test_help_prints_what_click_would_without_importing_click(columns):
    """`lh --help` on a usual terminal is the stored text (cli/help.txt), with no click
    and no command module imported (bench/cold_start.py times it)."""
    stdout, imported = lh_help(columns)
    assert stdout == click_help(columns)
    assert not {name.split(".")[0] for name in imported} & {"click", *HEAVY}
    assert not {name for name in imported if name.startswith("leharness.cli.")} - {
        "leharness.cli.process"
    }
    assert lh_help(columns, "-h")[0] == stdout


def test_a_narrow_terminal_gets_help_wrapped_by_click_and_no_command_module():
    stdout, imported = lh_help(60)
    assert stdout == click_help(60) and stdout != click_help(80)
    assert "click" in imported
    assert not imported & {"leharness.cli.run", "leharness.cli.history", "leharness.cli.mcp"}


def test_the_stored_help_matches_the_commands():
    from leharness.cli import commands

    assert commands.stored() == commands.generate(), (
        "cli/commands.json is stale: run python -m leharness.cli.commands"
    )
    stored = Path(commands.__file__).with_name("help.txt").read_text()
    assert stored == commands.render_help(), "cli/help.txt is stale: run the same command"


MODULES_PROBE = """
import sys
from leharness.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\n" + " ".join(sorted(sys.modules)))
"""


def test_a_command_imports_its_own_module_only(isolated_home):
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home)}
    done = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE, "config"], capture_output=True, text=True, env=env
    )
    imported = set(done.stderr.rsplit("\n", 1)[1].split())
    assert "provider" in done.stdout and "leharness.cli.config" in imported
    assert not imported & {"leharness.cli.run", "leharness.cli.mcp", "leharness.cli.inspect"}


EVENTS_PROBE = """
import sys
from leharness import store
from leharness.store import events
conn = store.open_events_only()
session_id = store.create_session(conn)
store.append(conn, session_id, {"type": "invocation.received", "text": "hi"})
read = [event.type for event in store.read_events(conn, session_id)]
built = sorted(m.__name__ for m in events.PAYLOAD_MODELS if m.__pydantic_complete__)
sys.stdout.write(f"{read} {built} {events.Event.__pydantic_complete__}")
"""


def test_an_append_builds_the_schema_of_its_own_event_type_only(isolated_home):
    """Validating through the union of every event type (or building an Event's own
    validator) builds all ~32 schemas, ~15 ms of a one-turn run's start-up."""
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home)}
    done = subprocess.run(
        [sys.executable, "-c", EVENTS_PROBE], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout == (
        "['session.created', 'invocation.received'] ['InvocationReceived', 'SessionCreated'] False"
    )


def test_a_session_without_mcp_json_imports_no_mcp_code(isolated_home):
    from leharness.tools.mcp import config_path

    assert config_path(isolated_home) == isolated_home / "mcp.json"  # app/mcp.py checks that
    probe = (
        "import sys\nfrom leharness.app import mcp\nmcp.attach(None)\n"
        "sys.stdout.write(str(sorted(m for m in sys.modules if 'mcp' in m)))"
    )
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.stdout == "['leharness.app.mcp']", done.stderr


def test_without_a_settings_file_no_toml_parser_loads(isolated_home):
    env = {**os.environ, "LEHARNESS_HOME": str(isolated_home)}
    done = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE, "config"], capture_output=True, text=True, env=env
    )
    assert "provider" in done.stdout
    assert "tomllib" not in done.stderr.rsplit("\n", 1)[1].split()


#: The core tools' modules (tools/__init__.py loads each on its tool's first call).
TOOL_MODULES = {
    f"leharness.tools.{name}"
    for name in ("agents", "bash", "checkpoints", "files", "paths", "search", "task_tools")
}


RUN_PROBE = """
import os, sys
from leharness.cli import main, process
def leave(code):
    sys.stderr.write("\\n" + " ".join(sorted(sys.modules)))
    sys.stderr.flush()
    os._exit(code)
process.exit_now = leave
sys.argv = ["lh", *sys.argv[1:]]
main()
"""


def imported_by_run(home: Path, *replies: Text | ToolCalls) -> set[str]:
    """The modules `lh "say hi"` had imported when it exited (through `main()`, as the
    `lh` entry point runs it)."""
    with ScriptedServer() as server:
        server.push(*replies)
        done = subprocess.run(
            [sys.executable, "-c", RUN_PROBE, "say hi"],
            env=e2e_helpers.lh_env(home, server.base_url),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    return set(done.stderr.rsplit("\n", 1)[1].split())


def test_a_run_that_calls_no_tool_loads_no_tool_module(isolated_home):
    """The tools are offered from their stored specs; nor does pydantic's plugin loader
    read every installed distribution's entry points (cli/process.py)."""
    imported = imported_by_run(isolated_home, Text("hi"))
    assert "leharness.loop.runner" in imported and "leharness.tools.skills" in imported
    assert not imported & TOOL_MODULES
    assert "importlib.metadata" not in imported


def test_a_tool_module_loads_on_its_first_call(isolated_home):
    (isolated_home.parent / "notes.txt").write_text("the notes")
    imported = imported_by_run(
        isolated_home, ToolCalls(Call("read_file", {"path": "notes.txt"})), Text("read it")
    )
    assert "leharness.tools.files" in imported
    assert not imported & {"leharness.tools.bash", "leharness.tools.agents"}
    types = event_types_of(isolated_home)
    assert types.count("tool.completed") == 1 and types[-1] == "agent.finished"


def event_types_of(home: Path) -> list[str]:
    with store.open_existing(home / "sessions.db") as conn:
        return [row[0] for row in conn.execute("SELECT type FROM events ORDER BY seq")]


def test_library_use_keeps_pydantics_plugin_loader():
    """Only the `lh` process skips pydantic plugins; importing leharness changes nothing."""
    probe = (
        "import sys\nfrom leharness.store import events\n"
        "events.SessionCreated()\n"
        "sys.stdout.write(sys.modules['pydantic.plugin._loader'].__file__)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.endswith("_loader.py"), done.stderr
