"""Check the raw files a run will read, all of them, before any work starts.

Each check reads as little as it can and never decodes pixels:

* ``label_2``: every line parsed (:func:`kitti.labels.parse_label_line`);
* ``calib``: every file parsed (:meth:`kitti.calib.Calibration.from_text`);
* ``image_2``: a PNG whose header (24 bytes) gives a size of at least 1×1;
* ``depth_2``: a single-channel 16-bit PNG (header byte 24: bit depth, 25: colour type 0) of the
  size of the frame's ``image_2`` when that is checked too;
* ``velodyne`` (or any folder of clouds): a size that is a multiple of 16 bytes (x, y, z, r
  float32), from ``stat`` alone.

The checks collect every problem instead of stopping at the first one, so a root with a thousand
bad files is reported in one go (:class:`DataProblems`: the first few, then a count). At KITTI
scale (7,481 frames, calib + labels + images + velodyne + depth) this takes a few CPU seconds;
``pipeline.validate`` remembers a clean result by the data's fingerprint so it is not repeated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Iterable, Sequence

from kitti.calib import Calibration
from kitti.errors import KittiFormatError
from kitti.labels import read_label_file
from kitti.layout import KittiRoot

#: Problems listed in a report before "... and N more".
SHOWN = 10
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class DataProblems(KittiFormatError):
    """Every problem found in the data of one run (or one stage command), in one report.

    The message's first line says how many problems were found and where; the next lines give the
    first :data:`SHOWN`, one per line (each naming file and line), then how many more there are.
    """

    def __init__(self, where: str | PathLike[str], problems: Sequence[KittiFormatError]) -> None:
        self.problems = list(problems)
        shown = [f"  {p}" for p in self.problems[:SHOWN]]
        more = len(self.problems) - SHOWN
        if more > 0:
            shown.append(f"  ... and {more} more")
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the data this command reads"
        if n == 1:  # a single problem stays the classic one-liner
            super().__init__(self.problems[0].path, self.problems[0].lineno, self.problems[0].msg)
        else:
            super().__init__(where, None, "\n".join([head + ":"] + shown))


def raise_if_any(where: str | PathLike[str], problems: Sequence[KittiFormatError]) -> None:
    if problems:
        raise DataProblems(where, problems)


def png_header(path: Path) -> tuple[int, int, int, int]:
    """(height, width, bit depth, colour type) of a PNG from its first 26 bytes.

    Raises:
        KittiFormatError: missing file, or not a PNG.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except FileNotFoundError:
        raise KittiFormatError(path, None, "PNG not found") from None
    if len(head) < 26 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        raise KittiFormatError(path, None, "not a PNG file (bad header)")
    w = int.from_bytes(head[16:20], "big")
    h = int.from_bytes(head[20:24], "big")
    return h, w, head[24], head[25]


def check_image(path: Path) -> tuple[int, int]:
    """(H, W) of an image_2 PNG, checked from its header."""
    h, w, _, _ = png_header(path)
    if h < 1 or w < 1:
        raise KittiFormatError(path, None, f"image size {w}x{h}")
    return h, w


def check_depth_png(path: Path, image_hw: tuple[int, int] | None = None) -> None:
    """A depth_2 map: single-channel uint16 PNG (KITTI depth format), the image's size."""
    h, w, bits, colour = png_header(path)
    if bits != 16 or colour != 0:
        raise KittiFormatError(path, None, f"expected a single-channel 16-bit PNG (depth·256), got "
                               f"bit depth {bits}, colour type {colour}")
    if image_hw is not None and (h, w) != tuple(image_hw):
        raise KittiFormatError(path, None, f"depth map is {w}x{h} but its image_2 is "
                               f"{image_hw[1]}x{image_hw[0]}")


def check_cloud_size(path: Path) -> None:
    """A velodyne-format ``.bin``: its size is a multiple of 16 bytes (stat only)."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise KittiFormatError(path, None, "point cloud file not found") from None
    if size % 16:
        raise KittiFormatError(path, None, f"size {size} bytes is not a multiple of 16 "
                               "(float32 x, y, z, reflectance)")


def check_clouds(folder: str | PathLike[str], frame_ids: Sequence[str]) -> list[KittiFormatError]:
    """Problems of a folder of ``NNNNNN.bin`` clouds (one missing-files line, then sizes)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [KittiFormatError(folder, None, "point cloud folder not found")]
    present = set(os.listdir(folder))
    missing = [f for f in frame_ids if f + ".bin" not in present]
    problems = []
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        problems.append(KittiFormatError(folder / f"{missing[0]}.bin", None,
                                         f"{len(missing)} frame(s) without a cloud: "
                                         f"{', '.join(missing[:3])}{more}"))
    for f in frame_ids:
        if f + ".bin" in present:
            _collect(problems, check_cloud_size, folder / f"{f}.bin")
    return problems


def _collect(problems: list, check, *args) -> object:
    try:
        return check(*args)
    except KittiFormatError as e:
        problems.append(e)
    except (OSError, UnicodeDecodeError) as e:  # unreadable file: name it, keep going
        problems.append(KittiFormatError(args[0], None, f"unreadable ({type(e).__name__}: {e})"))
    return None


def _check_calib(path: Path) -> None:
    Calibration.from_file(path)


def check_contents(root: KittiRoot, frame_ids: Sequence[str], kinds: Iterable[str]) -> list[KittiFormatError]:
    """Problems in the content of ``kinds`` of ``frame_ids`` (files assumed present: run
    ``KittiRoot.missing`` first). ``depth_2`` is compared with ``image_2``'s size when both are
    checked."""
    kinds = tuple(kinds)
    problems: list[KittiFormatError] = []
    sizes: dict[str, tuple[int, int]] = {}
    for f in frame_ids:
        if "label_2" in kinds:
            _collect(problems, read_label_file, root.path("label_2", f))
        if "calib" in kinds:
            _collect(problems, _check_calib, root.path("calib", f))
        if "image_2" in kinds:
            hw = _collect(problems, check_image, root.path("image_2", f))
            if hw is not None:
                sizes[f] = hw
        if "depth_2" in kinds:
            _collect(problems, check_depth_png, root.path("depth_2", f), sizes.get(f))
        if "velodyne" in kinds:
            _collect(problems, check_cloud_size, root.path("velodyne", f))
    return problems
