"""The interactive session: prompt_toolkit input, rich rendering, slash commands.

One asyncio loop for the whole session, and the prompt stays up while the
agent answers: a line typed meanwhile is queued (shown as queued, counted in
the status line) and the loop takes it at its next step boundary as a
steering message. Ctrl-C or Esc cancels the running answer (the loop records
the cancel and the session stays resumable; queued lines go back to the
prompt); at the prompt, Ctrl-C clears the line and Ctrl-D or /exit leaves.
A background task that ends while nothing runs wakes the session
(invocation.auto).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings
from rich.console import Console

from leharness import projections, store
from leharness.app import locks
from leharness.loop import runner

from . import process, slash
from .approve import LineApprover
from .rich_channel import RichChannel
from .session import ActiveSession, open_session
from .status import status_line

__all__ = ["Repl", "RichChannel", "repl_loop", "run_repl"]

WAKE_POLL_S = 0.5  # how often an idle session looks for finished background tasks


@dataclass
class Repl:
    active: ActiveSession
    console: Console
    options: dict[str, Any]
    queued: list[str] = field(default_factory=list)  # lines typed while an answer runs
    run: asyncio.Task | None = None  # the answer running now
    lines_read: int = 0
    prompt_session: Any = None
    inspector: subprocess.Popen | None = None
    inspector_url: str = ""
    picker_options: dict[str, Any] = field(default_factory=dict)  # tests: input and output

    @property
    def busy(self) -> bool:
        return self.run is not None and not self.run.done()

    @property
    def channel(self) -> RichChannel:
        return self.active.loop.channel  # type: ignore[return-value]

    # -- running answers ------------------------------------------------------

    def start(self, text: str | None) -> None:
        """Answer `text` (None: a background task woke the session) while the prompt stays."""
        self.begin(self._answer(text))

    def begin(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as the session's run: the prompt stays, typed lines queue, and Ctrl-C
        or Esc cancels it (answers, /compact)."""
        self.run = asyncio.ensure_future(work)
        self.run.add_done_callback(self._report)

    def _report(self, run: asyncio.Task) -> None:
        """A run that broke (not a cancel: the loop records those) says so at the prompt."""
        if not run.cancelled() and run.exception() is not None:
            error = run.exception()
            self.console.print(f"✗ {type(error).__name__}: {error}", style="red", markup=False)

    async def _answer(self, text: str | None) -> None:
        loop = self.active.loop
        loop.steering = self.take_queued  # set per run: /new, /resume, /fork swap the session
        result = await runner.run_invocation(loop, text)
        # A line typed just as the answer ended starts the next one; the rest steer it.
        while result.reason != "cancelled" and self.queued:
            result = await runner.run_invocation(loop, self.queued.pop(0))
        if result.reason == "cancelled" and self.queued:
            self.restore_queued()

    def take_queued(self) -> list[str]:
        taken, self.queued = self.queued, []
        return taken

    def queue(self, line: str) -> None:
        self.queued.append(line)
        self.console.print(f"⧗ queued: {line}", style="dim", markup=False)

    def restore_queued(self) -> None:
        """Queued lines of a cancelled answer go back to the prompt, not to waste."""
        lines = self.take_queued()
        buffer = self.prompt_session.default_buffer if self.prompt_session else None
        if buffer is None:
            return
        buffer.text = " ".join([*lines, buffer.text]).strip()
        buffer.cursor_position = len(buffer.text)
        self.console.print(f"{len(lines)} queued line(s) put back at the prompt", style="dim")

    def cancel(self) -> None:
        if self.busy:
            assert self.run is not None
            self.run.cancel()

    async def finish_run(self) -> None:
        """Cancel what still runs (leaving mid-answer) and wait until it is recorded."""
        self.cancel()
        if self.run is not None:
            await asyncio.gather(self.run, return_exceptions=True)

    async def wake_on_tasks(self) -> None:
        """Run the model when a background task has ended and nothing else runs."""
        while True:
            runtime = self.active.loop.tasks
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.changed.wait(), WAKE_POLL_S)
            runtime.changed.clear()
            if not self.busy and should_wake(self.active.loop):
                self.start(None)

    # -- the prompt -----------------------------------------------------------

    def toolbar(self) -> str:
        loop = self.active.loop
        conn, sid = loop.conn, self.active.session_id
        activity = self.channel.activity if isinstance(self.channel, RichChannel) else None
        approver = self.options.get("approver")
        if isinstance(approver, LineApprover) and approver.pending is not None:
            activity = ("approve? y / n / a", approver.asked_at)
        return status_line(
            loop.model.model,
            projections.get_session(conn, sid),
            projections.open_tasks(conn, sid),
            activity if self.busy else None,
            len(self.queued),
            time.monotonic(),
            window_override=loop.context_window,
        )

    def prompt_options(self) -> dict[str, Any]:
        return dict(
            key_bindings=key_bindings(self),
            completer=slash.SlashCompleter(self),
            complete_while_typing=True,
            bottom_toolbar=self.toolbar,
            refresh_interval=0.25,
        )

    async def handle(self, line: str) -> bool:
        """One submitted line; False means leave."""
        approver = self.options.get("approver")
        if isinstance(approver, LineApprover) and approver.answer(line):
            return True  # it answered an approval question (y / n / a)
        if line.startswith("/"):
            return await slash.dispatch(self, line)
        if self.busy:
            self.queue(line)
        else:
            self.start(line)
        return True


def should_wake(loop: runner.LoopSession) -> bool:
    """Finished tasks the model has not seen, other than ones the user cancelled (those
    reach the model with the next prompt instead of starting an answer on their own)."""
    pending = projections.pending_notifications(loop.conn, loop.session_id)
    return any(task.cancel_reason != "user" for task in pending)


def key_bindings(repl: Repl) -> KeyBindings:
    bindings = KeyBindings()
    busy = Condition(lambda: repl.busy)

    @bindings.add("c-c")
    def _interrupt(event: Any) -> None:
        if repl.busy:
            repl.cancel()
        elif event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt())

    @bindings.add("escape", filter=busy)
    def _cancel(event: Any) -> None:
        repl.cancel()

    def asking() -> bool:
        approver = repl.options.get("approver")
        buffer = repl.prompt_session.default_buffer if repl.prompt_session else None
        typing = buffer is not None and bool(buffer.text)
        return isinstance(approver, LineApprover) and approver.asking and not typing

    for key in "ynaYNA":  # an approval question takes one key at an empty prompt

        @bindings.add(key, filter=Condition(asking))
        def _answer(event: Any) -> None:
            repl.options["approver"].answer(event.data)

    return bindings


async def repl_loop(repl: Repl, prompt_session: Any) -> None:
    repl.prompt_session = prompt_session
    waker = asyncio.ensure_future(repl.wake_on_tasks())
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, repl.cancel)  # Ctrl-C outside the prompt
    options = repl.prompt_options()
    try:
        while True:
            try:
                raw = await prompt_session.prompt_async("› ", **options)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            repl.lines_read += 1
            line = raw.strip()
            if line and not await repl.handle(line):
                return
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        waker.cancel()
        await repl.finish_run()
        if repl.inspector is not None and repl.inspector.poll() is None:
            repl.inspector.terminate()
        locks.release_all()  # every session it opened (/new, /resume, /fork) is free again


def run_repl(session_ref: str | None, continue_: bool, **options: Any) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    console = Console(highlight=False)
    if options.get("approval") == "ask":  # /new reuses options: the same approver
        options["approver"] = LineApprover(console, Path.cwd())
    active = open_session(session_ref, continue_, channel=RichChannel(console), **options)
    history = store.home_dir() / "history"
    console.print(
        f"lh · {active.loop.model.provider}/{active.loop.model.model} · "
        f"session {active.session_id} · /help",
        style="dim",
    )
    if session_ref is not None or continue_:
        from .recap import show_recap

        show_recap(console, active.loop.conn, active.session_id)
    repl = Repl(active, console, options)
    process.started()
    with patch_stdout(raw=True):  # output goes above the prompt, which stays while answering
        asyncio.run(repl_loop(repl, PromptSession(history=FileHistory(str(history)))))
    sid = repl.active.session_id
    from .hints import lh

    console.print(f"session {sid} · resume: {lh()} --session {sid}", style="dim")
