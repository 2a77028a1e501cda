"""The typed seams: what a type checker sees of events and of a tool's context.

`.ci/run` runs mypy over all of leharness/ (settings in pyproject.toml); these tests pin
the two seams that used to hide everything from it.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import get_args

from leharness.store import events as ev
from leharness.tools.base import ToolContext

ROOT = Path(__file__).parents[1]


def test_the_payload_union_names_every_model_statically() -> None:
    models = set(get_args(ev.AnyPayload))
    assert models == set(ev.PAYLOAD_MODELS) == set(ev.Payload.__subclasses__())
    assert list(ev.EVENT_TYPES.values()) == list(ev.PAYLOAD_MODELS)


def test_mypy_checks_a_payload_field_once_the_type_is_narrowed(tmp_path: Path) -> None:
    snippet = tmp_path / "reader.py"
    snippet.write_text(
        "from leharness.store.events import Event\n"
        "\n"
        "\n"
        "def result(event: Event) -> str:\n"
        '    if event.data.type == "tool.completed":\n'
        "        return event.data.result\n"
        '    if event.data.type == "tool.failed":\n'
        "        return event.data.no_such_field\n"
        '    return ""\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), str(snippet)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout
    assert 'reader.py:8: error: "ToolFailed" has no attribute "no_such_field"' in errors[0]


def test_a_tool_context_names_what_a_tool_may_use_from_the_loop() -> None:
    fields = {field.name for field in dataclasses.fields(ToolContext)}
    assert {"tasks", "spawn", "record"} <= fields
    assert "extra" not in fields  # no untyped bag of services
    bare = ToolContext(cwd=ROOT)
    assert (bare.tasks, bare.spawn, bare.record) == (None, None, None)
