"""Provider and model choice: flags > environment > settings.toml > defaults; clear errors."""

from __future__ import annotations

import re

import pytest

from leharness.app.providers import ProviderConfigError, resolve_provider


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


def test_the_provider_comes_from_the_one_settings_resolver(tmp_path):
    """flag > env > settings.toml > default, for the client's provider, model and base URL
    as for `lh config` (the same resolver answers both)."""
    from leharness.app.settings import resolve_settings

    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.toml").write_text(
        'provider = "ollama"\nmodel = "from-settings"\nbase_url = "http://127.0.0.1:6/v1"\n'
    )
    env = {"OPENAI_API_KEY": "k"}  # the default would be openai; settings.toml says ollama
    from_file = resolve_provider(env=env, home=home)
    assert (from_file.provider, from_file.model, from_file.base_url) == (
        "ollama",
        "from-settings",
        "http://127.0.0.1:6/v1",
    )
    shown = resolve_settings(env=env, home=home)
    assert (shown["provider"], shown["model"], shown["base_url"]) == (
        from_file.provider,
        from_file.model,
        from_file.base_url,
    )
    env |= {"LEHARNESS_MODEL": "from-env", "LEHARNESS_OLLAMA_BASE_URL": "http://127.0.0.1:5/v1"}
    from_env = resolve_provider(env=env, home=home)
    assert (from_env.model, from_env.base_url) == ("from-env", "http://127.0.0.1:5/v1")
    flagged = resolve_provider("openai", "from-flag", None, env=env, home=home)
    # openai's base URL variable is unset, so settings.toml's base_url applies
    assert (flagged.provider, flagged.model, flagged.api_key) == ("openai", "from-flag", "k")
    assert flagged.base_url == "http://127.0.0.1:6/v1"
    assert resolve_provider(env={}, home=tmp_path / "empty").model == "gemma4:26b"


def test_the_model_command_switches_through_the_same_resolver(isolated_home, monkeypatch):
    """`/model NAME` builds its client with model_client(provider, NAME, base_url): the
    given name wins, settings.toml fills in nothing the flags gave."""
    from leharness.app.session import model_client

    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text('model = "from-settings"\n')
    monkeypatch.setenv("LEHARNESS_MODEL", "from-env")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert model_client("ollama", "switched", None).model == "switched"
    assert model_client("ollama", None, None).model == "from-env"
    monkeypatch.delenv("LEHARNESS_MODEL")
    assert model_client("ollama", None, None).model == "from-settings"
    with pytest.raises(ProviderConfigError, match="unknown provider 'nope'"):
        model_client("nope", None, None)


def test_the_app_builds_sessions_without_the_cli():
    """The composition root is for the CLI, tests, benchmarks and any API: importing it
    loads neither click nor any leharness.cli module."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "import leharness.app.session, leharness.app.doctor, leharness.app.settings\n"
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'click'"
        " or m.startswith('leharness.cli')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    ("env", "said"),
    [
        # a byte of the environment that is not UTF-8 (os.fsdecode's surrogate) stopped the
        # run with a traceback when session.created was stored or the URL was built
        ({"LEHARNESS_MODEL": "gpt\udcff"}, "the model 'gpt\\xff' holds a byte that is not UTF-8"),
        (
            {"OPENAI_BASE_URL": "http://127.0.0.1:1/\udcff"},
            "the base url 'http://127.0.0.1:1/\\xff' holds a byte that is not UTF-8",
        ),
        # sent in an HTTP header, which httpx encodes as ASCII: a UnicodeEncodeError
        ({"OPENAI_API_KEY": "sk-\udcff"}, "OPENAI_API_KEY holds characters that are not ASCII"),
        ({"OPENAI_API_KEY": "sk-clé"}, "OPENAI_API_KEY holds characters that are not ASCII"),
    ],
)
def test_settings_no_request_can_carry_are_refused_in_one_line(tmp_path, env, said):
    env = {"OPENAI_API_KEY": "sk-test", **env}
    with pytest.raises(ProviderConfigError, match=re.escape(said)):
        resolve_provider(provider="openai", env=env, home=tmp_path)
