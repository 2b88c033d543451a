"""The depth classes: ``n_bins`` bins uniform in log10 of normalised depth.

Depth is normalised by ``depth_max_m`` (80 m); bin centres are
``log10(min_norm) + i·Δ`` with ``Δ = (log10(max_norm) − log10(min_norm)) / (n_bins − 1)``
(≈ 0.01824 for 100 bins over [0.015, 1.0], i.e. 1.2 m … 80 m). A depth is assigned to the bin
whose centre is nearest in log space (depths outside the range go to the end bins); a prediction
is decoded by the soft-weighted sum: the softmax-weighted mean of the centres in log space, then
``10^x · depth_max_m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bin index of pixels without ground truth (ignored by the loss).
IGNORE_BIN = -1


@dataclass(frozen=True)
class DepthBins:
    """The log-spaced depth classes.

    Attributes:
        n_bins: number of classes C.
        min_norm, max_norm: range of normalised depth (depth / depth_max_m) of the end centres.
        depth_max_m: the normalising depth in metres.
    """

    n_bins: int = 100
    min_norm: float = 0.015
    max_norm: float = 1.0
    depth_max_m: float = 80.0

    def __post_init__(self) -> None:
        if self.n_bins < 2 or not 0.0 < self.min_norm < self.max_norm:
            raise ValueError(f"bad bins: n_bins={self.n_bins}, range [{self.min_norm}, {self.max_norm}]")

    @property
    def width_log10(self) -> float:
        """Δ, the bin width in log10 units."""
        return (np.log10(self.max_norm) - np.log10(self.min_norm)) / (self.n_bins - 1)

    @property
    def centres_log10(self) -> np.ndarray:
        """(C,) float64 bin centres in log10 of normalised depth."""
        return np.log10(self.min_norm) + np.arange(self.n_bins) * self.width_log10

    @property
    def centres_m(self) -> np.ndarray:
        """(C,) float64 bin centres in metres."""
        return 10.0 ** self.centres_log10 * self.depth_max_m

    def key(self) -> tuple[int, float, float, float]:
        """What two models must share to use the same classes."""
        return (self.n_bins, self.min_norm, self.max_norm, self.depth_max_m)

    def depth_to_bin(self, depth_m: np.ndarray) -> np.ndarray:
        """Bin index of each depth (int64, same shape); ``IGNORE_BIN`` where depth ≤ 0 or not finite."""
        d = np.asarray(depth_m, dtype=np.float64)
        valid = np.isfinite(d) & (d > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (np.log10(np.where(valid, d, 1.0) / self.depth_max_m) - np.log10(self.min_norm)) / self.width_log10
        idx = np.clip(np.rint(x), 0, self.n_bins - 1).astype(np.int64)
        return np.where(valid, idx, IGNORE_BIN)

    def bin_to_depth(self, idx: np.ndarray) -> np.ndarray:
        """Centre depth in metres (float64) of each bin index; 0 for ``IGNORE_BIN``."""
        i = np.asarray(idx)
        out = self.centres_m[np.clip(i, 0, self.n_bins - 1)]
        return np.where(i == IGNORE_BIN, 0.0, out)

    def soft_decode(self, probs: np.ndarray, axis: int = 0) -> np.ndarray:
        """Soft-weighted sum: probabilities over bins (along ``axis``) -> depth in metres."""
        p = np.moveaxis(np.asarray(probs, dtype=np.float64), axis, -1)
        return 10.0 ** (p @ self.centres_log10) * self.depth_max_m
