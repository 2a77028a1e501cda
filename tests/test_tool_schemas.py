"""The stored tool schemas (tools/schemas.json) are exactly what pydantic generates."""

from leharness.tools import CORE_TOOLS
from leharness.tools.schemas import _stored, generate, model_key


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
