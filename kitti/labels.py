"""KITTI ``label_2`` records: one :class:`Object3d` per line, reader and writer side by side.

Line layout (15 fields, a 16th for detections)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

Box convention: ``(x, y, z)`` is the **bottom centre** of the 3D box in the rectified camera frame
(camera y points down, so the top of the box is at ``y - h``); ``rotation_y`` turns about camera y;
``(h, w, l)`` are metres in label order. ``(x1, y1, x2, y2)`` is the 2D box in image_2 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from os import PathLike
from pathlib import Path
from typing import Iterable, Sequence

from kitti.errors import KittiFormatError
from kitti.fileio import atomic_write_text, read_text_file

_FIELDS = ("type", "truncated", "occluded", "alpha", "x1", "y1", "x2", "y2",
           "h", "w", "l", "x", "y", "z", "ry")
# How KITTI writes each field (used when a value was not read from text or was changed).
_FORMATS = {"truncated": "{:.2f}", "occluded": "{:d}", "score": "{:.4f}"}
_DEFAULT_FORMAT = "{:.2f}"


class Difficulty(IntEnum):
    """The KITTI benchmark's difficulty levels."""

    EASY = 0
    MODERATE = 1
    HARD = 2


#: ``h w l`` of a line without a 3D box: DontCare, and the 2D-only detections the devkit evaluates
#: (``type -1 -1 -10 x1 y1 x2 y2 -1 -1 -1 -1000 -1000 -1000 -10 score``).
NO_3D_SIZE: tuple[float, float, float] = (-1.0, -1.0, -1.0)

#: Devkit difficulty rules, indexed by :class:`Difficulty` (evaluate_object.cpp).
MIN_HEIGHT_PX: tuple[float, float, float] = (40.0, 25.0, 25.0)
MAX_OCCLUSION: tuple[int, int, int] = (0, 1, 2)
MAX_TRUNCATION: tuple[float, float, float] = (0.15, 0.30, 0.50)


@dataclass(frozen=True)
class Object3d:
    """One object of a KITTI label or result file.

    Attributes:
        type: class name (``Car``, ``Pedestrian`` …; any token is kept: KITTI allows ``Misc``
            and ``DontCare``, results may use other names).
        truncated: 0 (fully in image) … 1 (leaving the image); -1 for DontCare / results.
        occluded: 0 visible, 1 partly, 2 largely occluded, 3 unknown; -1 for DontCare / results.
        alpha: observation angle in radians, [-π, π].
        x1, y1, x2, y2: 2D box in image_2 pixels.
        h, w, l: box size in metres.
        x, y, z: **bottom centre** of the box in the rect camera frame (metres, y down).
        ry: rotation around camera y in radians, [-π, π].
        score: detection confidence, ``None`` for ground truth.
    """

    type: str
    truncated: float
    occluded: int
    alpha: float
    x1: float
    y1: float
    x2: float
    y2: float
    h: float
    w: float
    l: float  # noqa: E741 - KITTI's name
    x: float
    y: float
    z: float
    ry: float
    score: float | None = None
    # The text each value came from, so that an unchanged record writes back byte for byte.
    _tokens: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)`` in pixels."""
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def height_px(self) -> float:
        """2D box height ``y2 - y1`` in pixels (float64, as the devkit computes it for GT)."""
        return self.y2 - self.y1

    @property
    def loc_rect(self) -> tuple[float, float, float]:
        """Bottom centre ``(x, y, z)`` in the rect camera frame."""
        return (self.x, self.y, self.z)

    @property
    def hwl(self) -> tuple[float, float, float]:
        """``(h, w, l)`` in metres, label order."""
        return (self.h, self.w, self.l)

    def with_(self, **changes: object) -> "Object3d":
        """A copy with some fields changed (changed fields are re-formatted on write)."""
        return replace(self, **changes)

    def is_ignored_for(self, difficulty: Difficulty) -> bool:
        """True when this ground-truth object is outside ``difficulty`` (devkit rule).

        Ignored when occluded > max, truncated > max, or height ``<=`` min height. The ``<=``
        is the devkit's: a box exactly 40.00 px high is not *easy*.
        """
        d = int(difficulty)
        return (self.occluded > MAX_OCCLUSION[d] or self.truncated > MAX_TRUNCATION[d]
                or self.height_px <= MIN_HEIGHT_PX[d])

    def to_line(self) -> str:
        """The label_2 line (no newline). Unchanged values keep their original text."""
        values = [getattr(self, name) for name in _FIELDS]
        names = list(_FIELDS)
        if self.score is not None:
            values.append(self.score)
            names.append("score")
        out = []
        for i, (name, value) in enumerate(zip(names, values)):
            token = self._tokens[i] if self._tokens is not None and i < len(self._tokens) else None
            if token is not None and _same(token, name, value):
                out.append(token)
            elif name == "type":
                out.append(str(value))
            else:
                out.append(_FORMATS.get(name, _DEFAULT_FORMAT).format(value))
        return " ".join(out)


def _same(token: str, name: str, value: object) -> bool:
    if name == "type":
        return token == value
    try:
        parsed = float(token)
    except ValueError:
        return False
    if name == "occluded":
        return parsed == value
    return parsed == value or (math.isnan(parsed) and math.isnan(float(value)))  # type: ignore[arg-type]


def parse_label_line(line: str, *, path: str | PathLike[str] | None = None,
                     lineno: int | None = None, require_score: bool = False) -> Object3d:
    """Parse one label_2 line (15 fields, or 16 with a score).

    Raises:
        KittiFormatError: wrong field count, non-numeric or non-finite field, negative size
            (DontCare's and :data:`NO_3D_SIZE` excepted), or a missing score when ``require_score``.
    """
    tokens = line.split()
    if len(tokens) not in (15, 16):
        raise KittiFormatError(path, lineno, f"expected 15 or 16 fields (type truncated occluded "
                               f"alpha x1 y1 x2 y2 h w l x y z ry [score]), got {len(tokens)}")
    if require_score and len(tokens) != 16:
        raise KittiFormatError(path, lineno, "detection has no score (expected 16 fields, got 15)")
    numbers: list[float] = []
    names = list(_FIELDS[1:]) + (["score"] if len(tokens) == 16 else [])
    for name, token in zip(names, tokens[1:]):
        try:
            v = float(token)
        except ValueError:
            raise KittiFormatError(path, lineno, f"field '{name}' is not a number: {token!r}") from None
        if not math.isfinite(v):
            raise KittiFormatError(path, lineno, f"field '{name}' is not finite: {token!r}")
        numbers.append(v)
    occ = numbers[1]
    if occ != int(occ):
        raise KittiFormatError(path, lineno, f"field 'occluded' must be an integer, got {tokens[2]!r}")
    kind = tokens[0]
    h, w, l = numbers[7], numbers[8], numbers[9]
    if kind != "DontCare" and (h < 0 or w < 0 or l < 0) and (h, w, l) != NO_3D_SIZE:
        raise KittiFormatError(path, lineno, f"negative box size h={h} w={w} l={l}")
    return Object3d(kind, numbers[0], int(occ), numbers[2], numbers[3], numbers[4], numbers[5],
                    numbers[6], h, w, l, numbers[10], numbers[11], numbers[12], numbers[13],
                    numbers[14] if len(numbers) == 15 else None, tuple(tokens))


def read_label_file(path: str | PathLike[str], *, require_score: bool = False) -> list[Object3d]:
    """Read a label_2 (or result) file; an empty file is an empty list.

    Raises:
        KittiFormatError: missing file or a malformed line (naming the line).
    """
    path = Path(path)
    text = read_text_file(path, "label file")
    return [parse_label_line(line, path=path, lineno=i, require_score=require_score)
            for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def format_label_lines(objects: Iterable[Object3d]) -> str:
    """The text of a label file: one line per object, each ending in a newline."""
    return "".join(o.to_line() + "\n" for o in objects)


def write_label_file(path: str | PathLike[str], objects: Sequence[Object3d]) -> None:
    """Write a label_2 / result file atomically (an empty sequence writes an empty file)."""
    atomic_write_text(Path(path), format_label_lines(objects))
