"""Depth metrics of docs/paper.md §4 for foreground, background and all pixels (Tables 2 and 3).

On pixels with ground truth (g > 0), **pooled over every pixel of the split**:
absRel = mean(|p − g| / g); sqRel = mean(((g − p) / g)²) (the authors' code); log10 =
mean(|log10 p − log10 g|); SILog = sqrt(mean(d²) − mean(d)²), d = ln p − ln g (no ×100);
δk = fraction with max(p/g, g/p) < 1.25^k. No depth cap, no crop. Foreground = inside the 2D
boxes of Car, Van, Truck, Pedestrian, Cyclist, Tram. Per-image means (each image's metrics
averaged over images that have pixels of the region) are reported as well, labelled as such.
Predicted depths ≤ 0 are clamped to 1 mm.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from depth.data import boxes_mask, eval_fg_boxes
from kitti import KittiFormatError, KittiRoot, read_depth_npz

REGIONS: tuple[str, ...] = ("fg", "bg", "global")
METRICS: tuple[str, ...] = ("absrel", "sqrel", "silog", "log10", "d1", "d2", "d3")
MIN_PRED_M = 1e-3

#: The paper's Table 2 (absRel, SILog) per method and region, and Table 3 (all metrics).
PAPER_TABLE2: Mapping[str, Mapping[str, tuple[float, float]]] = {
    "ForeSeE (SO+SD+FSL)": {"fg": (0.118, 0.205), "bg": (0.141, 0.210), "global": (0.138, 0.210)},
    "SO + SD": {"fg": (0.120, 0.208), "bg": (0.141, 0.209), "global": (0.139, 0.209)},
    "SO only": {"fg": (0.120, 0.205), "bg": (0.147, 0.217), "global": (0.144, 0.216)},
    "Baseline": {"fg": (0.129, 0.216), "bg": (0.143, 0.210), "global": (0.141, 0.211)},
}
PAPER_TABLE3: Mapping[str, Mapping[str, tuple[float, ...]]] = {
    "DenseDepth": {"fg": (0.135, 0.214, 0.204, 0.057, 0.830, 0.951, 0.984),
                   "global": (0.138, 0.208, 0.209, 0.062, 0.782, 0.946, 0.987)},
    "ForeSeE": {"fg": (0.118, 0.193, 0.205, 0.053, 0.851, 0.952, 0.982),
                "global": (0.138, 0.213, 0.210, 0.061, 0.793, 0.949, 0.987)},
}


@dataclass
class _Sums:
    """Running sums for pooled metrics over pixels."""

    n: int = 0
    absrel: float = 0.0
    sqrel: float = 0.0
    log10: float = 0.0
    d: float = 0.0
    d2: float = 0.0
    delta: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        p = np.maximum(pred.astype(np.float64), MIN_PRED_M)
        g = gt.astype(np.float64)
        rel = (p - g) / g
        ln = np.log(p) - np.log(g)
        ratio = np.exp(np.abs(ln))
        self.n += g.size
        self.absrel += float(np.abs(rel).sum())
        self.sqrel += float((rel ** 2).sum())
        self.log10 += float(np.abs(ln).sum() / np.log(10.0))
        self.d += float(ln.sum())
        self.d2 += float((ln ** 2).sum())
        self.delta += [np.count_nonzero(ratio < 1.25 ** k) for k in (1, 2, 3)]

    def metrics(self) -> dict[str, float]:
        if self.n == 0:
            return {m: float("nan") for m in METRICS}
        mean_d, mean_d2 = self.d / self.n, self.d2 / self.n
        return {"absrel": self.absrel / self.n, "sqrel": self.sqrel / self.n,
                "silog": float(np.sqrt(max(mean_d2 - mean_d ** 2, 0.0))), "log10": self.log10 / self.n,
                "d1": self.delta[0] / self.n, "d2": self.delta[1] / self.n, "d3": self.delta[2] / self.n}


@dataclass(frozen=True)
class DepthEvalResult:
    """Depth metrics of one method on one split.

    Attributes:
        pooled: region (fg, bg, global) -> metric -> value, pooled over all pixels (the paper's).
        per_image: region -> metric -> mean over images of each image's value (labelled
            "per-image mean" wherever shown).
        pixels: region -> number of pixels with ground truth.
        frames: number of frames evaluated.
    """

    pooled: Mapping[str, Mapping[str, float]]
    per_image: Mapping[str, Mapping[str, float]]
    pixels: Mapping[str, int]
    frames: int

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (NaN written as null)."""
        def clean(t: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
            return {r: {m: (None if v != v else float(v)) for m, v in t[r].items()} for r in t}

        return {"pooled": clean(self.pooled), "per_image": clean(self.per_image),
                "pixels": {r: int(n) for r, n in self.pixels.items()}, "frames": int(self.frames)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DepthEvalResult":
        """Inverse of :meth:`to_json`."""
        def load(t: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
            return {r: {m: float("nan") if v is None else float(v) for m, v in t[r].items()} for r in t}

        return cls(load(d["pooled"]), load(d["per_image"]), {r: int(n) for r, n in d["pixels"].items()},
                   int(d["frames"]))


def evaluate_depth_maps(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                        fg_masks: Sequence[np.ndarray]) -> DepthEvalResult:
    """Metrics of predicted vs ground-truth (H, W) depth maps in metres with (H, W) bool fg masks."""
    pooled = {r: _Sums() for r in REGIONS}
    per_image: dict[str, list[dict[str, float]]] = {r: [] for r in REGIONS}
    for pred, gt, fg in zip(preds, gts, fg_masks, strict=True):
        valid = gt > 0
        for region, mask in (("fg", valid & fg), ("bg", valid & ~fg), ("global", valid)):
            if not mask.any():
                continue
            pooled[region].add(pred[mask], gt[mask])
            one = _Sums()
            one.add(pred[mask], gt[mask])
            per_image[region].append(one.metrics())
    return DepthEvalResult(
        pooled={r: pooled[r].metrics() for r in REGIONS},
        per_image={r: {m: float(np.mean([x[m] for x in per_image[r]])) if per_image[r] else float("nan")
                       for m in METRICS} for r in REGIONS},
        pixels={r: pooled[r].n for r in REGIONS}, frames=len(preds))


def evaluate_depth_dir(data_root: Path, frame_ids: Sequence[str], depth_dir: Path) -> DepthEvalResult:
    """Evaluate ``depth_dir/NNNNNN.npz`` against ``data_root``'s depth_2 with fg from label_2.

    Raises:
        KittiFormatError: a missing prediction or ground truth, or a map whose size differs.
    """
    root = KittiRoot(Path(data_root))
    root.check(tuple(frame_ids), ("depth_2", "label_2"))
    preds, gts, fgs = [], [], []
    for fid in frame_ids:
        path = Path(depth_dir) / f"{fid}.npz"
        pred = read_depth_npz(path)
        gt = root.depth(fid)
        if pred.shape != gt.shape:
            raise KittiFormatError(path, None, f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth "
                                   f"depth_2/{fid}.png is {gt.shape[1]}x{gt.shape[0]}")
        if not np.all(np.isfinite(pred)):
            raise KittiFormatError(path, None, "prediction has NaN/inf depths")
        preds.append(pred)
        gts.append(gt)
        fgs.append(boxes_mask(gt.shape, eval_fg_boxes(root.labels(fid))))
    return evaluate_depth_maps(preds, gts, fgs)


def _fmt(v: float) -> str:
    return "–" if v != v else f"{v:.3f}"


def format_table2(rows: Mapping[str, DepthEvalResult]) -> str:
    """Markdown Table 2 (absRel / SILog, pooled) for the measured rows, then the paper's rows."""
    lines = ["| method | foreground | background | global |", "|---|---|---|---|"]
    for name, res in rows.items():
        cells = [f"{_fmt(res.pooled[r]['absrel'])} / {_fmt(res.pooled[r]['silog'])}" for r in REGIONS]
        lines.append(f"| {name} (measured) | " + " | ".join(cells) + " |")
    for name, vals in PAPER_TABLE2.items():
        lines.append(f"| {name} (paper, KOD val) | " + " | ".join(f"{a:.3f} / {s:.3f}" for a, s in
                                                                 (vals[r] for r in REGIONS)) + " |")
    return "\n".join(lines)


def format_table3(rows: Mapping[str, DepthEvalResult], *, per_image: bool = False) -> str:
    """Markdown Table 3 (all metrics, fg and global) for the measured rows and the paper's."""
    head = "| region | method | absRel | sqRel | SILog | log10 | δ1 | δ2 | δ3 |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    label = "per-image mean" if per_image else "measured"
    for region in ("fg", "global"):
        for name, res in rows.items():
            vals = (res.per_image if per_image else res.pooled)[region]
            lines.append(f"| {region} | {name} ({label}) | " + " | ".join(_fmt(vals[m]) for m in METRICS) + " |")
        for name, vals3 in PAPER_TABLE3.items():
            lines.append(f"| {region} | {name} (paper) | " + " | ".join(f"{v:.3f}" for v in vals3[region]) + " |")
    return "\n".join(lines)


def results_csv(rows: Mapping[str, DepthEvalResult]) -> str:
    """CSV, one line per (method, averaging, region): metrics and pixel counts."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "averaging", "region", *METRICS, "pixels", "frames"])
    for name, res in rows.items():
        for averaging, table in (("pooled", res.pooled), ("per-image", res.per_image)):
            for r in REGIONS:
                w.writerow([name, averaging, r, *(f"{table[r][m]:.6f}" for m in METRICS), res.pixels[r], res.frames])
    return buf.getvalue()
