"""Test support shipped with the package: a scripted OpenAI-compatible server.

from leharness.testing import ScriptedServer, Text, ToolCalls, Call
with ScriptedServer([ToolCalls(Call("bash", {"command": "echo hi"})), Text("done")]) as s:
    ...  # point lh at s.base_url (OPENAI_BASE_URL) and assert on s.requests
"""

from .rules import conversation_problems
from .server import (
    Call,
    Cut,
    Hang,
    HttpError,
    Raw,
    Recorded,
    ScriptedServer,
    Slow,
    Step,
    Text,
    ToolCalls,
)

__all__ = [
    "Call",
    "Cut",
    "Hang",
    "HttpError",
    "Raw",
    "Recorded",
    "ScriptedServer",
    "Slow",
    "Step",
    "Text",
    "ToolCalls",
    "conversation_problems",
]
