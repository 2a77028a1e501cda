"""Hooks: commands the user configures in settings.toml, run at points of the loop.

    [[hooks.pre_tool]]
    match = "bash"            # a tool name or a glob; omitted: every tool
    command = "./policy.sh"   # run by the shell, in the session's working directory
    timeout_s = 30

Points: pre_tool, post_tool (filtered by tool name), invocation_start,
invocation_end, compaction. Each run gets a JSON object on stdin (the point,
the session, the event) and is recorded as a `hook.ran` event. A pre_tool hook
that exits 2 blocks the call; its stderr is the error the model sees (Claude
Code's convention). A hook that outlives its timeout is killed, with its
process group. Nothing here prints; the loop records what ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leharness.errors import UserError

POINTS = ("pre_tool", "post_tool", "invocation_start", "invocation_end", "compaction")
TOOL_POINTS = ("pre_tool", "post_tool")
BLOCK_EXIT_CODE = 2
DEFAULT_TIMEOUT_S = 60.0
STDERR_TAIL = 2000  # characters of stderr kept in the event


class HookConfigError(UserError, ValueError):
    """The `hooks` table of settings.toml is not in the expected shape."""


@dataclass(frozen=True)
class Hook:
    point: str
    command: str
    match: str | None = None  # tool name or glob (tool points only)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def applies(self, tool: str | None) -> bool:
        return self.match is None or tool is None or fnmatch.fnmatchcase(tool, self.match)


@dataclass(frozen=True)
class Hooks:
    """Every configured hook; empty by default, and then nothing runs."""

    hooks: tuple[Hook, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def at(self, point: str, tool: str | None = None) -> list[Hook]:
        return [h for h in self.hooks if h.point == point and h.applies(tool)]


@dataclass(frozen=True)
class HookRun:
    """What one run of a hook did."""

    hook: Hook
    exit_code: int | None  # None: killed after its timeout, or could not start
    duration_ms: int
    stderr: str
    timed_out: bool = False

    @property
    def blocks(self) -> bool:
        return self.hook.point == "pre_tool" and self.exit_code == BLOCK_EXIT_CODE


def parse_hooks(table: Any) -> Hooks:
    """The `hooks` table of settings.toml as Hooks; HookConfigError says what is wrong."""
    if not isinstance(table, dict):
        raise HookConfigError("hooks must be a table such as [[hooks.pre_tool]]")
    found: list[Hook] = []
    for point, entries in table.items():
        if point not in POINTS:
            raise HookConfigError(f"unknown hook point {point!r}; known: {', '.join(POINTS)}")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise HookConfigError(f"hooks.{point} must be written [[hooks.{point}]]")
        found += [_hook(point, entry) for entry in entries]
    return Hooks(tuple(found))


def _hook(point: str, entry: dict[str, Any]) -> Hook:
    unknown = set(entry) - {"command", "match", "timeout_s"}
    if unknown:
        raise HookConfigError(f"hooks.{point}: unknown key {sorted(unknown)[0]!r}")
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise HookConfigError(f"hooks.{point}: command must be a non-empty string")
    match = entry.get("match")
    if match is not None and (not isinstance(match, str) or point not in TOOL_POINTS):
        raise HookConfigError(f"hooks.{point}: match is a tool name or glob, for tool hooks only")
    timeout = entry.get("timeout_s", DEFAULT_TIMEOUT_S)
    if type(timeout) not in (int, float) or timeout <= 0:
        raise HookConfigError(f"hooks.{point}: timeout_s must be a number of seconds above 0")
    return Hook(point, command, match, float(timeout))


async def run_hook(hook: Hook, payload: dict[str, Any], cwd: Path) -> HookRun:
    """Run one hook with `payload` as JSON on stdin; kill it (and its children) on timeout."""
    started = time.monotonic()
    env = {**os.environ, "LEHARNESS_HOOK": hook.point}
    if payload.get("session_id"):
        env["LEHARNESS_SESSION_ID"] = str(payload["session_id"])
    try:
        proc = await asyncio.create_subprocess_shell(
            hook.command,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
    except OSError as error:
        return HookRun(hook, None, _ms(started), f"could not start: {error}")
    data = json.dumps(payload).encode()
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(data), hook.timeout_s)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        note = f"killed after its timeout of {hook.timeout_s:g} s"
        return HookRun(hook, None, _ms(started), note, timed_out=True)
    except asyncio.CancelledError:
        _kill(proc)
        raise
    text = stderr.decode("utf-8", errors="replace")
    return HookRun(hook, proc.returncode, _ms(started), text[-STDERR_TAIL:])


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
