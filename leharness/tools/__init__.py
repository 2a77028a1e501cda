"""Tools: the registry and the built-in tools, listed explicitly.

Tools may import the store and projections, never the loop or the CLI, and
never print: they return strings or raise ToolError.
"""

from .agents import SPAWN_AGENT
from .base import Tool, ToolContext, ToolError, ToolRegistry
from .bash import BASH
from .checkpoints import checkpointed
from .files import EDIT_FILE, READ_FILE, WRITE_FILE
from .search import GREP, LIST_FILES
from .skills import LOAD_SKILL
from .task_tools import CANCEL_TASK, LIST_TASKS, READ_TASK, WAIT_TASK

CORE_TOOLS: tuple[Tool, ...] = (
    checkpointed(BASH),  # snapshots a git work tree around each command
    READ_FILE,
    WRITE_FILE,
    EDIT_FILE,
    LIST_FILES,
    GREP,
    WAIT_TASK,
    READ_TASK,
    CANCEL_TASK,
    LIST_TASKS,
    SPAWN_AGENT,
    LOAD_SKILL,
)

__all__ = ["CORE_TOOLS", "Tool", "ToolContext", "ToolError", "ToolRegistry", "default_registry"]


def default_registry() -> ToolRegistry:
    """The core tools, as a new registry."""
    return ToolRegistry(CORE_TOOLS)
