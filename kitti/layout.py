"""The KITTI object dataset layout on disk and its split files.

::

    ROOT/training/{image_2,calib,label_2,velodyne,depth_2}/NNNNNN.{png,txt,bin}
    ROOT/testing/{image_2,calib,velodyne}/...
    ROOT/ImageSets/{train,val,trainval,test}.txt      (optional; the 3DOP split ships with foresee)

``depth_2`` is not part of KITTI: it holds dense ground-truth depth (uint16 PNG, depth·256) in the
embedded benchmark, or the KOD ground truth that ``foresee kod build`` writes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from kitti.calib import Calibration
from kitti.errors import KittiFormatError
from kitti.fileio import read_text_file
from kitti.labels import Object3d, read_label_file
from kitti.velodyne import read_velodyne

_SUFFIX = {"image_2": ".png", "calib": ".txt", "label_2": ".txt", "velodyne": ".bin",
           "depth_2": ".png"}


def read_split_file(path: str | PathLike[str]) -> tuple[str, ...]:
    """Read a split file (one 6-digit frame id per line; blank lines ignored)."""
    path = Path(path)
    text = read_text_file(path, "split file")
    ids = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token:
            continue
        if not token.isdigit():
            raise KittiFormatError(path, lineno, f"expected a numeric frame id, got {token!r}")
        ids.append(token.zfill(6))
    return tuple(ids)


def builtin_split(name: str) -> tuple[str, ...]:
    """The 3DOP split shipped with foresee: ``train`` (3712), ``val`` (3769) or ``test`` (7518)."""
    if name not in ("train", "val", "test"):
        raise ValueError(f"unknown built-in split {name!r} (train, val, test)")
    ref = resources.files("kitti") / "splits" / f"{name}.txt"
    with resources.as_file(ref) as p:
        return read_split_file(p)


def read_image(path: str | PathLike[str]) -> np.ndarray:
    """Read an image_2 PNG as (H, W, 3) uint8 **RGB**."""
    path = Path(path)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise KittiFormatError(path, None, "image not found or not readable")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_size_hw(path: str | PathLike[str]) -> tuple[int, int]:
    """(H, W) of a PNG read from its header only (fast)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except FileNotFoundError:
        raise KittiFormatError(path, None, "image not found") from None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        raise KittiFormatError(path, None, "not a PNG file")
    w = int.from_bytes(head[16:20], "big")
    h = int.from_bytes(head[20:24], "big")
    return h, w


@dataclass(frozen=True)
class KittiRoot:
    """A KITTI-format object dataset root.

    Args:
        root: the folder holding ``training/`` (and optionally ``testing/``, ``ImageSets/``).
        part: ``training`` or ``testing``.
        memo: when given (a dict), :meth:`fingerprint` remembers each file's part in it, so the
            stages of one chain plan stat and read each file once. Use one per plan: a file
            changed after it was remembered is not seen.
    """

    root: Path
    part: str = "training"
    memo: dict | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.part not in ("training", "testing"):
            raise ValueError(f"part must be 'training' or 'testing', got {self.part!r}")

    @property
    def base(self) -> Path:
        return self.root / self.part

    def folder(self, kind: str) -> Path:
        """``ROOT/<part>/<kind>`` (kind: image_2, calib, label_2, velodyne, depth_2)."""
        return self.base / kind

    def path(self, kind: str, frame_id: str) -> Path:
        """Path of one frame's file of the given kind."""
        return self.folder(kind) / f"{frame_id}{_SUFFIX[kind]}"

    def has(self, kind: str) -> bool:
        return self.folder(kind).is_dir()

    def frame_ids(self, kind: str = "image_2") -> tuple[str, ...]:
        """All frame ids present in a folder, sorted."""
        folder = self.folder(kind)
        if not folder.is_dir():
            raise KittiFormatError(folder, None, f"missing folder '{kind}' in KITTI root")
        return tuple(sorted(p.stem for p in folder.glob(f"*{_SUFFIX[kind]}")))

    def split(self, name_or_path: str | PathLike[str]) -> tuple[str, ...]:
        """Frame ids of a split: ``ROOT/ImageSets/<name>.txt`` if present, else a file path,
        else the built-in 3DOP split of that name.

        Raises:
            KittiFormatError: the split is not found, or its file holds no frame id (every
                command would otherwise do nothing, or cache an artifact of 0 frames).
        """
        candidate = self.root / "ImageSets" / f"{name_or_path}.txt"
        p = Path(name_or_path)
        for path in (candidate, p):
            if path.is_file():
                ids = read_split_file(path)
                if not ids:
                    raise KittiFormatError(path, None, "split file is empty (no frame ids)")
                return ids
        if str(name_or_path) in ("train", "val", "test"):
            return builtin_split(str(name_or_path))
        raise KittiFormatError(p, None, "split not found (neither ImageSets/<name>.txt nor a file)")

    def check(self, frame_ids: tuple[str, ...] | list[str], kinds: tuple[str, ...]) -> None:
        """Raise one :class:`KittiFormatError` naming what is missing before any work starts."""
        problems = self.missing(frame_ids, kinds)
        if problems:
            raise problems[0]

    def missing(self, frame_ids: tuple[str, ...] | list[str], kinds: tuple[str, ...]) -> list[KittiFormatError]:
        """One error per kind whose folder is missing or lacks files of ``frame_ids`` (listdir only)."""
        problems = []
        for kind in kinds:
            folder = self.folder(kind)
            if not folder.is_dir():
                problems.append(KittiFormatError(folder, None, f"missing folder '{kind}' in KITTI root {self.root}"))
                continue
            present = set(os.listdir(folder))
            suffix = _SUFFIX[kind]
            missing = [f for f in frame_ids if f + suffix not in present]
            if missing:
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                problems.append(KittiFormatError(self.path(kind, missing[0]), None,
                                                 f"{len(missing)} frame(s) of the split missing in {kind}/: "
                                                 f"{', '.join(missing[:3])}{more}"))
        return problems

    # readers -------------------------------------------------------------------------------
    def calib(self, frame_id: str) -> Calibration:
        return Calibration.from_file(self.path("calib", frame_id))

    def labels(self, frame_id: str) -> list[Object3d]:
        return read_label_file(self.path("label_2", frame_id))

    def velodyne(self, frame_id: str) -> np.ndarray:
        return read_velodyne(self.path("velodyne", frame_id))

    def image(self, frame_id: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return read_image(self.path("image_2", frame_id))

    def image_hw(self, frame_id: str) -> tuple[int, int]:
        return image_size_hw(self.path("image_2", frame_id))

    def depth(self, frame_id: str) -> np.ndarray:
        """Ground-truth depth from ``depth_2`` (float32 metres, 0 = no data)."""
        from kitti.depth_io import read_depth_png

        return read_depth_png(self.path("depth_2", frame_id))

    def dataset_id(self) -> str:
        """A short identity of the dataset, to tell artifacts of different datasets apart.

        Hashes the frame ids of ``label_2`` (``calib`` when there are no labels) and the content
        of every 25th of those files: cheap, and different for two renders or two datasets, while
        a root that links another's files (KOD) keeps its identity.
        """
        kind = "label_2" if self.has("label_2") else "calib"
        ids = self.frame_ids(kind)
        h = hashlib.sha256(("\n".join(ids) + "\n").encode())
        for f in ids[::25]:
            h.update(self.path(kind, f).read_bytes())
        return h.hexdigest()[:16]

    def fingerprint(self, frame_ids: tuple[str, ...] | list[str], kinds: tuple[str, ...]) -> str:
        """A short hash identifying the data a stage reads, for cache keys (see
        :func:`fingerprint_files`): every file of ``kinds`` for ``frame_ids``, named relative to
        the root (so a moved or linked root keeps its fingerprint)."""
        h = hashlib.sha256()
        memo = {} if self.memo is None else self.memo
        for kind in kinds:
            folder, suffix = os.fspath(self.folder(kind)) + os.sep, _SUFFIX[kind]
            for f in frame_ids:
                name = f"{kind}/{f}{suffix}"
                line = memo.get(name)
                if line is None:
                    line = memo[name] = file_fingerprint(name, folder + f + suffix)
                h.update(line)
        return h.hexdigest()[:16]


#: Files whose full content enters a fingerprint: the small text files (calib, label_2, split
#: files, 2D detections, KITTI results), where an edit often keeps the size.
CONTENT_HASHED_SUFFIXES = frozenset({".txt"})


def fingerprint_files(named: Iterable[tuple[str, Path]]) -> str:
    """16 hex digits of sha256 over, for each ``(name, path)``: the name, the size, the
    modification time in ns and, for text files (:data:`CONTENT_HASHED_SUFFIXES`), the content.

    Why this mix: binary files (images, velodyne scans, depth maps) are what make KITTI big
    (~27 GB for the object training set); hashing them on every plan would take minutes, so
    they are identified by size + ``st_mtime_ns``: rewriting a file (even with the same size,
    e.g. every point shifted by 5 m) gives it a new mtime. Text files are small (calib +
    labels of 7,481 frames: ~30 MB) and are edited by hand, sometimes within the same second
    and at the same size, so their content is hashed too. The cost: a copy that does not keep
    mtimes (``cp`` without ``-p``) changes the fingerprint and re-runs the stages that read it.

    Raises:
        KittiFormatError: a file is missing (named, one line).
    """
    h = hashlib.sha256()
    for name, path in named:
        h.update(file_fingerprint(name, path))
    return h.hexdigest()[:16]


def file_fingerprint(name: str, path: str | PathLike[str]) -> bytes:
    """One file's part of :func:`fingerprint_files`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise KittiFormatError(Path(path), None, f"missing ({name})") from None
    line = f"{name}:{st.st_size}:{st.st_mtime_ns}\n".encode()
    if os.path.splitext(path)[1] in CONTENT_HASHED_SUFFIXES:
        with open(path, "rb") as fh:
            line += hashlib.blake2b(fh.read(), digest_size=16).digest()
    return line
