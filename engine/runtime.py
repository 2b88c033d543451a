"""Where training runs: the torch device of a ``device`` setting and torch's CPU thread count."""

from __future__ import annotations

import torch

from kitti.dist import local_rank


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; CUDA is the rank's own GPU under torchrun.

    Raises:
        ValueError: ``cuda`` asked for where CUDA is not available.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device("cuda", local_rank()) if name == "cuda" else torch.device(name)


def setup_device(name: str, num_threads: int) -> torch.device:
    """:func:`select_device`, and torch's CPU thread count set when ``num_threads`` > 0 on the CPU."""
    device = select_device(name)
    if num_threads and device.type == "cpu":
        torch.set_num_threads(num_threads)
    return device
