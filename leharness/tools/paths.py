"""Path confinement: file tools touch only the session's working tree and allowed folders.

A path argument is resolved (relative to the session's cwd, `~` expanded,
symlinks followed) and must then lie inside the cwd or one of the folders the
user allowed with `--allow-path`. Reading may also reach this harness's
artifacts folder (the model is told to page through large outputs there);
writing never reaches the harness's own data (its database, artifacts and
history). bash is not confined: the approval mode governs it.
"""

from __future__ import annotations

from pathlib import Path

from leharness.store import home_dir

from .base import ToolContext, ToolError


def working_dir(ctx: ToolContext) -> Path:
    """The session's cwd, resolved; a clear ToolError when it was deleted."""
    if not ctx.cwd.is_dir():
        raise ToolError(
            f"the working directory {ctx.cwd} does not exist (was it deleted or moved?); "
            "tools cannot work there until it is back",
            "bad_cwd",
        )
    return ctx.cwd.resolve()


def harness_home(ctx: ToolContext) -> Path | None:
    try:
        return (ctx.home or home_dir()).resolve()
    except OSError:  # the process's own cwd is gone and no LEHARNESS_HOME is set
        return None


def allowed_roots(ctx: ToolContext, write: bool = False) -> list[Path]:
    roots = [working_dir(ctx), *(Path(p).expanduser().resolve() for p in ctx.allowed_paths)]
    home = harness_home(ctx)
    if not write and home is not None:
        roots.append(home / "artifacts")
    return roots


def confine(ctx: ToolContext, path: str, write: bool = False) -> Path:
    """The resolved absolute path `path` names, if the session may touch it."""
    try:
        target = Path(ctx.cwd, Path(path).expanduser()).resolve()
    except (RuntimeError, OSError) as error:  # a symlink loop, say
        raise ToolError(f"cannot resolve {path}: {error}", "bad_path") from None
    roots = allowed_roots(ctx, write)
    if not any(target.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise ToolError(
            f"{path} is outside the folders this session may use"
            + (f" (it resolves to {target})" if str(target) != path else "")
            + f"; allowed: {allowed}. Work inside the working directory; the user can "
            "widen this with `lh --allow-path DIR`",
            "outside_workspace",
        )
    home = harness_home(ctx)
    if write and home is not None and _harness_data(target, home):
        raise ToolError(
            f"{path} is inside lh's own folder {home} (its database and artifacts); "
            "tools may not write there",
            "outside_workspace",
        )
    return target


def _harness_data(target: Path, home: Path) -> bool:
    """sessions.db and its WAL, history, artifacts (a folder like `lh demo`'s is fine)."""
    return target.parent == home or target.is_relative_to(home / "artifacts")


def inside(path: Path, roots: list[Path]) -> bool:
    """Whether an already-found path (e.g. a glob match) resolves inside one of `roots`."""
    try:
        target = path.resolve()
    except (RuntimeError, OSError):  # a symlink loop: not followed
        return False
    return any(target.is_relative_to(root) for root in roots)
