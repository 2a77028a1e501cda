"""Provider and model choice: flags > environment > defaults; clear errors."""

from __future__ import annotations

import pytest

from leharness.loop.providers import ProviderConfigError, resolve_provider


def test_openai_when_a_key_is_set():
    config = resolve_provider(env={"OPENAI_API_KEY": "sk-test"})
    assert (config.provider, config.model, config.base_url) == ("openai", "gpt-4o-mini", None)
    assert "sk-test" not in repr(config)


def test_ollama_without_a_key():
    config = resolve_provider(env={})
    assert (config.provider, config.model) == ("ollama", "gemma4:26b")
    assert config.base_url == "http://localhost:11434/v1"


def test_flags_beat_environment_beats_defaults():
    env = {
        "OPENAI_API_KEY": "k",
        "LEHARNESS_PROVIDER": "ollama",
        "LEHARNESS_MODEL": "env-model",
        "LEHARNESS_OLLAMA_BASE_URL": "http://127.0.0.1:9/v1",
    }
    assert resolve_provider(env=env).provider == "ollama"
    assert resolve_provider(env=env).model == "env-model"
    assert resolve_provider(env=env).base_url == "http://127.0.0.1:9/v1"
    flagged = resolve_provider("openai", "flag-model", "http://127.0.0.1:8/v1", env=env)
    assert (flagged.provider, flagged.model, flagged.base_url) == (
        "openai",
        "flag-model",
        "http://127.0.0.1:8/v1",
    )


def test_openai_base_url_from_environment():
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:7/v1"}
    assert resolve_provider(env=env).base_url == "http://127.0.0.1:7/v1"


def test_openai_without_a_key_says_how_to_fix_it():
    with pytest.raises(ProviderConfigError, match="OPENAI_API_KEY is not set: export"):
        resolve_provider("openai", env={})


def test_unknown_provider():
    with pytest.raises(ProviderConfigError, match="unknown provider 'anthropic'"):
        resolve_provider("anthropic", env={})
