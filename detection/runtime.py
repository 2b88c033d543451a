"""Where the 3D detectors run and what they check before reading a split.

``select_device`` / ``setup_device``: the torch device of a ``device`` setting (``auto``: the rank's
own GPU under torchrun, else the CPU); ``check_frame_inputs``: the first missing input of a split,
as one :class:`kitti.errors.KittiFormatError`.
"""

from __future__ import annotations


def select_device(name: str):
    """``auto`` -> CUDA when available, else CPU (a ``torch.device``); CUDA is the rank's own GPU
    under torchrun."""
    import torch

    from kitti.dist import local_rank

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device("cuda", local_rank()) if name == "cuda" else torch.device(name)


def setup_device(name: str, num_threads: int):
    """:func:`select_device`, and torch's CPU thread count set when ``num_threads`` > 0 on the CPU."""
    import torch

    device = select_device(name)
    if num_threads and device.type == "cpu":
        torch.set_num_threads(num_threads)
    return device


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
