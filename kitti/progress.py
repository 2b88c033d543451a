"""When progress bars are drawn.

A stage's ``progress=True`` means "show progress to a person": a bar on a terminal. Written into a
log file (``foresee run > run.log 2>&1``, a batch job) a bar is a stream of ``\\r`` updates, so
there it is left out. :func:`tqdm_disable` is the ``disable=`` every stage passes to ``tqdm``:
``True`` when no progress is wanted, else ``None``, tqdm's "only when the output is a terminal".
"""

from __future__ import annotations


def tqdm_disable(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` flag: off when not asked for, terminal-only when asked for."""
    return True if not progress else None
