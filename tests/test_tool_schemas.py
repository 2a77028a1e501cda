"""The stored tool schemas (tools/schemas.json) are exactly what pydantic generates, and
the stored core tool specs (tools/core_tools.json) exactly what the tools offer."""

import pytest

from leharness.tools import CORE, CORE_TOOLS, DeferredTool, ToolError, default_registry
from leharness.tools.base import ToolRegistry
from leharness.tools.schemas import _core, _stored, generate, generate_core, model_key


def test_stored_schemas_match_the_argument_models():
    stored = _stored()
    for tool in CORE_TOOLS:
        if tool.args is None:
            continue
        assert stored.get(model_key(tool.args)) == generate(tool.args), (
            f"{tool.name}: schemas.json is stale; run python -m leharness.tools.schemas"
        )


def test_a_tool_spec_uses_the_stored_schema():
    spec = CORE_TOOLS[0].spec()
    assert spec["function"]["parameters"] is _stored()[model_key(CORE_TOOLS[0].args)]


def test_stored_core_specs_match_the_tools():
    assert _core() == generate_core(), (
        "core_tools.json is stale; run python -m leharness.tools.schemas"
    )
    assert [name for name, _, _ in CORE] == [tool.name for tool in CORE_TOOLS]


def test_a_session_offers_the_core_tools_without_loading_them_as_loaded_tools_would():
    registry = default_registry()
    assert all(isinstance(entry, DeferredTool) for entry in registry._tools.values())
    assert registry.specs() == ToolRegistry(CORE_TOOLS).specs()
    assert (
        registry.only(["grep", "bash"]).specs()
        == ToolRegistry(CORE_TOOLS[:6]).only(["grep", "bash"]).specs()
    )


def test_a_deferred_tool_is_the_core_tool_once_called():
    registry = default_registry()
    tool, _ = registry.parse("list_tasks", "{}")
    assert tool is CORE_TOOLS[[t.name for t in CORE_TOOLS].index("list_tasks")]
    assert registry._tools["list_tasks"] is tool and isinstance(
        registry._tools["grep"], DeferredTool
    )
    with pytest.raises(ToolError, match="invalid arguments for read_file"):
        registry.parse("read_file", '{"nope": 1}')
