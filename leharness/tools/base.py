"""What a tool is, what it receives, and how a call is checked and run.

A tool is a pydantic argument model (its docstring is the description the
model sees, its fields the JSON schema) plus an async function. Registration
is an explicit tuple of `Tool`s. Expected failures raise `ToolError`; the loop
records them as `tool.failed` and the model sees the message.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError


class ToolError(Exception):
    """A tool call failed in a way the model should hear about (becomes tool.failed)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class ToolContext:
    """What a running tool may know: where it runs and for which session.

    File tools stay inside `cwd` and `allowed_paths` (see tools/paths.py).
    """

    cwd: Path
    session_id: str = ""
    home: Path | None = None
    call_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    allowed_paths: tuple[Path, ...] = ()


Runner = Callable[[Any, ToolContext], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    name: str
    args: type[BaseModel]
    run: Runner
    read_only: bool = False  # read-only calls in a row run together
    mutates: bool = False  # runs commands or changes files: subject to the approval mode

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.args.__doc__ or self.name)

    def spec(self) -> dict[str, Any]:
        """The Chat Completions `tools` entry for this tool."""
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }


class ToolRegistry:
    """The tools offered in one session, looked up by name."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._specs: list[dict[str, Any]] | None = None  # built once: schemas cost ~1.5 ms

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        if self._specs is None:
            self._specs = [tool.spec() for tool in self._tools.values()]
        return self._specs

    def only(self, names: Iterable[str]) -> ToolRegistry:
        wanted = set(names)
        return ToolRegistry(t for t in self._tools.values() if t.name in wanted)

    def parse(self, name: str, arguments: str) -> tuple[Tool, BaseModel]:
        """Check a call before it runs: known tool, JSON object, valid arguments."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            raise ToolError(f"unknown tool {name!r}; available tools: {known}", "unknown_tool")
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as error:
            raise ToolError(
                f"arguments for {name} are not valid JSON ({error.msg} at position {error.pos}); "
                "send a JSON object matching the tool's schema",
                "bad_arguments",
            ) from None
        if not isinstance(raw, dict):
            raise ToolError(f"arguments for {name} must be a JSON object", "bad_arguments")
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
