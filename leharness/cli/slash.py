"""The interactive session's slash commands: one table (name, argument, help, handler)
that dispatch, /help and prompt_toolkit's completion all read.

A handler gets the Repl and the text after the command, prints through the
REPL's console and returns LEAVE to end the session. Commands that replace the
session (/new, /resume, …) wait for the running answer; the others work while
it runs.
"""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from leharness import projections, store
from leharness.app.providers import DEFAULT_MODELS

from .errors import UserError
from .session import model_client, open_session
from .status import elapsed, parse_ts, since, task_label

if TYPE_CHECKING:
    from .repl import Repl

LEAVE = object()  # what a handler returns to end the session
Handler = Callable[["Repl", str], "object | Awaitable[object]"]
Choices = Callable[["Repl"], Iterable[tuple[str, str]]]  # (value, description) for completion


@dataclass(frozen=True)
class SlashCommand:
    name: str
    argument: str  # e.g. "ID", "[N]", "" for none: shown in /help and the completion menu
    help: str
    handler: Handler
    idle_only: bool = False  # replaces or rewrites the session: not while an answer runs
    choices: Choices | None = None  # completion of the argument


# -- handlers ---------------------------------------------------------------


def show_help(repl: Repl, arg: str) -> None:
    for command in COMMANDS:
        usage = f"{command.name} {command.argument}".strip()
        repl.console.print(f"{usage:18} {command.help}", markup=False, highlight=False)
    repl.console.print(KEYS, markup=False, highlight=False)


KEYS = """\
Ctrl-C or Esc      cancel the running answer; at the prompt Ctrl-C clears the line
typing mid-answer  queues the message; it reaches the model at the next step
Ctrl-D             leave (like /exit)"""


def new_session(repl: Repl, arg: str) -> None:
    repl.active = open_session(None, False, channel=repl.channel, **repl.options)
    repl.console.print(f"new session {repl.active.session_id}", style="dim")


def list_sessions(repl: Repl, arg: str) -> None:
    for row in projections.list_sessions(repl.active.loop.conn, 15):
        mark = "*" if row.id == repl.active.session_id else " "
        title = " ".join((row.title or "").split())[:60]
        repl.console.print(f"{mark} {row.id}  {row.status:9} {title}", markup=False)


async def resume(repl: Repl, arg: str) -> None:
    """/resume ID, or /resume alone: pick from the recent sessions."""
    from .picker import pick_async
    from .recap import show_recap

    if not arg:
        arg = await pick_async(repl.active.loop.conn, **repl.picker_options) or ""
        if not arg:
            return
    active = open_session(arg, False, channel=repl.channel, **repl.options)
    repl.active = active
    row = projections.get_session(active.loop.conn, active.session_id)
    title = " ".join(((row.title or "") if row else "").split())
    repl.console.print(f"resumed session {active.session_id} · {title[:60]}", style="dim")
    show_recap(repl.console, active.loop.conn, active.session_id)


def session_choices(repl: Repl) -> Iterator[tuple[str, str]]:
    for row in projections.list_sessions(repl.active.loop.conn, 30):
        yield row.id, " ".join((row.title or "").split())[:40]


def list_tasks(repl: Repl, arg: str) -> None:
    rows = projections.tasks(repl.active.loop.conn, repl.active.session_id)
    if not rows:
        repl.console.print("no tasks in this session", style="dim")
        return
    now = datetime.now(UTC)
    for task in rows:
        took = since(task.started_at, parse_ts(task.finished_at) if task.finished_at else now)
        line = (
            f"{task.task_id}  {task.status:9} {task.kind:6} {elapsed(took):>7}  {task_label(task)}"
        )
        repl.console.print(line, style="" if task.status == "running" else "dim", markup=False)


async def cancel_task(repl: Repl, arg: str) -> None:
    if not arg:
        repl.console.print("usage: /cancel TASK (/tasks lists them)")
        return
    rows = projections.tasks(repl.active.loop.conn, repl.active.session_id)
    found = [t for t in rows if t.task_id.startswith(arg) or t.task_id.startswith("task_" + arg)]
    if len(found) != 1:
        problem = "matches several tasks: give more of it" if found else "is no task here"
        repl.console.print(f"{arg!r} {problem} (/tasks lists them)", style="yellow", markup=False)
        return
    task = found[0]
    if task.status != "running":
        repl.console.print(f"task {task.task_id} has already {task.status}", style="yellow")
    elif await repl.active.loop.tasks.cancel(task.task_id, "user"):
        repl.console.print(f"cancelled task {task.task_id}", style="dim")
    else:
        owner = f" (pid {task.harness_pid})" if task.harness_pid else ""
        repl.console.print(f"task {task.task_id} is run by another lh process{owner}")


def running_tasks(repl: Repl) -> Iterator[tuple[str, str]]:
    for task in projections.open_tasks(repl.active.loop.conn, repl.active.session_id):
        yield task.task_id, task_label(task)


def switch_model(repl: Repl, arg: str) -> None:
    loop = repl.active.loop
    if not arg:
        repl.console.print(f"model: {loop.model.provider}/{loop.model.model} · /model NAME")
        return
    client = model_client(loop.model.provider, arg, repl.options.get("base_url"))
    loop.model = client  # step.started records it from the next step on
    repl.options["model"] = arg  # /new and /resume keep it
    repl.console.print(f"model: {client.provider}/{client.model}", style="dim")


def models(repl: Repl) -> Iterator[tuple[str, str]]:
    seen = {repl.active.loop.model.model}
    yield repl.active.loop.model.model, "current"
    rows = projections.list_sessions(repl.active.loop.conn, 200)
    for model in [*(row.model for row in rows), *DEFAULT_MODELS.values()]:
        if model and model not in seen:
            seen.add(model)
            yield model, ""


def launch_inspector(repl: Repl, arg: str) -> None:
    """`lh inspect --no-open` in the background on a free port; it stops when the session ends."""
    if repl.inspector is not None and repl.inspector.poll() is None:
        repl.console.print(f"the inspector is running: {repl.inspector_url}")
        return
    import secrets

    port = free_port()
    argv = ["inspect", "--no-open", "--port", str(port)]
    token = secrets.token_urlsafe(24)  # in its environment: a command line is public
    repl.inspector_url = f"http://127.0.0.1:{port}/?token={token}"
    log = store.home_dir() / "inspector.log"
    with open(log, "ab") as out:
        repl.inspector = subprocess.Popen(
            [sys.executable, "-c", "from leharness.cli import main; main()", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C at the prompt is not for it
            env={**os.environ, "LEHARNESS_INSPECT_TOKEN": token},
        )
    repl.console.print(f"inspector starting: {repl.inspector_url} (log {log})", markup=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compact(repl: Repl, arg: str) -> None:
    """Summarise the oldest turns now, as a run: the prompt stays, and Ctrl-C or Esc
    cancels it as it cancels an answer."""
    from .compact import compact_in_repl

    async def work() -> None:
        await compact_in_repl(repl.active, repl.console)
        if repl.queued:  # typed while it ran: back to the prompt, to send when ready
            repl.restore_queued()

    repl.begin(work())


def fork(repl: Repl, arg: str) -> None:
    from .branching import fork_here

    fork_here(repl, arg)


def rewind(repl: Repl, arg: str) -> None:
    from .rewind import rewind_in_repl

    rewind_in_repl(repl, arg)


def turns(repl: Repl) -> Iterable[tuple[str, str]]:
    from .rewind import turn_choices

    return turn_choices(repl)


def show_mcp(repl: Repl, arg: str) -> None:
    from .mcp import show_servers

    show_servers(repl.console)


def show_skills(repl: Repl, arg: str) -> None:
    from .skills import show_skills

    show_skills(repl.console, store.home_dir(), repl.active.loop.cwd)


def leave(repl: Repl, arg: str) -> object:
    return LEAVE


# The table. /fork [N], /compact, /mcp and /skills belong to other parts: each plugs in
# as one row here calling a handler in its own module (one that switches sessions sets
# repl.active, as /new does), e.g.
#     SlashCommand("/fork", "[N]", "branch this session (at event N) and switch to it",
#                  history_fork, idle_only=True),
COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("/help", "", "this help", show_help),
    SlashCommand("/new", "", "start a new session", new_session, idle_only=True),
    SlashCommand("/sessions", "", "list recent sessions", list_sessions),
    SlashCommand(
        "/resume", "[ID]", "switch to another session (no ID: pick one)", resume, True,
        session_choices,
    ),
    SlashCommand("/tasks", "", "background tasks of this session", list_tasks),
    SlashCommand("/cancel", "TASK", "stop a background task", cancel_task, choices=running_tasks),
    SlashCommand("/model", "NAME", "switch model from the next step", switch_model, choices=models),
    SlashCommand("/fork", "[N]", "branch this session after event N and switch to it", fork, True),
    SlashCommand("/rewind", "[K]", "go back to before turn K (files too)", rewind, True, turns),
    SlashCommand("/compact", "", "summarise the oldest turns now (compaction T4)", compact, True),
    SlashCommand("/inspect", "", "browse the history in Datasette", launch_inspector),
    SlashCommand("/mcp", "", "MCP servers, their status and tools", show_mcp),
    SlashCommand("/skills", "", "skills offered here, shadowed and unreadable ones", show_skills),
    SlashCommand("/exit", "", "leave (Ctrl-D works too)", leave),
)  # fmt: skip
ALIASES = {"/quit": "/exit"}


def find(name: str) -> SlashCommand | None:
    name = ALIASES.get(name, name)
    return next((command for command in COMMANDS if command.name == name), None)


async def dispatch(repl: Repl, line: str) -> bool:
    """Run one slash command line; False means leave."""
    name, _, arg = line.strip().partition(" ")
    command = find(name)
    if command is None:
        repl.console.print(
            f"unknown command {name}: /help lists them", style="yellow", markup=False
        )
        return True
    if command.idle_only and repl.busy:
        repl.console.print(
            f"{command.name} waits for the answer to finish (Ctrl-C or Esc cancels it)",
            style="yellow",
        )
        return True
    try:
        result = command.handler(repl, arg.strip())
        if inspect.isawaitable(result):
            result = await result
    except (UserError, store.StoreError) as error:  # bad input: say why, keep the session
        repl.console.print(str(error), style="yellow", markup=False)
        return True
    return result is not LEAVE


class SlashCompleter(Completer):
    """Completes command names after `/`, then each command's argument (ids, models)."""

    def __init__(self, repl: Repl) -> None:
        self.repl = repl

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/"):
            return
        if " " not in text:
            for command in COMMANDS:
                if command.name.startswith(text):
                    meta = f"{command.argument}  {command.help}".strip()
                    yield Completion(command.name, -len(text), display_meta=meta)
            return
        name, _, arg = text.partition(" ")
        typed = find(name)
        if typed is None or typed.choices is None or " " in arg:
            return
        for value, meta in typed.choices(self.repl):
            if value.startswith(arg):
                yield Completion(value, -len(arg), display_meta=meta)
