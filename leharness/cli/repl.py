"""The interactive session: prompt_toolkit input, rich rendering, slash commands.

One asyncio loop for the whole session. While a run is going, Ctrl-C cancels
that run only (the loop records the cancel and the session stays resumable);
at the prompt, Ctrl-C clears the line and Ctrl-D or /exit leaves.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from leharness import projections, store
from leharness.loop import runner

from .approve import prompt_approver
from .render import call_summary, result_summary
from .session import ActiveSession, open_session

HELP = """\
/help              this help
/new               start a new session
/sessions          list recent sessions
/mcp               MCP servers, their status and tools
/exit              leave (Ctrl-D works too)
Ctrl-C             cancel the running answer; at the prompt, clear the line"""


class RichChannel:
    """Streams the answer as live markdown; tool calls as dim one-line cells."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._text = ""
        self._calls: dict[str, str] = {}

    def text(self, delta: str) -> None:
        self._text += delta
        if self._live is None:
            self._live = Live(console=self.console, refresh_per_second=12, transient=False)
            self._live.start()
        self._live.update(Markdown(self._text))

    def reasoning(self, delta: str) -> None:
        self.console.print(delta, style="dim", end="")

    def retry(self, attempt: int, message: str, delay_s: float) -> None:
        self.console.print(f"! {message}; retrying in {delay_s:.1f}s", style="yellow")

    def event(self, event: store.Event) -> None:
        data = event.data
        if event.type in ("model.completed", "model.cancelled"):
            self._end_stream()
            for call in getattr(data, "tool_calls", []):
                self._calls[call.id] = call_summary(call.name, call.arguments)
        elif event.type == "tool.started":
            self.console.print(f"⏺ {self._calls.get(data.call_id, data.name)}", style="cyan")
        elif event.type == "tool.completed":
            self.console.print(f"  ⎿ {result_summary(data.result)}", style="dim")
        elif event.type == "tool.failed":
            self.console.print(
                f"  ✗ {data.error.splitlines()[0] if data.error else ''}", style="red"
            )
        elif event.type == "model.failed":
            self.console.print(f"✗ {data.error}", style="red")
        elif event.type == "agent.finished" and data.reason == "cancelled":
            self.console.print("(cancelled)", style="yellow")

    def _end_stream(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._text = ""


@dataclass
class Repl:
    active: ActiveSession
    console: Console
    options: dict[str, Any]

    async def run_prompt(self, text: str | None) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(runner.run_invocation(self.active.loop, text))
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            await task
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    def command(self, line: str) -> bool:
        """Handle a slash command; False means leave."""
        name = line.split()[0]
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.console.print(HELP)
        elif name == "/new":
            self.active = open_session(
                None, False, channel=self.active.loop.channel, **self.options
            )
            self.console.print(f"new session {self.active.session_id}", style="dim")
        elif name == "/sessions":
            for row in projections.list_sessions(self.active.loop.conn, 15):
                self.console.print(f"{row.id}  {row.status:9} {(row.title or '')[:60]}")
        elif name == "/mcp":
            from .mcp import show_servers

            show_servers(self.console)
        else:
            self.console.print(f"unknown command {name}: /help lists them", style="yellow")
        return True


AUTO = "\0auto"  # what the prompt returns when a background task woke the session


async def next_line(repl: Repl, prompt_session: Any) -> str:
    """The user's next line, or AUTO when a background task ends while the prompt is
    idle and empty (a half-typed line is never thrown away: that waits for Enter)."""
    runtime = repl.active.loop.tasks
    prompt = asyncio.ensure_future(prompt_session.prompt_async("› "))
    while True:
        runtime.changed.clear()
        changed = asyncio.ensure_future(runtime.changed.wait())
        await asyncio.wait({prompt, changed}, return_when=asyncio.FIRST_COMPLETED)
        if prompt.done():
            changed.cancel()
            return prompt.result()
        if runner.has_notifications(repl.active.loop) and not prompt_session.default_buffer.text:
            prompt_session.app.exit(result=AUTO)


async def repl_loop(repl: Repl, prompt_session: Any) -> None:
    while True:
        if runner.has_notifications(repl.active.loop):
            await repl.run_prompt(None)  # invocation.auto: the model reacts to the task
            continue
        try:
            raw = await next_line(repl, prompt_session)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        line = raw.strip()
        if raw == AUTO or not line:  # AUTO: the top of the loop runs it
            continue
        if line.startswith("/"):
            if not repl.command(line):
                return
            continue
        await repl.run_prompt(line)


def run_repl(session_ref: str | None, continue_: bool, **options: Any) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    console = Console(highlight=False)
    history = store.home_dir() / "history"
    prompt_session = PromptSession(history=FileHistory(str(history)))
    if options.get("approval") == "ask":  # /new reuses options: the same approver
        options["approver"] = prompt_approver(prompt_session, console)
    active = open_session(session_ref, continue_, channel=RichChannel(console), **options)
    console.print(
        f"lh · {active.loop.model.provider}/{active.loop.model.model} · "
        f"session {active.session_id} · /help",
        style="dim",
    )
    repl = Repl(active, console, options)
    asyncio.run(repl_loop(repl, prompt_session))
    sid = repl.active.session_id
    console.print(f"session {sid} · resume: lh --session {sid}", style="dim")
