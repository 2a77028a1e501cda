"""One exception tree (leharness/errors.py) and one place in the CLI that turns it into
messages and exit codes; library code never raises (or imports) click."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

from click.testing import CliRunner

import leharness
from leharness import errors
from leharness.cli import cli

PACKAGE = Path(leharness.__file__).parent
FRONT_ENDS = ("cli", "harbor")  # only these may import click


def library_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE)], "leharness."):
        part = info.name.split(".")[1]
        if part not in FRONT_ENDS and not info.name.startswith("leharness.testing.crash"):
            names.append(info.name)
    return names


def test_every_exception_of_the_library_is_a_leharness_error():
    strays = []
    for name in library_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            ours = value.__module__ == name and issubclass(value, BaseException)
            if ours and not issubclass(value, errors.LeharnessError):
                strays.append(f"{name}.{value.__name__}")
    assert strays == []


def test_the_old_names_are_the_same_classes():
    from leharness import store
    from leharness.app.providers import ProviderConfigError
    from leharness.cli.errors import UserError
    from leharness.loop.model import ProviderError
    from leharness.replay.rerun import ReplayError
    from leharness.store.log import SessionChanged
    from leharness.store.merge import MergeConflict
    from leharness.tools.base import ToolError
    from leharness.tools.hooks import HookConfigError
    from leharness.tools.mcp import ConfigFileError

    assert UserError is errors.UserError and store.StoreError is errors.StoreError
    assert (ProviderError, ReplayError, ToolError) == (
        errors.ProviderError,
        errors.ReplayError,
        errors.ToolError,
    )
    assert issubclass(SessionChanged, errors.StoreError)
    assert issubclass(MergeConflict, errors.StoreError)
    for config_problem in (ProviderConfigError, HookConfigError, ConfigFileError):
        assert issubclass(config_problem, errors.UserError)
    assert issubclass(HookConfigError, ValueError)  # callers that catch ValueError still do


def test_no_library_module_imports_click():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in FRONT_ENDS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            if any(name.split(".")[0] in ("click", "click_default_group") for name in names):
                importers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert importers == []


def test_expected_failures_are_one_line_with_their_exit_code(isolated_home, tmp_path):
    """A StoreError (no database yet) and a UserError from the app's settings leave
    through the same mapping: `Error: …` on one line, exit code 2."""
    runner = CliRunner()
    missing = runner.invoke(cli, ["show", "nope"])
    assert missing.exit_code == 2
    assert missing.output.startswith("Error: ") and len(missing.output.splitlines()) == 1
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text("max_steps = 0\n")
    bad = runner.invoke(cli, ["config"])
    assert bad.exit_code == 2
    assert bad.output == (
        f"Error: {isolated_home / 'settings.toml'}: max_steps must be a whole number"
        " of 1 or more, not 0\n"
    )
