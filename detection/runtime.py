"""Where the 3D detectors run and what they check before reading a split.

``select_device`` / ``setup_device``: the torch device of a ``device`` setting (``auto``: the rank's
own GPU under torchrun, else the CPU); ``check_frame_inputs``: the first missing input of a split,
as one :class:`kitti.errors.KittiFormatError`.
"""

from __future__ import annotations


from engine.runtime import select_device, setup_device  # noqa: E402,F401  (the detectors' names for them)


def check_frame_inputs(root, frame_ids, points_dir, kinds: tuple[str, ...]) -> None:
    """Raise :class:`kitti.errors.KittiFormatError` naming the first missing input of the frames:
    the root's ``kinds`` folders (``KittiRoot.check``), then ``points_dir/NNNNNN.bin``."""
    from pathlib import Path

    from kitti.errors import KittiFormatError

    root.check(tuple(frame_ids), kinds)
    missing = [f for f in frame_ids if not (Path(points_dir) / f"{f}.bin").is_file()]
    if missing:
        raise KittiFormatError(Path(points_dir) / f"{missing[0]}.bin", None,
                               f"{len(missing)} cloud(s) of the frames missing")
