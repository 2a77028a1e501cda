"""Large outputs kept on disk: `$LEHARNESS_HOME/artifacts/<session>/<artifact_id>`.

Only the harness names artifact files (a fresh ULID under the session's own
folder), so nothing a model says can point one outside the artifacts folder.
The model sees a stub: size, path, a preview and how to page through it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from leharness.store import new_ulid
from leharness.store.events import ArtifactCreated

INLINE_LIMIT = 8 * 1024  # bytes: outputs above this live on disk
PREVIEW_CHARS = 400


@dataclass(frozen=True)
class SavedArtifact:
    artifact_id: str
    path: Path
    bytes: int
    sha256: str

    def created(
        self, kind: str, *, call_id: str | None = None, task_id: str | None = None
    ) -> ArtifactCreated:
        """The `artifact.created` event that records this file."""
        return ArtifactCreated(
            artifact_id=self.artifact_id,
            kind=kind,
            path=str(self.path),
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
    partial = folder / f".{artifact_id}.partial"
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:  # a full disk, say: leave no half-written file behind
        partial.unlink(missing_ok=True)
        raise
    return SavedArtifact(artifact_id, path, len(data), hashlib.sha256(data).hexdigest())


def stub(artifact: SavedArtifact, text: str) -> str:
    """What the model sees instead of a large output."""
    preview = text[:PREVIEW_CHARS]
    return (
        f"[output too large to show: {artifact.bytes:,} bytes saved as artifact "
        f"{artifact.artifact_id} at {artifact.path}; read it with read_file "
        f'path="{artifact.path}" and offset/limit]\n'
        f"preview:\n{preview}{'…' if len(text) > PREVIEW_CHARS else ''}"
    )
