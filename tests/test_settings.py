"""Settings: flag > env > settings.toml > default, `lh config`, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leharness.app.settings import resolve_settings
from leharness.cli.errors import UserError
from leharness.testing import Call, ScriptedServer, Text, ToolCalls

from .e2e_helpers import lh_env, run_lh

SETTINGS = """\
# my defaults
provider = "ollama"
model = "from-settings"
base_url = "http://127.0.0.1:9/v1"
approval = "ask"
max_steps = 7
context_window = 9000
"""


def write_settings(home: Path, text: str = SETTINGS) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "settings.toml"
    path.write_text(text)
    return path


def sources(settings) -> dict[str, tuple]:
    return {key: (v.value, v.source, v.origin) for key, v in settings.values.items()}


def test_flag_beats_env_beats_settings_beats_default(tmp_path):
    home = tmp_path / "home"
    assert sources(resolve_settings(env={}, home=home)) == {
        "provider": ("ollama", "default", "no OPENAI_API_KEY"),
        "model": ("gemma4:26b", "default", "ollama's default"),
        "base_url": ("http://localhost:11434/v1", "default", "ollama's default"),
        "approval": ("ask", "default", "on a terminal; refused without one"),
        "max_steps": (50, "default", ""),
        "context_window": (None, "default", "the model's (else 32,000)"),
        "sandbox": (None, "default", "workspace-write where bubblewrap works"),
    }
    path = write_settings(home)
    from_file = sources(resolve_settings(env={}, home=home))
    assert from_file["model"] == ("from-settings", "settings", str(path))
    assert from_file["max_steps"] == (7, "settings", str(path))
    assert from_file["approval"] == ("ask", "settings", str(path))
    assert from_file["context_window"] == (9000, "settings", str(path))
    env = {
        "LEHARNESS_MODEL": "from-env",
        "LEHARNESS_MAX_STEPS": "3",
        "LEHARNESS_CONTEXT_WINDOW": "128000",
        "LEHARNESS_OLLAMA_BASE_URL": "http://127.0.0.1:8/v1",
    }
    from_env = sources(resolve_settings(env=env, home=home))
    assert from_env["model"] == ("from-env", "env", "LEHARNESS_MODEL")
    assert from_env["max_steps"] == (3, "env", "LEHARNESS_MAX_STEPS")
    assert from_env["context_window"] == (128000, "env", "LEHARNESS_CONTEXT_WINDOW")
    assert from_env["base_url"] == ("http://127.0.0.1:8/v1", "env", "LEHARNESS_OLLAMA_BASE_URL")
    assert from_env["provider"] == ("ollama", "settings", str(path))
    flags = {"model": "from-flag", "max_steps": 2, "provider": None}
    from_flags = sources(resolve_settings(flags, env=env, home=home))
    assert from_flags["model"] == ("from-flag", "flag", "--model")
    assert from_flags["max_steps"] == (2, "flag", "--max-steps")
    assert from_flags["provider"] == ("ollama", "settings", str(path))  # None: not given


def test_the_provider_decides_the_default_model_and_base_url_variable(tmp_path):
    env = {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:7/v1"}
    values = sources(resolve_settings(env=env, home=tmp_path))
    assert values["provider"] == ("openai", "default", "OPENAI_API_KEY is set")
    assert values["model"] == ("gpt-4o-mini", "default", "openai's default")
    assert values["base_url"] == ("http://127.0.0.1:7/v1", "env", "OPENAI_BASE_URL")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model = "unclosed\n', "not valid TOML: "),
        ("max_steps = 0\n", "max_steps must be a whole number of 1 or more, not 0"),
        ("max_steps = true\n", "max_steps must be a whole number of 1 or more, not True"),
        ("model = 5\n", "model must be a non-empty string, not 5"),
        ('modle = "x"\n', "unknown setting 'modle'; known: provider, model, base_url"),
        ('provider = "azure"\n', "provider must be one of openai, ollama, not 'azure'"),
        ('sandbox = "on"\n', "sandbox must be one of read-only, workspace-write, off, not 'on'"),
    ],
)
def test_a_bad_settings_file_is_a_user_error_naming_it(tmp_path, text, message):
    path = write_settings(tmp_path, text)
    with pytest.raises(UserError) as error:
        resolve_settings(env={}, home=tmp_path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_a_bad_number_in_the_environment_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="LEHARNESS_MAX_STEPS must be a whole number"):
        resolve_settings(env={"LEHARNESS_MAX_STEPS": "lots"}, home=tmp_path)


# -- through the real lh --------------------------------------------------------------


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted
    assert not scripted.exhausted, "the scripted server ran out of steps"


def test_lh_run_takes_model_and_max_steps_from_each_level(server, isolated_home):
    write_settings(isolated_home, 'model = "settings-model"\nmax_steps = 1\n')
    env = lh_env(isolated_home, server.base_url)
    server.push(ToolCalls(Call("bash", {"command": "true"})))
    done = run_lh("hi", env=env)
    assert done.returncode == 1, done.stderr  # stopped by max_steps = 1 from the file
    assert "stopped after 1 steps" in done.stderr
    assert server.requests[-1].body["model"] == "settings-model"
    server.push(Text("ok"))
    assert run_lh("hi", env={**env, "LEHARNESS_MODEL": "env-model"}).returncode == 0
    assert server.requests[-1].body["model"] == "env-model"
    server.push(Text("ok"))
    flagged = run_lh("--model", "flag-model", "--max-steps", "5", "hi", env=env)
    assert flagged.returncode == 0, flagged.stderr
    assert server.requests[-1].body["model"] == "flag-model"


def test_lh_config_shows_values_and_sources(isolated_home):
    path = write_settings(isolated_home)
    env = lh_env(isolated_home, "http://127.0.0.1:9/v1", LEHARNESS_MODEL="env-model")
    env.pop("OPENAI_API_KEY")
    done = run_lh("config", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["setting"]: row for row in json.loads(done.stdout)}
    assert rows["model"] == {
        "setting": "model",
        "value": "env-model",
        "source": "env",
        "from": "LEHARNESS_MODEL",
    }
    assert rows["max_steps"]["value"] == 7 and rows["max_steps"]["source"] == "settings"
    assert rows["provider"]["from"] == str(path)
    table = run_lh("config", env=env)
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.startswith("model"))
    assert line.split() == ["model", "env-model", "env", "LEHARNESS_MODEL"]
    assert table.stdout.rstrip().endswith(f"settings file: {path}")


def test_lh_with_a_malformed_settings_file_exits_2_with_one_line(isolated_home):
    path = write_settings(isolated_home, "max_steps = [\n")
    for args in (("config",), ("hello",)):
        done = run_lh(*args, env=lh_env(isolated_home, "http://127.0.0.1:9/v1"))
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith(f"Error: {path}: not valid TOML")
    assert not (isolated_home / "sessions.db").exists()  # nothing ran, nothing was written


def test_config_shows_every_effective_value_defaults_included(isolated_home, monkeypatch):
    import json

    from click.testing import CliRunner

    from leharness.cli import cli
    from leharness.tools.sandbox import unavailable

    monkeypatch.delenv("LEHARNESS_APPROVAL")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    rows = json.loads(CliRunner().invoke(cli, ["config", "--json"]).output)
    values = {row["setting"]: row["value"] for row in rows}
    assert values == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": "https://api.openai.com/v1",
        "approval": "ask",
        "max_steps": 50,
        "context_window": 128_000,
        "sandbox": "off" if unavailable() else "workspace-write",
    }
    table = CliRunner().invoke(cli, ["config"]).output
    assert "128000" in table and "https://api.openai.com/v1" in table
