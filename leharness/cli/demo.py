"""`lh demo`: a recorded session run through the real loop, tools and store.

No key and no network: a replay model serves the recorded model outputs in
order, while the tools really run in a scratch folder and every event really
lands in sessions.db, so the newcomer can inspect it afterwards.
"""

from __future__ import annotations

import json
from importlib import resources

import click

from .errors import user_errors


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print every event as a JSON line.")
@user_errors
def demo_command(as_json: bool) -> None:
    """Run a recorded session offline (no API key) and show how to inspect it."""
    import asyncio

    from leharness import store
    from leharness.loop import runner
    from leharness.loop.replay import ReplayModel
    from leharness.store.events import ModelCompleted
    from leharness.tools import default_registry

    from .render import JsonChannel, TerminalChannel

    recording = json.loads(
        resources.files("leharness").joinpath("cli", "demo_session.json").read_text()
    )
    workspace = store.home_dir() / "demo"
    workspace.mkdir(parents=True, exist_ok=True)
    model = ReplayModel(ModelCompleted(**reply) for reply in recording["replies"])
    conn = store.open_events_only()
    session_id = runner.new_session(conn, workspace, model.provider, model.model)
    session = runner.Session(
        conn=conn,
        session_id=session_id,
        model=model,
        tools=default_registry(),
        cwd=workspace,
        channel=JsonChannel() if as_json else TerminalChannel(),
        home=store.home_dir(),
    )
    if not as_json:
        click.echo(f"› {recording['prompt']}\n", err=True)
    result = asyncio.run(runner.run_invocation(session, recording["prompt"]))
    if as_json:
        return
    db = store.db_path()
    click.echo(
        f"\nsession {session_id} finished ({result.reason}); tools ran in {workspace}\n"
        "Inspect it:\n"
        f"  lh show {session_id}\n"
        f"  lh sql \"select session_seq, type from events where session_id = '{session_id}'\"\n"
        f"  datasette {db}",
        err=True,
    )
