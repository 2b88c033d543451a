"""The KITTI object benchmark's submission zip, from a folder of result files.

The rules, from the object development kit's ``readme.txt`` (devkit_object; quoted in
docs/predict.md):

1. results in the ground truth's data format (label_2 lines, plus the score), one file per test
   image named ``000000.txt``, ``000001.txt`` …, zipped with the files **in the archive's root
   folder**, only the test set's results;
2. 3D and bird's-eye-view submissions carry the 2D box **and** the 3D box of every object, and
   boxes not visible on the image plane are filtered out;
3. the score is "needed for p/r curves, higher is better";
4. the benchmark scores Car, Pedestrian and Cyclist (the devkit's ``evaluate_object.cpp``
   ``CLASS_NAMES``); other classes are dropped here.

Every id of the split is present: a frame without detections is an empty file; a frame of the
split without a result file is an error (one line naming it), never a silent gap.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

from kitti.errors import KittiFormatError
from kitti.labels import Object3d, read_label_file

#: the classes the benchmark server scores
SCORED_CLASSES = ("Car", "Pedestrian", "Cyclist")


def visible_on_image(obj: Object3d, image_hw: tuple[int, int] | None) -> bool:
    """The object's 2D box overlaps the image (positive area once clipped to it)."""
    if image_hw is None:
        return obj.x2 > obj.x1 and obj.y2 > obj.y1
    h, w = image_hw
    x1, x2 = max(obj.x1, 0.0), min(obj.x2, w - 1.0)
    y1, y2 = max(obj.y1, 0.0), min(obj.y2, h - 1.0)
    return x2 > x1 and y2 > y1


def submission_lines(objects: Sequence[Object3d], image_hw: tuple[int, int] | None = None) -> list[str]:
    """The lines of one frame's submission file: scored classes, visible, score kept (16 fields)."""
    lines = []
    for o in objects:
        if o.type not in SCORED_CLASSES or not visible_on_image(o, image_hw):
            continue
        if o.score is None:
            raise ValueError(f"{o.type} result without a score")
        lines.append(o.to_line())
    return lines


def write_submission(results_dir: Path, frame_ids: Sequence[str], zip_path: Path, *,
                     image_hw=None) -> dict[str, int]:
    """Zip ``results_dir/NNNNNN.txt`` for every id of ``frame_ids`` into ``zip_path`` (files in
    the archive's root), written atomically. ``image_hw``: a function frame id -> (H, W) for the
    visibility filter (None: boxes are only checked for positive area).

    Returns:
        ``frames``, ``objects`` (lines written), ``dropped`` (other classes or not visible).

    Raises:
        KittiFormatError: a frame of the split has no result file (named), or a bad result line.
    """
    import os
    import tempfile

    results_dir, zip_path = Path(results_dir), Path(zip_path)
    missing = [f for f in frame_ids if not (results_dir / f"{f}.txt").is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise KittiFormatError(results_dir / f"{missing[0]}.txt", None,
                               f"no result file for frame {missing[0]}{more} of the split: the submission "
                               "needs every test frame")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{zip_path.name}.", dir=zip_path.parent)
    os.close(fd)
    n_obj = n_drop = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in frame_ids:
                objs = read_label_file(results_dir / f"{f}.txt", require_score=True)
                lines = submission_lines(objs, image_hw(f) if image_hw else None)
                n_obj += len(lines)
                n_drop += len(objs) - len(lines)
                zf.writestr(f"{f}.txt", "".join(line + "\n" for line in lines))
        os.replace(tmp, zip_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"frames": len(frame_ids), "objects": n_obj, "dropped": n_drop}
