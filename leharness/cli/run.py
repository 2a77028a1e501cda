"""`lh [PROMPT]`: run one prompt and exit, or start the interactive session."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from leharness.app.settings import APPROVAL_MODES, SANDBOX_MODES

from . import process
from .completion import session_ids
from .errors import UserError
from .options import context_window_option

EXIT_CODES = {"no_tool_calls": 0, "max_steps": 1, "model_failed": 1, "cancelled": 130}
# Provider failures the user must fix (key, address, model name): exit code 2.
USER_FIXABLE = {"auth", "unreachable", "not_found"}


@click.command("run", hidden=True)
@click.argument("prompt", nargs=-1)
@click.option(
    "--session",
    "session_ref",
    metavar="ID",
    shell_complete=session_ids,
    help="Resume this session (id or prefix).",
)
@click.option("-c", "--continue", "continue_", is_flag=True, help="Resume the latest session.")
@click.option(
    "-r",
    "--resume",
    "pick",
    is_flag=True,
    help="Pick the session to resume from a list (type to filter).",
)
@click.option("--provider", help="openai or ollama  [env LEHARNESS_PROVIDER]")
@click.option("--model", help="Model name  [env LEHARNESS_MODEL]")
@click.option("--base-url", help="OpenAI-compatible server URL  [env OPENAI_BASE_URL]")
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    help="Stop after this many model calls per prompt  [env LEHARNESS_MAX_STEPS; default: 50]",
)
@click.option(
    "--task-wait",
    type=click.FloatRange(min=0),
    default=600,
    show_default=True,
    help="Seconds a one-shot run waits for its background tasks before exiting.",
)
@click.option("--no-wait", is_flag=True, help="Exit without waiting for background tasks.")
@context_window_option
@click.option(
    "--approval",
    type=click.Choice(APPROVAL_MODES),
    help="ask (default): bash and file changes wait for one key, y/n/a(lways), after "
    "showing the command or diff (refused when there is no terminal); auto: everything "
    "runs; read-only: they are refused  [env LEHARNESS_APPROVAL]",
)
@click.option(
    "--allow-path",
    "allow_paths",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Let the file tools and sandboxed bash commands use DIR too (default: only the "
    "working directory). Repeatable.",
)
@click.option(
    "--sandbox",
    type=click.Choice(SANDBOX_MODES),
    help="Where bash commands run: workspace-write (default where bubblewrap works: only the "
    "working directory, --allow-path folders and a private /tmp are writable), read-only "
    "(nothing writable, no network) or off  [env LEHARNESS_SANDBOX]",
)
@click.option("--json", "as_json", is_flag=True, help="Print every event as a JSON line.")
def run_command(
    prompt: tuple[str, ...],
    session_ref: str | None,
    continue_: bool,
    pick: bool,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    max_steps: int | None,
    task_wait: float,
    no_wait: bool,
    context_window: int | None,
    approval: str | None,
    allow_paths: tuple[Path, ...],
    sandbox: str | None,
    as_json: bool,
) -> None:
    """Run PROMPT and exit, or start an interactive session when no PROMPT is given.

    Provider, model, base URL, max steps, context window, approval and sandbox: flag >
    environment > settings.toml > default (lh config shows them)."""
    from leharness.app.settings import resolve_settings

    flags = dict(
        provider=provider,
        model=model,
        base_url=base_url,
        max_steps=max_steps,
        context_window=context_window,
        approval=approval,
        sandbox=sandbox,
    )
    settings = resolve_settings(flags)
    options = {key: settings[key] for key in flags}
    if options["sandbox"] != "off":
        from leharness.tools.sandbox import start_probe

        start_probe()
        importlib.import_module(".session", __package__)  # loads while bwrap checks itself
    from leharness.app.session import sandbox_mode

    options["sandbox"] = sandbox_mode(
        options["sandbox"], settings.values["sandbox"].origin, warn=echo_lh
    )
    if pick:
        session_ref = pick_session()
    text = prompt_text(" ".join(prompt).strip())
    from .approve import approval_mode

    options["approval"] = approval_mode(options["approval"])
    options["allow_paths"] = allow_paths
    if not text:
        from .repl import run_repl

        run_repl(session_ref=session_ref, continue_=continue_, **options)
        return
    from .session import open_session

    approver = one_shot_approver(options["approval"])
    session = open_session(session_ref, continue_, as_json=as_json, approver=approver, **options)
    from .usage import cost, session_usage, summary_line

    before = session_usage(session.loop.conn, session.session_id)
    session.warm()  # before the freeze: the conversation read here is never collected again
    process.started()
    result = session.run(text, task_wait_s=task_wait, wait=not no_wait)
    if not as_json:
        used = session_usage(session.loop.conn, session.session_id) - before
        price = cost(session.provider, session.loop.model.model, used)
        click.echo(summary_line(used, price), err=True)
        from .hints import lh

        sid = session.session_id
        click.echo(f"session {sid} · resume: {lh()} --session {sid}", err=True)
    if result.reason == "model_failed" and result.error is not None:
        if result.error.kind in USER_FIXABLE:
            raise UserError(_fix_hint(result.error.kind, str(result.error), session.provider))
        raise click.exceptions.Exit(EXIT_CODES["model_failed"])
    if result.reason == "max_steps" and not as_json:
        click.echo(f"stopped after {options['max_steps']} steps (--max-steps)", err=True)
    raise click.exceptions.Exit(EXIT_CODES[result.reason])


def echo_lh(line: str) -> None:
    click.echo(f"lh: {line}", err=True)


def pick_session() -> str:
    """--resume: the session chosen in the picker; leaving it (Esc) ends lh."""
    from contextlib import closing

    from leharness import store

    from .picker import pick

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("--resume needs a terminal to pick on: use --session ID (lh sessions)")
    with closing(store.open_existing()) as conn:
        chosen = pick(conn)
    if chosen is None:
        raise click.exceptions.Exit(0)
    return chosen


def prompt_text(text: str) -> str:
    """The prompt, with what was piped in appended (`git diff | lh "review this"`), or the
    piped text alone when there is no prompt. Only a pipe or a file counts as piped: an
    inherited terminal or /dev/null is not read."""
    piped = _piped_stdin()
    if piped is None and not text and not sys.stdin.isatty():
        piped = sys.stdin.read()  # no prompt and no terminal: stdin is the prompt
    if piped is None:
        return text
    if not text and not piped.strip():
        raise UserError("no prompt given and standard input is empty")
    return f"{text}\n\n{piped.rstrip()}" if text and piped.strip() else text or piped.strip()


def _piped_stdin() -> str | None:
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # no real stdin (closed, or in-process)
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return None
    return sys.stdin.read()


def one_shot_approver(mode: str):
    """In ask mode on a terminal, ask there (one key). With no terminal there is no
    approver: such calls are refused, and the channel says how to let them run."""
    if mode != "ask" or not sys.stdin.isatty():
        return None
    from .approve import terminal_approver

    return terminal_approver(sys.stderr, sys.stdin.fileno())


def _fix_hint(kind: str, message: str, provider: str) -> str:
    if kind == "unreachable" and provider == "ollama":
        return f"{message}: start Ollama (`ollama serve`) or set LEHARNESS_OLLAMA_BASE_URL"
    if kind == "unreachable":
        return f"{message}: check the network or --base-url / OPENAI_BASE_URL"
    if kind == "not_found":
        return f"{message}: choose another with --model or LEHARNESS_MODEL"
    return message


def working_directory() -> Path:
    return Path(os.getcwd())
