"""Reading `$LEHARNESS_HOME/mcp.json`: which MCP servers to start and how.

The common format: `{"mcpServers": {name: {"command", "args", "env"} |
{"type": "http", "url", "headers"}}}`. `${VAR}` and `${VAR:-default}` in
strings are taken from the environment, so secrets stay out of the file. A
bad entry becomes a `ConfigProblem` and the other entries still load; only a
file that is not a JSON object at all is unusable as a whole.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from leharness.errors import UserError
from leharness.store import jsontext
from leharness.store.text import lone_surrogate, storable

from ..redact import register

HTTP_TYPES = ("http", "streamable-http", "streamableHttp", "streamable_http")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigFileError(UserError):
    """mcp.json cannot be read or is not a JSON object with `mcpServers`."""


class StdioServer(BaseModel):
    """A server started as a subprocess, speaking MCP over its stdin/stdout."""

    model_config = ConfigDict(extra="ignore")
    name: str
    type: Literal["stdio"] = "stdio"
    command: str
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None

    @field_validator("command")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def transport(self) -> str:
        return "stdio"


class HttpServer(BaseModel):
    """A server reached over streamable HTTP at `url`."""

    model_config = ConfigDict(extra="ignore")
    name: str
    type: str = "http"
    url: str
    headers: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @property
    def transport(self) -> str:
        return "http"


ServerConfig = StdioServer | HttpServer


@dataclass(frozen=True)
class ConfigProblem:
    """One entry of mcp.json that could not be used, and why."""

    server: str
    error: str


@dataclass
class McpConfig:
    servers: list[ServerConfig] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)


def config_path(home: Path) -> Path:
    return home / "mcp.json"


def load_config(path: Path, environ: dict[str, str] | None = None) -> McpConfig:
    """The servers of mcp.json; a missing file means none. Raises ConfigFileError when the
    file as a whole is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return McpConfig()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigFileError(f"{path}: cannot be read ({error})") from None
    config = parse_config(text, str(path), os.environ if environ is None else environ)
    for server in config.servers:  # a token written only here must be redacted like env's
        if isinstance(server, StdioServer):
            register(server.env)
        else:
            register(server.headers, headers=True)
    return config


def parse_config(text: str, where: str, environ: Any) -> McpConfig:
    try:
        document = jsontext.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ConfigFileError(
            f"{where} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(document, dict):
        raise ConfigFileError(f'{where} must hold a JSON object like {{"mcpServers": {{...}}}}')
    if (found := lone_surrogate(document)) is not None:
        raise ConfigFileError(
            f'{where} holds "{storable(found)}": a JSON escape of a lone surrogate '
            "(\\ud800 to \\udfff) is no text that a name, a command or an event can carry"
        )
    entries = document.get("mcpServers", {})
    if not isinstance(entries, dict):
        raise ConfigFileError(f'{where}: "mcpServers" must be an object of name: server')
    config = McpConfig()
    for name, entry in entries.items():
        try:
            server = parse_entry(name, entry, environ)
        except ValueError as error:
            config.problems.append(ConfigProblem(name, str(error)))
            continue
        if server is not None:
            config.servers.append(server)
    return config


def parse_entry(name: str, entry: Any, environ: Any) -> ServerConfig | None:
    """One server entry (None: `"disabled": true`); ValueError says what is wrong with it."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
        raise ValueError("a server name uses letters, digits, _ and - (at most 40)")
    if not isinstance(entry, dict):
        raise ValueError("must be an object with a command or a url")
    if entry.get("disabled") is True:
        return None
    kind = entry.get("type") or ("http" if "url" in entry and "command" not in entry else "stdio")
    if kind != "stdio" and kind not in HTTP_TYPES:
        raise ValueError(f"unsupported type {kind!r}: use stdio (a command) or http (a url)")
    values = {**expand(entry, environ), "name": name, "type": "stdio" if kind == "stdio" else kind}
    try:
        if kind == "stdio":
            return StdioServer.model_validate(values)
        return HttpServer.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in error.errors()
        )
        raise ValueError(problems) from None


def expand(value: Any, environ: Any) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; an unset VAR is an error."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _lookup(match, environ), value)
    if isinstance(value, list):
        return [expand(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: expand(item, environ) for key, item in value.items()}
    return value


def _lookup(match: re.Match[str], environ: Any) -> str:
    name, default = match.group(1), match.group(2)
    if name in environ:
        return environ[name]
    if default is not None:
        return default
    raise ValueError(f"environment variable {name} is not set (used as ${{{name}}})")
