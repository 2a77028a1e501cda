"""The Harbor installed agent: `harbor run -a leharness.harbor:Leharness -m openai/MODEL`.

Follows Harbor's own installed agents (pi, codex): `install()` puts `lh` in a
venv under /installed-agent (from PyPI, or offline from a wheelhouse folder
uploaded into the environment with `--ak wheelhouse=DIR`); `run()` runs one
`lh` prompt with every tool allowed (the container is the sandbox) and
`LEHARNESS_HOME` under /logs/agent, so the trial's database comes back with its
logs; `populate_context_post_run()` reads tokens (and cost, where LiteLLM knows
the model) from that database and writes the ATIF trajectory Harbor's viewer shows.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import PurePosixPath

if sys.version_info >= (3, 12):  # Harbor's own floor; the branch below serves a type
    from typing import override  # checker run for the core's Python 3.11
else:
    from typing_extensions import override

from harbor.agents.agent_auth_resolution import ModelConnectionSpec, ProviderAccess
from harbor.agents.capabilities import AgentCapabilities
from harbor.agents.installed.base import BaseInstalledAgent, PackageSpec, with_prompt_template
from harbor.agents.options import InstalledAgentOptions
from harbor.environments.base import BaseEnvironment
from harbor.models.agent.context import AgentContext
from harbor.models.model_api_format import ModelApiFormat
from harbor.models.trajectories import Trajectory
from pydantic import Field

from . import trial

VENV = PurePosixPath("/installed-agent/leharness")
LH = VENV / "bin" / "lh"
WHEELHOUSE = PurePosixPath("/installed-agent/wheelhouse")
HOME_DIR = "leharness"  # under the agent's log folder: /logs/agent/leharness/sessions.db
OUTPUT_FILENAME = "lh.txt"
TRAJECTORY_FILENAME = "trajectory.json"


class LeharnessOptions(InstalledAgentOptions):
    wheelhouse: str | None = Field(
        default=None,
        description="A local folder of wheels to install lh from, offline (uploaded).",
    )
    max_steps: int | None = Field(default=None, ge=1, description="lh --max-steps.")


class Leharness(BaseInstalledAgent):
    """leharness (`lh`): an agent loop whose whole history is one SQLite database."""

    capabilities = AgentCapabilities(base_url=True, atif=True)
    SUPPORTS_ATIF = True
    MODEL_CONNECTION = ModelConnectionSpec(
        default_provider="openai",
        agent_provider_access=ProviderAccess(
            api_key_candidate_names=["OPENAI_API_KEY"],
            base_url_candidate_names=["OPENAI_BASE_URL", "OPENAI_API_BASE"],
        ),
        api_key_destination_names={"default": "OPENAI_API_KEY"},
        base_url_destination_names={"default": "OPENAI_BASE_URL"},
        supported_api_formats=[ModelApiFormat.OPENAI_CHAT_COMPLETIONS],
        default_api_format_by_provider={"default": ModelApiFormat.OPENAI_CHAT_COMPLETIONS},
    )
    SYSTEM_PACKAGES = {
        **BaseInstalledAgent.SYSTEM_PACKAGES,
        "python3_venv": PackageSpec(
            commands=("python3",),
            packages={
                "apt-get": ("python3", "python3-venv"),
                "dnf": ("python3",),
                "yum": ("python3",),
                "apk": ("python3", "py3-pip"),
            },
            always_install=True,  # asked for only when `python3 -m venv` cannot work
        ),
    }
    options_model = LeharnessOptions
    options: LeharnessOptions

    @staticmethod
    @override
    def name() -> str:
        return "leharness"

    @override
    def get_version_command(self) -> str | None:
        return f"{LH} --version"

    @override
    def parse_version(self, stdout: str) -> str:
        return stdout.strip().split()[-1] if stdout.strip() else ""

    @override
    async def install(self, environment: BaseEnvironment) -> None:
        probe = await environment.exec("python3 -c 'import ensurepip, venv'", user="root")
        if probe.return_code != 0:  # no python3, or Debian's without python3-venv
            await self.ensure_system_dependencies(environment, ("python3_venv",))
        if self.options.wheelhouse:
            await environment.upload_dir(self.options.wheelhouse, str(WHEELHOUSE))
            source = f"--no-index --find-links {WHEELHOUSE} leharness"
        else:
            source = shlex.quote(f"leharness=={self._version}" if self._version else "leharness")
        await self.exec_as_root(
            environment,
            command=(
                f"python3 -m venv {VENV} && {VENV}/bin/pip install -q "
                f"--disable-pip-version-check {source} && chmod -R a+rX {VENV} && "
                f"{LH} --version"
            ),
        )

    @override
    @with_prompt_template
    async def run(
        self, instruction: str, environment: BaseEnvironment, context: AgentContext
    ) -> None:
        access = self.model_connection
        env = dict(access.env)
        env["LEHARNESS_HOME"] = str(self.environment_logs_dir / HOME_DIR)
        env["LEHARNESS_PROVIDER"] = "openai"
        if access.execution_base_url:
            env["OPENAI_BASE_URL"] = access.execution_base_url
        model = self._parsed_model_name or ""
        # The container is the sandbox (bubblewrap rarely works inside one: no warning).
        flags = ["--approval", "auto", "--allow-path", "/", "--sandbox", "off"]
        if model:
            flags += ["--model", model]
        if self.options.max_steps:
            flags += ["--max-steps", str(self.options.max_steps)]
        output = self.environment_logs_dir / OUTPUT_FILENAME
        # Exit 1 is a run that stopped (max steps, a failed model call): the session
        # records why and the verifier still judges the work; worse is an error.
        await self.exec_as_agent(
            environment,
            command=(
                f"{{ {LH} run {shlex.join(flags)} -- {shlex.quote(instruction)}; }} 2>&1 "
                f"| tee {shlex.quote(str(output))}; code=${{PIPESTATUS[0]}}; "
                '[ "$code" -le 1 ] || exit "$code"'
            ),
            env=env,
        )

    @override
    def populate_context_post_run(self, context: AgentContext) -> None:
        db_file = self.logs_dir / HOME_DIR / "sessions.db"
        usage = trial.usage(db_file)
        if usage is not None:
            context.n_input_tokens = usage.input_tokens
            context.n_output_tokens = usage.output_tokens
            context.cost_usd = self._cost(usage)
        data = trial.atif(db_file)
        if data is not None:
            trajectory = Trajectory.model_validate(data)
            path = self.logs_dir / TRAJECTORY_FILENAME
            path.write_text(json.dumps(trajectory.to_json_dict(), indent=2) + "\n")

    def _cost(self, usage: trial.Usage) -> float | None:
        """USD from LiteLLM's price map when it knows the model, else None."""
        if not self.model_name:
            return None
        try:
            import litellm

            prompt, completion = litellm.cost_per_token(
                model=self.model_name,
                prompt_tokens=usage.input_tokens,
                completion_tokens=usage.output_tokens,
            )
        except Exception:  # an unknown model is not an error: the cost stays unknown
            return None
        return prompt + completion
