"""Subagents: the spawner spawn_agent uses to start and run a child session.

A child is a session of its own in the same database (`parent_session_id`,
`parent_task_id`) with a narrower tool set and one level more of depth; the
tool receives the spawner through its context, so tools never import the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from leharness import store
from leharness.store import events as ev

from .execute import remember_approvals
from .session import LoopSession, Result

if TYPE_CHECKING:
    from leharness.tools.agents import Spawn

#: Runs one invocation of a session: the runner's run_invocation.
Run = Callable[[LoopSession, str], Awaitable[Result]]


def spawner(session: LoopSession, run_child: Run) -> Spawn | None:
    """The function spawn_agent uses to start a child session of this one (None: too deep);
    `run_child` runs the child's invocation (the runner's run_invocation)."""
    if session.depth + 1 > session.max_depth:
        return None

    def spawn(prompt: str, agent_type: str, task_id: str) -> tuple[str, Any]:
        child_id = store.create_session(
            session.conn,
            ev.SessionCreated(
                cwd=str(session.cwd),
                provider=session.model.provider,
                model=session.model.model,
                parent_session_id=session.session_id,
                parent_task_id=task_id,
                agent_type=agent_type,
            ),
        )
        tools = session.tools
        if agent_type in ("explore", "plan"):
            from leharness.tools.agents import READ_ONLY_TOOLS  # loaded by the tool calling us

            tools = tools.only(READ_ONLY_TOOLS)
        if session.depth + 2 > session.max_depth:  # the child may not spawn in turn
            tools = tools.only(name for name in tools.names() if name != "spawn_agent")
        child = LoopSession(
            conn=session.conn,
            session_id=child_id,
            model=session.model,
            tools=tools,
            cwd=session.cwd,
            max_steps=session.max_steps,
            home=session.home,
            depth=session.depth + 1,
            max_depth=session.max_depth,
            context_window=session.context_window,
            allowed_paths=session.allowed_paths,
            sandbox=session.sandbox,
            approval=remember_approvals(session).for_subagent(),
            hooks=session.hooks,
        )

        async def run() -> tuple[str, str]:
            try:
                result = await run_child(child, prompt)
            finally:
                await child.tasks.shutdown("parent")  # the child's own tasks end with it
            return result.reason, result.text

        return child_id, run

    return spawn
