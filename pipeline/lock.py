"""One lock per artifact, so two runs on one workdir never build the same artifact twice.

``<workdir>/.locks/<stage>-<key>.lock`` is locked with a POSIX record lock (``fcntl.lockf``) while
the artifact is being built. The kernel drops it when its holder process dies in any way (SIGKILL
included): a killed run never blocks the next one, and no stale-lock cleanup is needed. A record
lock, unlike ``flock``, belongs to the process and is not shared with the children it forks: a
stage's worker pool that outlives its killed parent for a moment does not keep the lock. The lock files stay (a few bytes each, the holder's pid
inside for the wait message); ``foresee cache gc`` leaves them, deleting a lock file another
process has open would let a third one lock a new file of the same name.

A second run that needs an artifact being built waits for the lock, then finds the artifact in the
cache (``ArtifactCache.build`` looks again once it holds the lock); with ``wait=False`` it raises
:class:`pipeline.cache.CacheError` instead (``foresee run --no-wait``: exit code 2).
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

LOCKS = ".locks"


class LockBusy(RuntimeError):
    """The artifact is being built by another process and the caller would not wait."""


def lock_path(workdir: Path, stage: str, key: str) -> Path:
    return Path(workdir) / LOCKS / f"{stage}-{key}.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


@contextmanager
def artifact_lock(workdir: Path, stage: str, key: str, *, wait: bool = True,
                  on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the build lock of ``stage/key`` under ``workdir``.

    Args:
        wait: block until a holder finishes (True) or raise :class:`LockBusy` (False).
        on_wait: called once, with a one-line message, when another process holds the lock
            and this one starts waiting.
    """
    path = lock_path(workdir, stage, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            who = _holder(fd)
            if not wait:
                raise LockBusy(f"{stage}/{key} is being built by {who} on this workdir") from None
            if on_wait is not None:
                on_wait(f"{stage}/{key} is being built by {who}: waiting for it, then taking it from the cache")
            fcntl.lockf(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the (only) descriptor of the file releases the lock
