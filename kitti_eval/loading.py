"""Labels and results of many frames as flat arrays, and a fast reader for label_2-format folders.

A :class:`FrameLabels` holds every object of every frame, one row per object, with ``offsets``
marking each frame's rows (frame ``f`` is rows ``offsets[f]:offsets[f + 1]``). Columns follow the
label_2 line ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]``; geometry is
KITTI's (bottom-centre ``loc_rect`` in the rectified camera frame, y down; ``hwl`` metres; 2D boxes
in image_2 pixels).

The folder reader splits and converts all files in bulk; any line the bulk path cannot take is
re-read with :func:`kitti.parse_label_line`, so malformed input raises the same
:class:`kitti.KittiFormatError` (``file:line: what was expected``) as the rest of foresee.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Sequence

import numpy as np

from kitti.errors import KittiFormatError
from kitti.labels import NO_3D_SIZE, Object3d, parse_label_line
from kitti_eval import _kernels as K


@dataclass(frozen=True, eq=False)
class FrameLabels:
    """Objects of many frames (ground truth or detections), one array per field.

    Attributes:
        frame_ids: (F,) frame ids, e.g. ``"000123"``.
        offsets: (F + 1,) int64 row ranges per frame.
        types: (N,) object type as written (``Car``, ``DontCare`` ...).
        truncated, occluded, alpha: (N,) label columns 2-4 (occluded int64).
        box2d: (N, 4) ``(x1, y1, x2, y2)`` pixels.
        hwl: (N, 3) ``(h, w, l)`` metres.
        loc_rect: (N, 3) bottom centre ``(x, y, z)`` in the rect camera frame, metres.
        ry: (N,) rotation about camera y, radians.
        score: (N,) detection score; NaN where the line had none (ground truth).
    """

    frame_ids: tuple[str, ...]
    offsets: np.ndarray
    types: tuple[str, ...]
    truncated: np.ndarray
    occluded: np.ndarray
    alpha: np.ndarray
    box2d: np.ndarray
    hwl: np.ndarray
    loc_rect: np.ndarray
    ry: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.types)
        if self.offsets.shape != (len(self.frame_ids) + 1,) or self.offsets[-1] != n:
            raise ValueError(f"offsets must be ({len(self.frame_ids) + 1},) ending at {n}, "
                             f"got {self.offsets.shape} ending at {self.offsets[-1]}")
        for name, shape in (("truncated", (n,)), ("occluded", (n,)), ("alpha", (n,)),
                            ("box2d", (n, 4)), ("hwl", (n, 3)), ("loc_rect", (n, 3)),
                            ("ry", (n,)), ("score", (n,))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {getattr(self, name).shape}")

    def __len__(self) -> int:
        """Number of objects (rows), all frames together."""
        return len(self.types)

    @property
    def n_frames(self) -> int:
        return len(self.frame_ids)

    @classmethod
    def from_objects(cls, frames: Sequence[Sequence[Object3d]],
                     frame_ids: Sequence[str] | None = None) -> "FrameLabels":
        """Build from per-frame lists of :class:`kitti.Object3d` (ids default to 000000, ...)."""
        ids = tuple(frame_ids) if frame_ids is not None else tuple(f"{i:06d}" for i in range(len(frames)))
        if len(ids) != len(frames):
            raise ValueError(f"{len(ids)} frame ids for {len(frames)} frames")
        objs = [o for frame in frames for o in frame]
        rows = np.array([[o.truncated, o.occluded, o.alpha, o.x1, o.y1, o.x2, o.y2, o.h, o.w, o.l,
                          o.x, o.y, o.z, o.ry, np.nan if o.score is None else o.score]
                         for o in objs], dtype=np.float64).reshape(-1, 15)
        offsets = np.zeros(len(frames) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(f) for f in frames])
        return _from_rows(ids, offsets, tuple(o.type for o in objs), rows)


def _from_rows(ids: tuple[str, ...], offsets: np.ndarray, types: tuple[str, ...],
               rows: np.ndarray) -> FrameLabels:
    """rows: (N, 15) label columns 2..15 plus score (NaN when absent)."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    return FrameLabels(ids, offsets, types, rows[:, 0].copy(), rows[:, 1].astype(np.int64),
                       rows[:, 2].copy(), rows[:, 3:7].copy(), rows[:, 7:10].copy(),
                       rows[:, 10:13].copy(), rows[:, 13].copy(), rows[:, 14].copy())


def _read_files(folder: Path, frame_ids: Sequence[str], missing_as_empty: bool,
                what: str) -> list[bytes]:
    data = []
    for fid in frame_ids:
        path = folder / f"{fid}.txt"
        try:
            data.append(path.read_bytes())
        except FileNotFoundError:
            if not missing_as_empty:
                hint = (" (use missing_as_empty / --missing-as-empty to treat it as no detections)"
                        if what == "result" else "")
                raise KittiFormatError(path, None, f"{what} file missing for frame {fid}{hint}") from None
            data.append(b"")
    return data


def _check_rows(rows: np.ndarray, lengths: np.ndarray, types: Sequence[str], detections: bool,
                fail) -> None:
    """Bulk versions of kitti.parse_label_line's checks; ``fail(row)`` raises for a bad row."""
    bad = ~np.isin(lengths, (16,) if detections else (15, 16))
    filled = np.arange(15)[None, :] < (lengths[:, None] - 1)
    bad |= (filled & ~np.isfinite(rows)).any(axis=1)
    bad |= rows[:, 1] != np.round(rows[:, 1])
    size_bad = (rows[:, 7:10] < 0).any(axis=1) & ~(rows[:, 7:10] == NO_3D_SIZE).all(axis=1)
    if size_bad.any():
        size_bad &= np.array([t != "DontCare" for t in types])
    bad |= size_bad
    if bad.any():
        fail(int(np.argmax(bad)))


def _parse_careful(data: list[bytes], paths: list[Path], detections: bool):
    """Python tokenizer: (rows (R, 15), lengths, types, offsets); raises for any bad line."""
    tokens: list[list[str]] = []
    where: list[tuple[int, int, str]] = []
    counts = np.zeros(len(data) + 1, dtype=np.int64)
    for f, raw in enumerate(data):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise KittiFormatError(paths[f], None, "label file is not text") from None
        n0 = len(tokens)
        for lineno, line in enumerate(text.splitlines(), start=1):
            tok = line.split()
            if tok:
                tokens.append(tok)
                where.append((f, lineno, line))
        counts[f + 1] = len(tokens) - n0

    def fail(row: int) -> None:
        f, lineno, line = where[row]
        parse_label_line(line, path=paths[f], lineno=lineno, require_score=detections)
        raise KittiFormatError(paths[f], lineno, "malformed line")  # pragma: no cover

    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    rows = np.full((len(tokens), 15), np.nan)
    for r, tok in enumerate(tokens):
        if not 15 <= len(tok) <= 16:
            fail(r)
        try:
            rows[r, :len(tok) - 1] = [float(t) for t in tok[1:]]
        except ValueError:
            fail(r)
    types = tuple(t[0] for t in tokens)
    _check_rows(rows, lengths, types, detections, fail)
    return rows, types, np.cumsum(counts)


def _parse_fast(data: list[bytes], paths: list[Path], detections: bool):
    """numba tokenizer (plain decimal ASCII only); None when the careful path must decide."""
    blob = b"".join(data)
    file_off = np.zeros(len(data) + 1, dtype=np.int64)
    file_off[1:] = np.cumsum([len(d) for d in data])
    rows, lengths, type_range, row_file, row_line, ok = K.parse_label_rows(
        np.frombuffer(blob, dtype=np.uint8), file_off, 16)
    if not ok:
        return None
    cache: dict[bytes, str] = {}
    try:
        types = tuple(cache.setdefault(b, b.decode("ascii"))
                      for b in (blob[s:e] for s, e in type_range.tolist()))
    except UnicodeDecodeError:  # a non-ASCII class name: the careful path names file and line
        return None
    if len(rows):
        rows[lengths < 16, 14] = np.nan

    def fail(row: int) -> None:
        f, lineno = int(row_file[row]), int(row_line[row])
        line = data[f].decode("ascii").splitlines()[lineno - 1]
        parse_label_line(line, path=paths[f], lineno=lineno, require_score=detections)
        raise KittiFormatError(paths[f], lineno, "malformed line")  # pragma: no cover

    _check_rows(rows, lengths, types, detections, fail)
    counts = np.bincount(row_file, minlength=len(data)) if len(rows) else np.zeros(len(data), np.int64)
    return rows, types, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def read_label_folder(folder: str | PathLike[str], frame_ids: Sequence[str], *,
                      detections: bool = False, missing_as_empty: bool = False) -> FrameLabels:
    """Read ``<folder>/<id>.txt`` for every frame id into a :class:`FrameLabels`.

    Plain ASCII decimal files are split and converted by a numba kernel (exactly as ``strtod``);
    anything else goes through Python line by line, so every bad line raises kitti's error.

    Args:
        folder: a ``label_2`` folder (ground truth) or a results folder (detections).
        frame_ids: the frames to read, in evaluation order.
        detections: require a 16th field (the score) on every line.
        missing_as_empty: a missing file is a frame without objects instead of an error.

    Raises:
        KittiFormatError: a missing file (naming it), a line with the wrong field count, a
            non-numeric or non-finite field, a non-integer occlusion, a negative size outside
            DontCare (and the 2D-only -1 -1 -1), or a detection without a score (naming file and line).
    """
    folder = Path(folder)
    frame_ids = tuple(frame_ids)
    data = _read_files(folder, frame_ids, missing_as_empty, "result" if detections else "label")
    paths = [folder / f"{fid}.txt" for fid in frame_ids]
    parsed = _parse_fast(data, paths, detections) or _parse_careful(data, paths, detections)
    rows, types, offsets = parsed
    return _from_rows(frame_ids, offsets, types, rows)


def label_frame_ids(folder: str | PathLike[str]) -> tuple[str, ...]:
    """Sorted ids of the ``*.txt`` files in a folder (the devkit evaluates the result files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KittiFormatError(folder, None, "folder not found")
    return tuple(sorted(p.stem for p in folder.glob("*.txt")))
