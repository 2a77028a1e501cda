"""What a tool is, what it receives, and how a call is checked and run.

A tool is a pydantic argument model (its docstring is the description the
model sees, its fields the JSON schema) plus an async function. A tool from
elsewhere (an MCP server) brings a raw JSON schema instead: the model gets it
verbatim and the tool gets the call's JSON object unvalidated. Registration
is an explicit tuple of `Tool`s. Expected failures raise `ToolError`; the loop
records them as `tool.failed` and the model sees the message.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from leharness.errors import ToolError
from leharness.store import jsontext

if TYPE_CHECKING:
    from leharness.store import Event, Payload

    from .agents import Spawn
    from .tasks import TaskRuntime

#: Appends one event to the running session's log (and shows it on its channel).
Record = Callable[["Payload"], "Event"]


@dataclass
class ToolContext:
    """What a running tool may know and use: where it runs, for which session, and
    the loop's services it may call (typed fields, never looked up by name).

    File tools stay inside `cwd` and `allowed_paths` (see tools/paths.py); bash commands
    run in `sandbox` (see tools/sandbox.py). `tasks`, `spawn` and `record` are None where
    no session loop runs the tool (a test calling it directly, a benchmark).
    """

    cwd: Path
    session_id: str = ""
    home: Path | None = None
    call_id: str = ""
    tasks: TaskRuntime | None = None  # the session's background tasks (bash, subagents)
    spawn: Spawn | None = None  # starts a subagent; None at the maximum depth
    record: Record | None = None  # appends an event to this session's log
    allowed_paths: tuple[Path, ...] = ()
    sandbox: str = "off"  # bash's: read-only | workspace-write | off (see tools/sandbox.py)


#: A tool's function: (its validated arguments, or the raw dict for a raw-schema tool;
#: the context) -> the text the model sees. Not to be confused with the session loop.
ToolFunction = Callable[[Any, ToolContext], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    name: str
    args: type[BaseModel] | None  # None: `schema` is passed through, `run` gets the raw dict
    run: ToolFunction
    read_only: bool = False  # read-only calls in a row run together
    inline_limit: int | None = None  # bytes shown inline before an artifact (None: 8 KiB)
    schema: dict[str, Any] | None = None  # a raw JSON schema, sent to the model unchanged
    about: str | None = None  # the description when there is no argument model
    available: Callable[[], bool] | None = None  # False: withdrawn (e.g. its server crashed)
    mutates: bool = False  # runs commands or changes files: subject to the approval mode

    @property
    def description(self) -> str:
        if self.about is not None or self.args is None:
            return self.about or self.name
        return inspect.cleandoc(self.args.__doc__ or self.name)

    @property
    def live(self) -> bool:
        return self.available is None or self.available()

    def spec(self) -> dict[str, Any]:
        """The Chat Completions `tools` entry for this tool."""
        if self.args is None:
            schema = self.schema if self.schema is not None else {"type": "object"}
        else:
            from .schemas import parameters

            schema = parameters(self.args)
        return function_spec(self.name, self.description, schema)


def function_spec(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions `tools` entry: a function's name, description and JSON schema."""
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


class DeferredTool:
    """A tool offered by its stored spec whose module loads on its first call
    (`load()` gives the Tool; the spec is what that Tool's `spec()` gives). A plain
    class: a frozen dataclass costs ~0.5 ms to make at every start."""

    __slots__ = ("load", "name", "stored")
    live = True

    def __init__(self, name: str, load: Callable[[], Tool], stored: dict[str, Any]) -> None:
        self.name = name
        self.load = load
        self.stored = stored

    def spec(self) -> dict[str, Any]:
        return self.stored


class ToolRegistry:
    """The tools offered in one session, looked up by name."""

    def __init__(self, tools: Iterable[Tool | DeferredTool]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._specs: dict[str, dict[str, Any]] | None = None  # built once: schemas cost ~1.5 ms

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        """The tools offered to the model; a withdrawn tool is left out."""
        if self._specs is None:
            self._specs = {tool.name: tool.spec() for tool in self._tools.values()}
        return [self._specs[name] for name, tool in self._tools.items() if tool.live]

    def extended(self, tools: Iterable[Tool | DeferredTool]) -> ToolRegistry:
        """These tools plus more (a name already here keeps its tool)."""
        extra = [tool for tool in tools if tool.name not in self._tools]
        return ToolRegistry([*self._tools.values(), *extra])

    def only(self, names: Iterable[str]) -> ToolRegistry:
        wanted = set(names)
        return ToolRegistry(t for t in self._tools.values() if t.name in wanted)

    def parse(self, name: str, arguments: str) -> tuple[Tool, Any]:
        """Check a call before it runs: known tool, JSON object, valid arguments."""
        tool = self._tools.get(name)
        if isinstance(tool, DeferredTool):
            tool = self._tools[name] = tool.load()
        if tool is None:
            known = ", ".join(n for n, t in self._tools.items() if t.live) or "none"
            raise ToolError(f"unknown tool {name!r}; available tools: {known}", "unknown_tool")
        if not tool.live:
            raise ToolError(f"tool {name!r} was withdrawn: its server stopped", "withdrawn")
        try:
            raw = jsontext.loads(arguments or "{}")
        except json.JSONDecodeError as error:
            raise ToolError(
                f"arguments for {name} are not valid JSON ({error.msg} at position {error.pos}); "
                "send a JSON object matching the tool's schema",
                "bad_arguments",
            ) from None
        if not isinstance(raw, dict):
            raise ToolError(f"arguments for {name} must be a JSON object", "bad_arguments")
        if tool.args is None:  # a raw-schema tool: its own server checks the arguments
            return tool, raw
        try:
            return tool, tool.args.model_validate(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in error.errors()
            )
            raise ToolError(f"invalid arguments for {name}: {problems}", "bad_arguments") from None

    async def invoke(self, name: str, arguments: str, ctx: ToolContext) -> str:
        tool, args = self.parse(name, arguments)
        return await tool.run(args, ctx)
