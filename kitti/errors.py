"""The one error type every parser in foresee raises for bad input.

A :class:`KittiFormatError` names the file and (when there is one) the line, and says what was
expected, e.g. ``calib/000123.txt:3: expected 12 numbers after 'P2:', got 11``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path


class KittiFormatError(ValueError):
    """Bad input data: a malformed line, a missing file, a wrong shape.

    Args:
        path: the file (or folder) that holds the problem.
        lineno: 1-based line number, or ``None`` when the problem is not on one line.
        msg: what was expected and what was found.
    """

    def __init__(self, path: str | PathLike[str] | None, lineno: int | None, msg: str) -> None:
        self.path = Path(path) if path is not None else None
        self.lineno = lineno
        self.msg = msg
        where = "" if self.path is None else str(self.path)
        if lineno is not None:
            where = f"{where}:{lineno}"
        super().__init__(f"{where}: {msg}" if where else msg)


class MissingDependencyError(RuntimeError):
    """A library foresee needs cannot be loaded on this machine (one line says what to install)."""
