"""Choosing a provider and model from flags, environment and defaults.

Precedence: `--provider` > `LEHARNESS_PROVIDER` > `openai` when
`OPENAI_API_KEY` is set, else `ollama`; `--model` > `LEHARNESS_MODEL` > the
provider's default. Problems are `ProviderConfigError`s that say how to fix them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "ollama": "gemma4:26b"}
OLLAMA_DEFAULT_URL = "http://localhost:11434/v1"


class ProviderConfigError(Exception):
    """The provider cannot be used as configured (missing key, unknown name)."""


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
    env: dict[str, str] | None = None,
) -> ProviderConfig:
    env = dict(os.environ) if env is None else env
    key = env.get("OPENAI_API_KEY", "")
    name = (provider or env.get("LEHARNESS_PROVIDER") or default_provider(env)).lower()
    if name not in DEFAULT_MODELS:
        raise ProviderConfigError(
            f"unknown provider {name!r}: choose one of {', '.join(DEFAULT_MODELS)}"
        )
    chosen_model = model or env.get("LEHARNESS_MODEL") or DEFAULT_MODELS[name]
    if name == "openai":
        url = base_url or env.get("OPENAI_BASE_URL") or None
        if not key:
            raise ProviderConfigError(
                "OPENAI_API_KEY is not set: export OPENAI_API_KEY=sk-... "
                "or use a local model with --provider ollama"
            )
        return ProviderConfig("openai", chosen_model, url, key)
    url = base_url or env.get("LEHARNESS_OLLAMA_BASE_URL") or OLLAMA_DEFAULT_URL
    return ProviderConfig("ollama", chosen_model, url, "ollama")
