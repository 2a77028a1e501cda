"""The model every lh trial of the Harbor stage talks to: the scripted
OpenAI-compatible server, answering from what it is sent. A task whose
instruction says NOTHING-TASK gets a plain answer and no tool call; any other
first gets a bash call that makes /app/hello.txt, then a final answer.

usage: python model_server.py PORT_FILE     (serves on 127.0.0.1 until killed)
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from leharness.testing.server import Call, ScriptedServer, Step, Text, ToolCalls


def respond(body: dict[str, Any]) -> Step:
    messages = body.get("messages", [])
    prompt = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    if "NOTHING-TASK" in str(prompt):
        return Text("I leave everything as it is.", prompt_tokens=50, completion_tokens=8)
    if messages and messages[-1].get("role") == "tool":
        return Text("Created /app/hello.txt.", prompt_tokens=90, completion_tokens=6)
    return ToolCalls(Call("bash", {"command": "echo hello > /app/hello.txt"}), prompt_tokens=60)


def main(port_file: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ScriptedServer(responder=respond) as server:
        Path(port_file).write_text(server.base_url)
        stop.wait()


if __name__ == "__main__":
    main(sys.argv[1])
