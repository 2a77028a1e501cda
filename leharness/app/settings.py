"""Settings: every configurable value, and where it came from (`lh config` shows them).

Per key, the first that is set wins: a command-line flag, an environment
variable, the settings file `$LEHARNESS_HOME/settings.toml`, the default. TOML
because people write it by hand (comments, no trailing-comma traps) and the
standard library reads it; lh never writes it. Only the app reads
configuration: the library below receives plain values. This is the one
resolver: the provider a model client uses (app/providers.py) comes from it too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from leharness.errors import UserError

SETTINGS_FILE = "settings.toml"
KEYS: dict[str, type] = {
    "provider": str,
    "model": str,
    "base_url": str,
    "approval": str,
    "max_steps": int,
    "context_window": int,
    "sandbox": str,
}
ENV_VARS = {
    "provider": "LEHARNESS_PROVIDER",
    "model": "LEHARNESS_MODEL",
    "approval": "LEHARNESS_APPROVAL",
    "max_steps": "LEHARNESS_MAX_STEPS",
    "context_window": "LEHARNESS_CONTEXT_WINDOW",
    "sandbox": "LEHARNESS_SANDBOX",
}  # base_url's variable depends on the provider: see base_url_env()
DEFAULT_MAX_STEPS = 50
APPROVAL_MODES = ("ask", "auto", "read-only")  # as tools/approval.py MODES (kept import-free)
SANDBOX_MODES = ("read-only", "workspace-write", "off")  # as tools/sandbox.py MODES
CHOICES = {"approval": APPROVAL_MODES, "sandbox": SANDBOX_MODES}
MINIMUMS = {"context_window": 1_000}  # whole numbers below this are refused (others: 1)

Source = Literal["flag", "env", "settings", "default"]


@dataclass(frozen=True)
class Value:
    key: str
    value: Any
    source: Source
    origin: str = ""  # the flag, variable or file it came from; for a default, why


@dataclass(frozen=True)
class Settings:
    values: dict[str, Value]
    path: Path  # the settings file, whether or not it exists

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value


def settings_path(home: Path | None = None) -> Path:
    from leharness.store import home_dir

    return (home or home_dir()) / SETTINGS_FILE


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's values, checked (none when it does not exist); UserError naming it."""
    from leharness.store.connection import StoreError, check_home

    try:
        check_home(path.parent)  # a home that is a file: the same line every command gives
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except StoreError as error:
        raise UserError(str(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the settings file: {error}") from None
    import tomllib  # only for a file that exists: its regexes cost every start ~4 ms

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None
    for key, value in data.items():
        if key == "hooks":  # a table of its own: load_hooks reads it
            _hooks_of(data, path)
            continue
        if key not in KEYS:
            raise UserError(f"{path}: unknown setting {key!r}; known: {', '.join(KEYS)}")
        problem = _check(key, value)
        if problem:
            raise UserError(f"{path}: {key} {problem}, not {value!r}")
    return data


def load_hooks(home: Path | None = None):
    """The hooks of settings.toml (`[[hooks.pre_tool]]` …); none when there is no file."""
    path = settings_path(home)
    return _hooks_of(read_settings_file(path), path)


def _hooks_of(data: dict[str, Any], path: Path):
    from leharness.tools.hooks import HookConfigError, Hooks, parse_hooks

    if "hooks" not in data:
        return Hooks()
    try:
        return parse_hooks(data["hooks"])
    except HookConfigError as error:
        raise UserError(f"{path}: {error}") from None


def resolve_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Settings:
    """Each setting's effective value: flag > env > settings file > default."""
    from .providers import DEFAULT_MODELS, OLLAMA_DEFAULT_URL, default_provider

    flags = flags or {}
    env = os.environ if env is None else env
    path = settings_path(home)
    in_file = read_settings_file(path)

    def pick(key: str, variable: str, default: Any, why: str = "") -> Value:
        if flags.get(key) is not None:
            return Value(key, flags[key], "flag", "--" + key.replace("_", "-"))
        if env.get(variable):
            return Value(key, _from_env(key, variable, env[variable]), "env", variable)
        if key in in_file:
            return Value(key, in_file[key], "settings", str(path))
        return Value(key, default, "default", why)

    has_key = "OPENAI_API_KEY is set" if env.get("OPENAI_API_KEY") else "no OPENAI_API_KEY"
    provider = pick("provider", ENV_VARS["provider"], default_provider(env), has_key)
    name = str(provider.value).lower()
    url_default = None if name == "openai" else OLLAMA_DEFAULT_URL
    values = [
        provider,
        pick("model", ENV_VARS["model"], DEFAULT_MODELS.get(name), f"{name}'s default"),
        pick("base_url", base_url_env(name), url_default, f"{name}'s default"),
        pick("approval", ENV_VARS["approval"], "ask", "on a terminal; refused without one"),
        pick("max_steps", ENV_VARS["max_steps"], DEFAULT_MAX_STEPS),
        pick("context_window", ENV_VARS["context_window"], None, "the model's (else 32,000)"),
        pick("sandbox", ENV_VARS["sandbox"], None, "workspace-write where bubblewrap works"),
    ]
    return Settings({value.key: value for value in values}, path)


def base_url_env(provider: str) -> str:
    return "OPENAI_BASE_URL" if provider == "openai" else "LEHARNESS_OLLAMA_BASE_URL"


def _check(key: str, value: Any) -> str:
    """Why `value` cannot be the setting `key` ("" when it can)."""
    from .providers import DEFAULT_MODELS

    if key == "provider" and str(value).lower() not in DEFAULT_MODELS:
        return f"must be one of {', '.join(DEFAULT_MODELS)}"
    if key in CHOICES and value not in CHOICES[key]:
        return f"must be one of {', '.join(CHOICES[key])}"
    if KEYS[key] is int:
        low = MINIMUMS.get(key, 1)
        ok = type(value) is int and value >= low  # type(): True is an int to Python
        return "" if ok else f"must be a whole number of {low:,} or more"
    return "" if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _from_env(key: str, variable: str, text: str) -> Any:
    if key in CHOICES and text not in CHOICES[key]:
        raise UserError(f"{variable} must be one of {', '.join(CHOICES[key])}, not {text!r}")
    if KEYS[key] is not int:
        return text
    try:
        number = int(text)
    except ValueError:
        number = 0
    low = MINIMUMS.get(key, 1)
    if number < low:
        raise UserError(f"{variable} must be a whole number of {low:,} or more, not {text!r}")
    return number
