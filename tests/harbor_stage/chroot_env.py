"""A Harbor environment for tests: each trial's commands run in a private folder
tree, chrooted, with the host's /usr and /etc bound read-only (`unshare -m`).

Load it with `harbor run -e tests.harbor_stage.chroot_env:ChrootEnvironment`.
It is NOT a sandbox (same users, same network namespace as `harbor run`, which
the stage runs inside `unshare -n`); it is what lets Harbor install the agent,
run it, run the verifier and collect /logs on a machine without Docker. It
keeps to the host's own programs: the task image's Dockerfile is not built.
Needs root (mounts and chroot).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile
from pathlib import Path

from harbor.environments.base import BaseEnvironment, ExecResult
from harbor.environments.capabilities import EnvironmentCapabilities

#: Folders made in each root; /usr, /etc and /dev come from the host.
WRITABLE = (
    "app",
    "tmp",
    "root",
    "logs/agent",
    "logs/verifier",
    "logs/artifacts",
    "tests",
    "solution",
    "installed-agent",
    "run",
    "var/tmp",
    "opt",
)
LINKS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ChrootEnvironment(BaseEnvironment):
    @staticmethod
    def type() -> str:
        return "chroot"

    @property
    def capabilities(self) -> EnvironmentCapabilities:
        return EnvironmentCapabilities()

    def _validate_definition(self) -> None:
        pass  # the task's Dockerfile is not built here

    @property
    def root(self) -> Path:
        base = Path(os.environ.get("CHROOT_ENV_ROOTS") or tempfile.gettempdir())
        return base / f"chroot-{self.session_id}"

    async def start(self, force_build: bool) -> None:
        root = self.root
        if root.exists():
            shutil.rmtree(root)
        for name in (*WRITABLE, "usr", "etc", "dev", "proc"):
            (root / name).mkdir(parents=True, exist_ok=True)
        for name in ("tmp", "var/tmp"):
            (root / name).chmod(0o1777)
        for link, target in LINKS.items():
            (root / link).symlink_to(target)

    async def stop(self, delete: bool) -> None:
        if delete and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    async def exec(
        self,
        command: str,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout_sec: int | None = None,
        user: str | int | None = None,
    ) -> ExecResult:
        root = shlex.quote(str(self.root))
        workdir = cwd or self.task_env_config.workdir or "/app"
        inner = f"mkdir -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)} && {command}"
        mounts = "; ".join(
            [
                f"mount --bind /usr {root}/usr && mount -o remount,bind,ro {root}/usr",
                f"mount --bind /etc {root}/etc && mount -o remount,bind,ro {root}/etc",
                f"mount --rbind /dev {root}/dev",
                f"mount --rbind /proc {root}/proc",
            ]
        )
        script = f"set -e; {mounts}; exec chroot {root} /bin/bash -c {shlex.quote(inner)}"
        variables = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
        variables.update(self.task_env_config.env or {})
        variables.update(self._merge_env(env) or {})
        process = await asyncio.create_subprocess_exec(
            "unshare",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            script,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=variables,
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_sec)
        except TimeoutError:
            os.killpg(process.pid, 9)
            await process.communicate()
            return ExecResult(
                stdout=None, stderr=f"timed out after {timeout_sec}s", return_code=124
            )
        return ExecResult(
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
            return_code=process.returncode or 0,
        )

    def _inside(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    async def upload_file(self, source_path: Path | str, target_path: str) -> None:
        target = self._inside(target_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_path, target)

    async def upload_dir(self, source_dir: Path | str, target_dir: str) -> None:
        shutil.copytree(source_dir, self._inside(target_dir), dirs_exist_ok=True, symlinks=True)

    async def download_file(self, source_path: str, target_path: Path | str) -> None:
        Path(target_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self._inside(source_path), target_path)

    async def download_dir(self, source_dir: str, target_dir: Path | str) -> None:
        source = self._inside(source_dir)
        if source.is_dir():
            shutil.copytree(source, target_dir, dirs_exist_ok=True, symlinks=True)
