"""The JSON schemas of the built-in tools' arguments, generated once per version.

pydantic builds a schema in ~1.5 ms, ~20 ms for the core tools on every start
of `lh`; the schemas only change when the code does, so they are kept in
`schemas.json` beside this file. `core_tools.json` keeps each core tool's
description and argument model, so that a session offers the tools without
importing their modules (tools/__init__.py). `python -m leharness.tools.schemas`
rewrites both; tests/test_tool_schemas.py fails when they no longer match the code.
"""

from __future__ import annotations

import json
import pkgutil
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .base import function_spec


def model_key(args: type[BaseModel]) -> str:
    return f"{args.__module__}.{args.__qualname__}"


def generate(args: type[BaseModel]) -> dict[str, Any]:
    schema = args.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    return schema


@cache
def _stored() -> dict[str, dict[str, Any]]:
    raw = pkgutil.get_data(__package__, "schemas.json")
    return json.loads(raw) if raw else {}


@cache
def _core() -> dict[str, dict[str, Any]]:
    raw = pkgutil.get_data(__package__, "core_tools.json")
    return json.loads(raw) if raw else {}


def stored_spec(name: str) -> dict[str, Any]:
    """The Chat Completions `tools` entry of the core tool `name`, as its `Tool.spec()`
    gives it, from the stored files (the tool's module is not imported)."""
    core = _core()[name]
    return function_spec(name, core["description"], _stored()[core["args"]])


def parameters(args: type[BaseModel]) -> dict[str, Any]:
    """The schema of `args`: the stored one when there is one, else generated."""
    stored = _stored().get(model_key(args))
    return stored if stored is not None else generate(args)


def generate_core() -> dict[str, dict[str, str]]:
    """What core_tools.json holds: each core tool's description and argument model."""
    from . import core_tools

    return {
        t.name: {"description": t.description, "args": model_key(t.args)}
        for t in core_tools()
        if t.args is not None
    }


def write() -> Path:
    from . import core_tools

    schemas = {model_key(t.args): generate(t.args) for t in core_tools() if t.args is not None}
    path = Path(__file__).with_name("schemas.json")
    path.write_text(json.dumps(schemas, indent=1, sort_keys=True) + "\n")
    core = path.with_name("core_tools.json")
    core.write_text(json.dumps(generate_core(), indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    import sys

    # a developer's command, not the loop
    sys.stdout.write(f"wrote {write()} and core_tools.json\n")
