"""Resume of an interrupted training, the same for the four trainers (depth, detect2d, F-PointNet,
AVOD) whether the command is ``foresee run`` or a stage's own command.

A trainer writes ``checkpoint.pt`` into the build's temp folder ``<stage>/<key>.tmp-<pid>-<nonce>/``
(every N steps and, through the training engine, when SIGTERM/SIGINT arrives). When the build
fails or is stopped, :func:`resumable` keeps that checkpoint as ``<stage>/<key>.resume.pt``; when
the process was killed outright (SIGKILL, a crash), the cache keeps it while it removes the dead
writer's temp folder (:meth:`pipeline.cache.ArtifactCache.build`). The next build of the same key
resumes from it and removes it once the artifact is in place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

CHECKPOINT = "checkpoint.pt"


def resume_file_for(tmp: Path) -> Path:
    """``<stage>/<key>.resume.pt`` of a build temp folder ``<stage>/<key>.tmp-<pid>-<nonce>``."""
    tmp = Path(tmp)
    return tmp.parent / f"{tmp.name.split('.tmp-')[0]}.resume.pt"


def keep_checkpoint(tmp: Path) -> None:
    """Move ``tmp/checkpoint.pt`` (if any) to the key's resume file."""
    ck = Path(tmp) / CHECKPOINT
    if ck.is_file():
        os.replace(ck, resume_file_for(tmp))


def resumable(tmp: Path, train: Callable[[Path | None], T], *, resume: Path | None = None,
              artifact_checkpoint: bool = False) -> T:
    """``train(start)`` with ``start`` = ``resume``, else the key's resume file when there is one,
    else None. On any exception (SIGTERM/SIGINT included) the temp folder's checkpoint becomes the
    resume file; on success the resume file is removed, and so is the temp folder's checkpoint
    unless it is the artifact (``artifact_checkpoint``: depth, whose checkpoint is its model)."""
    resume_file = resume_file_for(tmp)
    start = resume or (resume_file if resume_file.is_file() else None)
    try:
        out = train(start)
    except BaseException:
        keep_checkpoint(tmp)
        raise
    if not artifact_checkpoint:
        (Path(tmp) / CHECKPOINT).unlink(missing_ok=True)  # optimiser state: model.pt is the artifact
    resume_file.unlink(missing_ok=True)
    return out
