"""Plan-time data validation for ``foresee run`` and every stage command.

A run reads groups of raw files (frames × kinds: the train frames' labels, the val frames'
velodyne, ...), maybe a folder of clouds and a ``--boxes2d`` file or folder. :func:`validate`
checks all of them before the first stage starts (:mod:`kitti.validate`: every label line, every
calib file, PNG headers, cloud sizes, 2D detection lines) and raises one
:class:`kitti.validate.DataProblems` listing every problem (the CLI prints it and exits with 2).

A clean result is remembered: ``<workdir>/.validated/<key>``, where ``key`` hashes
:data:`VALIDATION_VERSION` and the data fingerprints the cache keys are made of
(``KittiRoot.fingerprint``: names, sizes, mtimes and the content of text files), so an unchanged
root is not checked again, and an edited label or a rewritten scan is. On a read-only workdir the
result is simply not remembered.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

from kitti import KittiFormatError, KittiRoot
from kitti.validate import check_clouds, check_contents, raise_if_any

#: Bump when the checks change, so earlier clean results are not trusted.
VALIDATION_VERSION = "1"
VALIDATED = ".validated"

Read = tuple[Sequence[str], Sequence[str]]  # (frame ids, kinds)


def validate(root: KittiRoot, reads: Sequence[Read], *, workdir: str | os.PathLike[str] | None = None,
             clouds: tuple[Path, Sequence[str]] | None = None, boxes2d: str | os.PathLike[str] | None = None,
             boxes2d_frames: Sequence[str] = (), boxes2d_classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist")
             ) -> bool:
    """Check everything in ``reads`` (and a cloud folder, and a ``--boxes2d`` file or folder);
    returns True when a clean result for the same data was remembered (nothing re-checked).

    Raises:
        DataProblems: every problem found, in one report.
    """
    from pipeline import keys

    problems: list[KittiFormatError] = []
    for frames, kinds in reads:
        problems += root.missing(tuple(frames), tuple(kinds))
    boxes = None if boxes2d is None or str(boxes2d) in keys.BOXES2D_DERIVED else Path(boxes2d)
    if boxes is not None and not boxes.exists():
        problems.append(KittiFormatError(boxes, None, "--boxes2d: no such file or folder "
                                         "(expected detector, simulated, gt, a detection file or a folder)"))
    if clouds is not None and not Path(clouds[0]).is_dir():
        problems.append(KittiFormatError(clouds[0], None, "point cloud folder not found"))
    raise_if_any(root.root, problems)

    h = hashlib.sha256(f"validation {VALIDATION_VERSION}\n".encode())
    for frames, kinds in reads:
        h.update(f"{','.join(kinds)}:{root.fingerprint(tuple(frames), tuple(kinds))}\n".encode())
    if clouds is not None:
        try:
            h.update(keys.folder_id("clouds", Path(clouds[0]), clouds[1], ".bin").encode())
        except KittiFormatError:
            h.update(b"clouds-incomplete")  # a missing cloud is reported below, never remembered
    if boxes is not None:
        h.update(f"{keys.boxes2d_id(boxes)} {sorted(boxes2d_frames)} {sorted(boxes2d_classes)}\n".encode())
    marker = Path(workdir) / VALIDATED / h.hexdigest()[:24] if workdir is not None else None
    if marker is not None and marker.is_file():
        return True

    by_frame: dict[str, set[str]] = {}
    for frames, kinds in reads:
        for f in frames:
            by_frame.setdefault(f, set()).update(kinds)
    groups: dict[tuple[str, ...], list[str]] = {}
    for f, kinds in sorted(by_frame.items()):
        groups.setdefault(tuple(sorted(kinds)), []).append(f)
    for kinds, frames in groups.items():
        problems += check_contents(root, frames, kinds)
    if clouds is not None:
        problems += check_clouds(clouds[0], clouds[1])
    if boxes is not None:
        problems += check_boxes2d(root, boxes, boxes2d_frames, boxes2d_classes)
    raise_if_any(root.root, problems)
    from pipeline.cache import workdir_writable

    if marker is not None and workdir_writable(Path(workdir)):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("clean\n")
        except OSError:
            pass  # a read-only workdir: checked again next time
    return False


def check_boxes2d(root: KittiRoot, boxes: Path, frames: Sequence[str],
                  classes: Sequence[str]) -> list[KittiFormatError]:
    """Problems of a ``--boxes2d`` detection file (F-PointNet rgb_detection) or folder of
    KITTI-format 2D detections (every frame of ``frames`` must have a file), read by the parsers
    detect-infer uses."""
    from detection.frustum_pointnet.boxes2d import read_kitti_2d_folder, read_rgb_detection_file

    problems: list[KittiFormatError] = []
    if boxes.is_file():
        try:
            read_rgb_detection_file(boxes, root.frame_ids("image_2"), classes)
        except KittiFormatError as e:
            problems.append(e)
        return problems
    for f in frames:
        try:
            read_kitti_2d_folder(boxes, (f,), classes)
        except KittiFormatError as e:
            problems.append(e)
    return problems
