"""Large outputs kept on disk: `$LEHARNESS_HOME/artifacts/<session>/<artifact_id>`.

Only the harness names artifact files (a fresh ULID under the session's own
folder), so nothing a model says can point one outside the artifacts folder.
The model sees a stub: size, path, a preview and how to page through it.
`artifact.created` records the path relative to the home, so a moved home (or
an import on another machine) still finds its files; `locate` also reads the
absolute paths that older events recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from leharness.store import new_ulid, replace_file
from leharness.store.events import ArtifactCreated

INLINE_LIMIT = 8 * 1024  # bytes: outputs above this live on disk
PREVIEW_CHARS = 400


@dataclass(frozen=True)
class SavedArtifact:
    artifact_id: str
    path: Path
    bytes: int
    sha256: str
    recorded: str = ""  # the path as artifact.created records it (see recorded_path)

    def created(
        self, kind: str, *, call_id: str | None = None, task_id: str | None = None
    ) -> ArtifactCreated:
        """The `artifact.created` event that records this file."""
        return ArtifactCreated(
            artifact_id=self.artifact_id,
            kind=kind,
            path=self.recorded or str(self.path),
            bytes=self.bytes,
            sha256=self.sha256,
            call_id=call_id,
            task_id=task_id,
        )


def artifacts_dir(home: Path, session_id: str) -> Path:
    return home / "artifacts" / session_id


def save(home: Path, session_id: str, data: bytes, *, sync: bool = True) -> SavedArtifact:
    """Write `data` to a new artifact file atomically; return where and what it is.

    `sync=False` skips the fsync for a copy of data the event log already holds
    (compaction's moved results and transcripts): rebuildable, not worth 7 ms.
    """
    artifact_id = new_ulid()
    folder = artifacts_dir(home, session_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / artifact_id
    replace_file(path, data, sync=sync)  # a full disk, say: no half-written file left
    digest = hashlib.sha256(data).hexdigest()
    return SavedArtifact(artifact_id, path, len(data), digest, recorded_path(home, path))


def recorded_path(home: Path, path: Path) -> str:
    """How `artifact.created` records `path`: relative to the home when it is inside it
    (`artifacts/<session>/<id>`), else absolute."""
    try:
        return path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def locate(home: Path, recorded: str) -> Path:
    """The file an `artifact.created` path names. A relative path is under `home`. An
    absolute one (what events recorded before paths were relative) is used as it is
    while it exists; once the home has moved, the same `artifacts/…` tail is looked for
    under this home."""
    path = Path(recorded)
    if not path.is_absolute():
        return home / path
    if path.exists():
        return path
    tail = portable(recorded)
    moved = home / tail
    return moved if tail != recorded and moved.exists() else path


def portable(recorded: str) -> str:
    """The home-relative form of a recorded path: `artifacts/…` for an absolute path that
    runs through an artifacts folder, the path itself otherwise."""
    parts = Path(recorded).parts
    if not Path(recorded).is_absolute() or "artifacts" not in parts:
        return recorded
    last = len(parts) - 1 - parts[::-1].index("artifacts")
    return Path(*parts[last:]).as_posix()


def stub(artifact: SavedArtifact, text: str) -> str:
    """What the model sees instead of a large output."""
    preview = text[:PREVIEW_CHARS]
    return (
        f"[output too large to show: {artifact.bytes:,} bytes saved as artifact "
        f"{artifact.artifact_id} at {artifact.path}; read it with read_file "
        f'path="{artifact.path}" and offset/limit]\n'
        f"preview:\n{preview}{'…' if len(text) > PREVIEW_CHARS else ''}"
    )
