"""Tools: the registry and the built-in tools, listed explicitly.

Tools may import the store and projections, never the loop or the CLI, and
never print: they return strings or raise ToolError.

A session's registry offers the built-in tools from their stored specs
(`core_tools.json` and `schemas.json`, checked against the code by
tests/test_tool_schemas.py) and imports a tool's module on its first call: a
run that calls no tool, or a few, does not load bash, files, search and the
rest (~14 ms of CPU of every one-turn `lh` start).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from .base import DeferredTool, Tool, ToolContext, ToolError, ToolRegistry

#: The core tools in the order the model is offered them: (name, module, attribute).
CORE: tuple[tuple[str, str, str], ...] = (
    ("bash", "bash", "BASH"),  # wrapped by checkpointed(): snapshots a git work tree
    ("read_file", "files", "READ_FILE"),
    ("write_file", "files", "WRITE_FILE"),
    ("edit_file", "files", "EDIT_FILE"),
    ("list_files", "search", "LIST_FILES"),
    ("grep", "search", "GREP"),
    ("wait_task", "task_tools", "WAIT_TASK"),
    ("read_task", "task_tools", "READ_TASK"),
    ("cancel_task", "task_tools", "CANCEL_TASK"),
    ("list_tasks", "task_tools", "LIST_TASKS"),
    ("spawn_agent", "agents", "SPAWN_AGENT"),
    ("load_skill", "skills", "LOAD_SKILL"),
)

__all__ = [
    "CORE",
    "CORE_TOOLS",
    "DeferredTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "core_tools",
    "default_registry",
]


@functools.cache
def core_tool(name: str) -> Tool:
    """The core tool `name`, its module imported."""
    module, attribute = next((m, a) for n, m, a in CORE if n == name)
    tool: Tool = getattr(importlib.import_module(f".{module}", __name__), attribute)
    if name == "bash":
        from .checkpoints import checkpointed

        tool = checkpointed(tool)  # snapshots a git work tree around each command
    return tool


def core_tools() -> tuple[Tool, ...]:
    """Every core tool, their modules imported."""
    return tuple(core_tool(name) for name, _, _ in CORE)


def default_registry() -> ToolRegistry:
    """The core tools, as a new registry (each module loads on the tool's first call)."""
    from .schemas import stored_spec

    return ToolRegistry(
        DeferredTool(name, functools.partial(core_tool, name), stored_spec(name))
        for name, _, _ in CORE
    )


def __getattr__(name: str) -> Any:
    if name == "CORE_TOOLS":  # the tuple every tool module loads for
        return core_tools()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
