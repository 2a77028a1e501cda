"""Building a running session: the model client, the session row, its lock, tools,
hooks and MCP servers, for the CLI, tests, benchmarks and any API. The caller
brings the channel the session renders on; nothing here prints."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from leharness import projections, store
from leharness.errors import UserError
from leharness.loop import prompt, runner
from leharness.loop.model import ModelClient, OpenAICompatibleModel, RetryPolicy
from leharness.loop.session import LoopSession
from leharness.tools import default_registry
from leharness.tools.approval import Approval, Approver, Mode

from . import locks
from .mcp import Warn
from .mcp import attach as attach_mcp
from .providers import resolve_provider
from .settings import load_hooks


@dataclass
class ActiveSession:
    """A session this process has opened and may run: the loop's running session
    (`LoopSession`: connection, model, tools, channel) plus the lock file that keeps
    other lh processes off it. What `open_session` returns; not a row, not a view."""

    loop: LoopSession
    lock: locks.SessionLock | None = None  # held while this process runs the session

    @property
    def session_id(self) -> str:
        return self.loop.session_id

    @property
    def provider(self) -> str:
        return self.loop.model.provider

    def warm(self) -> None:
        """Read and encode the conversation before start-up ends (see prompt.warm)."""
        prompt.warm(self.loop.conn, self.session_id)

    def run(self, text: str | None, task_wait_s: float = 600.0, wait: bool = True) -> runner.Result:
        """Run one prompt; wait (bounded) for the background tasks it starts."""
        return asyncio.run(runner.run_until_settled(self.loop, text, task_wait_s, wait))


def model_client(provider: str | None, model: str | None, base_url: str | None) -> ModelClient:
    config = resolve_provider(provider, model, base_url)
    retry = RetryPolicy(
        retries=int(os.environ.get("LEHARNESS_RETRIES", "3")),
        base_delay_s=float(os.environ.get("LEHARNESS_RETRY_BASE_S", "0.5")),
    )
    timeout = float(os.environ.get("LEHARNESS_TIMEOUT_S", "300"))
    return OpenAICompatibleModel(
        config.provider, config.model, config.base_url, config.api_key, retry, timeout
    )


def pick_session_id(
    conn, session_ref: str | None, continue_: bool, cwd: Path, client: ModelClient
) -> str:
    if session_ref is not None:  # "" is a bad id, not "start a new session"
        return projections.resolve_session_id(conn, session_ref)
    if continue_:
        latest = projections.latest_session_id(conn)
        if latest is None:
            raise UserError('no session to continue yet: run `lh "your prompt"` first')
        return latest
    return runner.new_session(conn, cwd, client.provider, client.model)


def open_session(
    session_ref: str | None,
    continue_: bool,
    *,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    max_steps: int,
    channel: runner.Channel,
    context_window: int | None = None,
    client: ModelClient | None = None,
    cwd: Path | None = None,
    mcp: bool = True,
    allow_paths: tuple[Path, ...] = (),
    approval: Mode = "auto",
    approver: Approver | None = None,
    sandbox: str = "off",
    warn: Warn | None = None,
) -> ActiveSession:
    """Open (or create) the session and everything its loop needs; `warn` hears the
    problems that do not stop it (an MCP server that failed to start)."""
    client = client or model_client(provider, model, base_url)
    cwd = cwd or Path.cwd()
    if session_ref is not None or continue_:  # an existing session: never create the home
        require_history(continue_)
    conn = store.open_events_only()
    session_id = pick_session_id(conn, session_ref, continue_, cwd, client)
    lock = locks.acquire(store.home_dir(), session_id, ancestors(conn, session_id))
    if store.last_seq(conn, session_id) == 1:  # just created: show its session.created too
        channel.event(next(store.read_events(conn, session_id)))
    loop_session = LoopSession(
        conn=conn,
        session_id=session_id,
        model=client,
        tools=default_registry(),
        cwd=cwd,
        channel=channel,
        max_steps=max_steps,
        home=store.home_dir(),
        max_depth=max_subagent_depth(),
        context_window=context_window,
        allowed_paths=tuple(path.resolve() for path in allow_paths),
        sandbox=sandbox,
        approval=Approval(approval, approver),
        hooks=load_hooks(),
    )
    if mcp:  # the servers of $LEHARNESS_HOME/mcp.json, if there is one
        attach_mcp(loop_session, warn)
    return ActiveSession(loop_session, lock)


def sandbox_mode(wanted: str | None, origin: str = "--sandbox", warn: Warn | None = None) -> str:
    """The sandbox bash runs in: the one asked for, else workspace-write where bubblewrap works
    and off (told to `warn` in one line) where it does not."""
    from leharness.tools.sandbox import DEFAULT, unavailable

    if wanted == "off":
        return "off"
    reason = unavailable()
    if wanted is None and reason:
        if warn is not None:
            warn(f"no sandbox for bash: {reason} (--sandbox off hides this)")
        return "off"
    if reason:
        raise UserError(f"sandbox {wanted} (from {origin}) cannot work: {reason}; or --sandbox off")
    return wanted or DEFAULT


def require_history(continue_: bool) -> None:
    """A UserError, before anything is created, when there is no database to resume from."""
    if continue_ and not store.db_path().exists():
        raise UserError('no session to continue yet: run `lh "your prompt"` first')
    try:
        store.require_database()
    except store.StoreError as error:
        raise UserError(str(error)) from None


def ancestors(conn, session_id: str) -> list[str]:
    """The parent, grandparent, … of a subagent's session (empty for a top-level one)."""
    chain: list[str] = []
    row = projections.get_session(conn, session_id)
    while row is not None and row.parent_session_id and row.parent_session_id not in chain:
        chain.append(row.parent_session_id)
        row = projections.get_session(conn, row.parent_session_id)
    return chain


def max_subagent_depth() -> int:
    """How deep subagents may nest: 1 (default) lets a session spawn children that
    cannot spawn in turn; 0 turns subagents off."""
    value = os.environ.get("LEHARNESS_MAX_DEPTH", "1")
    try:
        depth = int(value)
    except ValueError:
        raise UserError(f"LEHARNESS_MAX_DEPTH must be a whole number, not {value!r}") from None
    if depth < 0:
        raise UserError("LEHARNESS_MAX_DEPTH must be 0 or more")
    return depth
