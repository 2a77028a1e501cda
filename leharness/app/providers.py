"""The provider and model a model client uses, from the one settings resolver.

Precedence (settings.py owns it): `--provider` > `LEHARNESS_PROVIDER` >
settings.toml > `openai` when `OPENAI_API_KEY` is set, else `ollama`;
`--model` > `LEHARNESS_MODEL` > settings.toml > the provider's default. Problems
are `ProviderConfigError`s that say how to fix them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from leharness.errors import ProviderConfigError

if TYPE_CHECKING:
    from .settings import Settings

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "ollama": "gemma4:26b"}
OLLAMA_DEFAULT_URL = "http://localhost:11434/v1"


@dataclass(frozen=True)
class ProviderConfig:
    provider: str
    model: str
    base_url: str | None
    api_key: str = field(repr=False, default="")


def default_provider(env: Mapping[str, str]) -> str:
    """`openai` when an OpenAI key is set, else a local `ollama`."""
    return "openai" if env.get("OPENAI_API_KEY") else "ollama"


def resolve_provider(
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> ProviderConfig:
    """The provider, model, base URL and key a model client uses: the given values act as
    flags over the one resolver (`settings.resolve_settings`: flag > env > settings.toml >
    default), then the provider is checked (a known name; OpenAI needs its key)."""
    from .settings import resolve_settings

    env = dict(os.environ) if env is None else env
    flags = {"provider": provider or None, "model": model or None, "base_url": base_url or None}
    return provider_config(resolve_settings(flags, env, home), env)


def provider_config(settings: Settings, env: Mapping[str, str]) -> ProviderConfig:
    """The resolved settings' provider, checked: a ProviderConfigError says how to fix it."""
    name = str(settings["provider"]).lower()
    if name not in DEFAULT_MODELS:
        raise ProviderConfigError(
            f"unknown provider {name!r}: choose one of {', '.join(DEFAULT_MODELS)}"
        )
    from leharness.store.text import lone_surrogate, storable

    chosen_model = settings["model"] or DEFAULT_MODELS[name]
    for key_name in ("model", "base_url"):
        value = settings.values[key_name]
        if isinstance(value.value, str) and lone_surrogate(value.value) is not None:
            raise ProviderConfigError(  # a byte of an environment variable that is not UTF-8
                f"the {key_name.replace('_', ' ')} '{storable(value.value)}' holds a byte that "
                "is not UTF-8 (`lh config` shows where it is set)"
            )
    if name == "openai":
        key = env.get("OPENAI_API_KEY", "")
        if not key:
            raise ProviderConfigError(
                "OPENAI_API_KEY is not set: export OPENAI_API_KEY=sk-... "
                "or use a local model with --provider ollama"
            )
        if not key.isascii():  # it goes out in an HTTP header
            raise ProviderConfigError(
                "OPENAI_API_KEY holds characters that are not ASCII, which no HTTP "
                "header can carry: check how it was set"
            )
        return ProviderConfig("openai", chosen_model, settings["base_url"] or None, key)
    url = settings["base_url"] or OLLAMA_DEFAULT_URL
    return ProviderConfig("ollama", chosen_model, url, "ollama")
