"""The JSON schemas of the built-in tools' arguments, generated once per version.

pydantic builds a schema in ~1.5 ms, ~20 ms for the core tools on every start
of `lh`; the schemas only change when the code does, so they are kept in
`schemas.json` beside this file. `python -m leharness.tools.schemas` rewrites it;
tests/test_tool_schemas.py fails when it no longer matches the models.
"""

from __future__ import annotations

import json
import pkgutil
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel


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


def parameters(args: type[BaseModel]) -> dict[str, Any]:
    """The schema of `args`: the stored one when there is one, else generated."""
    stored = _stored().get(model_key(args))
    return stored if stored is not None else generate(args)


def write() -> Path:
    from . import CORE_TOOLS

    schemas = {model_key(t.args): generate(t.args) for t in CORE_TOOLS if t.args is not None}
    path = Path(__file__).with_name("schemas.json")
    path.write_text(json.dumps(schemas, indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    import sys

    sys.stdout.write(f"wrote {write()}\n")  # a developer's command, not the loop
