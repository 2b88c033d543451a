"""Where the 3D detectors run and what they check before reading a split.

``select_device`` / ``setup_device``: the torch device of a ``device`` setting (``auto``: the rank's
own GPU under torchrun, else the CPU); ``check_frame_inputs``: the first missing input of a split,
as one :class:`kitti.errors.KittiFormatError`; ``numpy_blas_one_thread``: the detectors' entry
points run NumPy's BLAS on one thread.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

from engine.runtime import select_device, setup_device  # noqa: E402,F401  (the detectors' names for them)

F = TypeVar("F", bound=Callable)


def numpy_blas_one_thread(fn: F) -> F:
    """Run ``fn`` with NumPy's BLAS (OpenBLAS) limited to one thread (``threadpoolctl``).

    The detectors' NumPy products are small (a frame's cloud times a 3×3 or 4×4 matrix); on two
    BLAS threads the threads' waiting costs about 4× the CPU of the product itself
    (docs/performance.md). OpenBLAS splits such a product by rows, so the results are bit for bit
    those of two threads. torch's own threads (``--threads``) are not BLAS threads and stay as set.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
