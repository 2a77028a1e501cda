"""`lh demo`: a recorded session run through the real loop, tools and store.

No key and no network: a replay model serves the recorded model outputs in
order, while the tools really run in a scratch folder and every event really
lands in sessions.db, so the newcomer can inspect it afterwards.
"""

from __future__ import annotations

import json

import click


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print every event as a JSON line.")
def demo_command(as_json: bool) -> None:
    """Run a recorded session offline (no API key) and show how to inspect it."""
    from importlib import resources

    from leharness import store
    from leharness.replay.model import RecordedModel
    from leharness.store.events import ModelCompleted

    from .session import open_session

    recording = json.loads(
        resources.files("leharness").joinpath("cli", "demo_session.json").read_text()
    )
    store.check_is_sqlite(store.db_path())  # a bad LEHARNESS_HOME: one line, before any mkdir
    workspace = store.home_dir() / "demo"
    workspace.mkdir(parents=True, exist_ok=True)
    model = RecordedModel(ModelCompleted(**reply) for reply in recording["replies"])
    active = open_session(
        None,
        False,
        provider=None,
        model=None,
        base_url=None,
        max_steps=50,
        as_json=as_json,
        client=model,
        cwd=workspace,
        mcp=False,  # offline and the same every time: no MCP servers
    )
    session_id = active.session_id
    if not as_json:
        click.echo(f"› {recording['prompt']}\n", err=True)
    result = active.run(recording["prompt"])
    if as_json:
        return
    from .hints import lh

    db, cmd = store.db_path(), lh()
    click.echo(
        f"\nsession {session_id} finished ({result.reason}); tools ran in {workspace}\n"
        "Inspect it:\n"
        f"  {cmd} show {session_id}\n"
        f"  {cmd} sql \"select session_seq, type from events where session_id = '{session_id}'\"\n"
        f"  {cmd} inspect {session_id}   (Datasette: its page, timeline, every table)\n"
        f"  {lh('datasette')} {db}",
        err=True,
    )
