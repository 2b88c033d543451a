"""Depth metrics of docs/paper.md §4 for foreground, background and all pixels (Tables 2 and 3).

On pixels with ground truth (g > 0), **pooled over every pixel of the split**:
absRel = mean(|p − g| / g); sqRel = mean(((g − p) / g)²) (the authors' code); log10 =
mean(|log10 p − log10 g|); SILog = sqrt(mean(d²) − mean(d)²), d = ln p − ln g (no ×100);
δk = fraction with max(p/g, g/p) < 1.25^k. No depth cap, no crop. Foreground = inside the 2D
boxes of Car, Van, Truck, Pedestrian, Cyclist, Tram. Per-image means (each image's metrics
averaged over images that have pixels of the region) are reported as well, labelled as such.
Predicted depths ≤ 0 are clamped to 1 mm.

Per-object depth error (:func:`object_depth_errors`, not in the paper): for each labelled object of
those classes, its pixels are the pixels inside its 2D box whose ground-truth depth, back-projected
through P2 (pixel centre = integer column, row), lands inside its 3D box (see
:func:`depth.data.object_pixel_mask`); the object's error is ``median(pred) − median(gt)`` over those pixels,
binned by the object's distance (label z, rect camera). The same pixels, pooled over all objects of
those classes, make the **object-surface** region (``DepthEvalResult.surface``).

Per-object diagnosis (:func:`object_diagnosis`, not in the paper), from the dominant-bin depth maps
of ``foresee depth infer --dominant``: the share of each object's pixels whose dominant-bin depth is
within ±10 % of the pixel's ground truth, else within ±10 % of the object's background depth, else
farther or nearer than the ground truth (see :func:`object_diagnosis` for the background's rule).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from depth.data import (OBJECT_BOTTOM_MARGIN_M, OBJECT_FACE_MARGIN_M, boxes_mask, eval_fg_boxes,  # noqa: F401
                        labels_of, object_pixel_mask, object_surface_mask)
from kitti import DEPTH_FOREGROUND_CLASSES, Calibration, KittiFormatError, KittiRoot, Object3d, read_depth_npz

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
        objects: per-object depth errors (:class:`ObjectDepthErrors`), when labels and calib were
            given (:func:`evaluate_depth_dir` always gives them).
        surface: metric -> value pooled over the object-surface pixels (every pixel of an object of
            the evaluation classes, :func:`depth.data.object_surface_mask`), with ``pixels``;
            given by :func:`evaluate_depth_dir` when the split has such pixels.
        diagnosis: the per-object diagnosis (:class:`ObjectDiagnosis`), when dominant-bin maps were
            given.
    """

    pooled: Mapping[str, Mapping[str, float]]
    per_image: Mapping[str, Mapping[str, float]]
    pixels: Mapping[str, int]
    frames: int
    objects: ObjectDepthErrors | None = None
    surface: Mapping[str, float] | None = None
    diagnosis: ObjectDiagnosis | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (NaN written as null)."""
        def clean(t: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
            return {r: {m: (None if v != v else float(v)) for m, v in t[r].items()} for r in t}

        out = {"pooled": clean(self.pooled), "per_image": clean(self.per_image),
               "pixels": {r: int(n) for r, n in self.pixels.items()}, "frames": int(self.frames)}
        if self.objects is not None:
            out["objects"] = self.objects.to_json()
        if self.surface is not None:
            out["surface"] = {m: (int(v) if m == "pixels" else float(v)) for m, v in self.surface.items()}
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis.to_json()
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DepthEvalResult":
        """Inverse of :meth:`to_json`."""
        def load(t: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
            return {r: {m: float("nan") if v is None else float(v) for m, v in t[r].items()} for r in t}

        surface = {m: (int(v) if m == "pixels" else float(v)) for m, v in d["surface"].items()} \
            if d.get("surface") else None
        return cls(load(d["pooled"]), load(d["per_image"]), {r: int(n) for r, n in d["pixels"].items()},
                   int(d["frames"]), ObjectDepthErrors.from_json(d["objects"]) if d.get("objects") else None,
                   surface, ObjectDiagnosis.from_json(d["diagnosis"]) if d.get("diagnosis") else None)


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


def _read_pair(root: KittiRoot, depth_dir: Path, fid: str) -> tuple[np.ndarray, np.ndarray]:
    """A prediction ``depth_dir/fid.npz`` and its ground truth, checked for size and finiteness."""
    path = Path(depth_dir) / f"{fid}.npz"
    pred = read_depth_npz(path)
    gt = root.depth(fid)
    if pred.shape != gt.shape:
        raise KittiFormatError(path, None, f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth "
                               f"depth_2/{fid}.png is {gt.shape[1]}x{gt.shape[0]}")
    if not np.all(np.isfinite(pred)):
        raise KittiFormatError(path, None, "prediction has NaN/inf depths")
    return pred, gt


def evaluate_depth_dir(data_root: Path, frame_ids: Sequence[str], depth_dir: Path,
                       dominant_dir: Path | None = None) -> DepthEvalResult:
    """Evaluate ``depth_dir/NNNNNN.npz`` against ``data_root``'s depth_2 with fg from label_2, the
    per-object errors and the object-surface region (label_2, calib; :func:`object_depth_errors`),
    and, with ``dominant_dir`` (dominant-bin maps, :mod:`depth.infer`), the per-object diagnosis.

    Raises:
        KittiFormatError: a missing prediction or ground truth, or a map whose size differs.
    """
    root = KittiRoot(Path(data_root))
    root.check(tuple(frame_ids), ("depth_2", "label_2", "calib"))
    preds, gts, fgs, labels, calibs, modes = [], [], [], [], [], []
    surface = _Sums()
    for fid in frame_ids:
        pred, gt = _read_pair(root, Path(depth_dir), fid)
        preds.append(pred)
        gts.append(gt)
        labels.append(root.labels(fid))
        calibs.append(root.calib(fid))
        fgs.append(boxes_mask(gt.shape, eval_fg_boxes(labels[-1])))
        on = object_surface_mask(gt, labels_of(labels[-1], DEPTH_FOREGROUND_CLASSES), calibs[-1])
        surface.add(pred[on], gt[on])
        if dominant_dir is not None:
            modes.append(_read_pair(root, Path(dominant_dir), fid)[0])
    objects = object_depth_errors(preds, gts, labels, calibs, frame_ids)
    diagnosis = object_diagnosis(modes, gts, labels, calibs, frame_ids) if dominant_dir is not None else None
    return replace(evaluate_depth_maps(preds, gts, fgs), objects=objects, diagnosis=diagnosis,
                   surface={**surface.metrics(), "pixels": surface.n} if surface.n else None)


# ---------------------------------------------------------------------------- per-object error
#: Distance bins (metres, label z) of the per-object table; the last is open-ended.
DISTANCE_BINS_M: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0, 40.0, float("inf"))
#: Objects with fewer pixels are left out of the per-object table.
OBJECT_MIN_PIXELS = 10


def _same_objects(a: Any, b: Any, arrays: Sequence[str]) -> bool:
    """Equal frame ids and types, and equal ``arrays`` (NaN equal to NaN)."""
    return (a.frame_ids, a.types) == (b.frame_ids, b.types) and all(
        np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True) for k in arrays)


@dataclass(frozen=True, eq=False)
class ObjectDepthErrors:
    """Per-object depth errors of one method: one entry per object (arrays of equal length).

    Attributes:
        frame_ids, types: the object's frame and class.
        distance_m: label z (rect camera), which bins the object.
        gt_median_m, pred_median_m: medians of ground truth and prediction over its pixels.
        pixels: how many pixels the object has.
    """

    frame_ids: tuple[str, ...]
    types: tuple[str, ...]
    distance_m: np.ndarray
    gt_median_m: np.ndarray
    pred_median_m: np.ndarray
    pixels: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectDepthErrors):
            return NotImplemented
        return _same_objects(self, other, ("distance_m", "gt_median_m", "pred_median_m", "pixels"))

    @property
    def error_m(self) -> np.ndarray:
        """Signed error ``median(pred) − median(gt)`` per object (metres; > 0 = too far)."""
        return self.pred_median_m - self.gt_median_m

    @property
    def rel_error(self) -> np.ndarray:
        """``|median(pred) − median(gt)| / median(gt)`` per object."""
        return np.abs(self.error_m) / self.gt_median_m

    def by_distance(self, edges: Sequence[float] = DISTANCE_BINS_M) -> list[dict[str, Any]]:
        """One row per bin ``[lo, hi)``: objects, mean and median relative error, median |error| and
        mean signed error (metres); NaN for an empty bin. A last row ``all`` covers every object."""
        rows = []
        for label, sel in _bins_of_objects(self.distance_m, edges):
            n = int(sel.sum())
            nan = float("nan")
            rows.append({"bin_m": label, "objects": n,
                         "mean_rel": float(self.rel_error[sel].mean()) if n else nan,
                         "median_rel": float(np.median(self.rel_error[sel])) if n else nan,
                         "median_abs_m": float(np.median(np.abs(self.error_m[sel]))) if n else nan,
                         "mean_signed_m": float(self.error_m[sel].mean()) if n else nan})
        return rows

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict: the binned table and the per-object values."""
        def clean(v: float) -> float | None:
            return None if v != v else v

        return {"definition": "median(pred) - median(gt) over the object's pixels (2D box, GT point in its 3D box)",
                "by_distance": [{k: (clean(v) if isinstance(v, float) else v) for k, v in r.items()}
                                for r in self.by_distance()],
                "objects": {"frame_ids": list(self.frame_ids), "types": list(self.types),
                            "distance_m": self.distance_m.tolist(), "gt_median_m": self.gt_median_m.tolist(),
                            "pred_median_m": self.pred_median_m.tolist(), "pixels": self.pixels.tolist()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ObjectDepthErrors":
        """Inverse of :meth:`to_json`."""
        o = d["objects"]
        return cls(tuple(o["frame_ids"]), tuple(o["types"]), np.asarray(o["distance_m"], dtype=np.float64),
                   np.asarray(o["gt_median_m"], dtype=np.float64), np.asarray(o["pred_median_m"], dtype=np.float64),
                   np.asarray(o["pixels"], dtype=np.int64))


def _scored_objects(gts: Sequence[np.ndarray], labels: Sequence[Sequence[Object3d]],
                    calibs: Sequence[Calibration], frame_ids: Sequence[str] | None,
                    classes: Sequence[str]) -> Iterator[tuple[int, str, Object3d, np.ndarray]]:
    """(frame index, frame id, object, its pixel mask) of every object of ``classes`` with at least
    :data:`OBJECT_MIN_PIXELS` pixels (:func:`depth.data.object_pixel_mask`): the objects that the
    per-object error and the diagnosis score."""
    ids = list(frame_ids) if frame_ids is not None else [str(i) for i in range(len(gts))]
    for k, (fid, gt, objs, calib) in enumerate(zip(ids, gts, labels, calibs, strict=True)):
        for obj in objs:
            if obj.type not in classes:
                continue
            mask = object_pixel_mask(gt, obj, calib)
            if int(mask.sum()) >= OBJECT_MIN_PIXELS:
                yield k, fid, obj, mask


def object_depth_errors(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                        labels: Sequence[Sequence[Object3d]], calibs: Sequence[Calibration],
                        frame_ids: Sequence[str] | None = None,
                        classes: Sequence[str] = DEPTH_FOREGROUND_CLASSES) -> ObjectDepthErrors:
    """Per-object errors of predicted vs ground-truth (H, W) depth maps (metres) over frames.

    Objects of ``classes`` with at least :data:`OBJECT_MIN_PIXELS` pixels (:func:`object_pixel_mask`)
    count; predictions ≤ 0 are clamped to 1 mm as in the pooled metrics.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth maps")
    cols: dict[str, list[Any]] = {k: [] for k in ("fid", "type", "dist", "gt", "pred", "n")}
    for k, fid, obj, mask in _scored_objects(gts, labels, calibs, frame_ids, classes):
        for key, val in (("fid", fid), ("type", obj.type), ("dist", obj.z), ("n", int(mask.sum())),
                         ("gt", float(np.median(gts[k][mask].astype(np.float64)))),
                         ("pred", float(np.median(np.maximum(preds[k][mask].astype(np.float64), MIN_PRED_M))))):
            cols[key].append(val)
    return ObjectDepthErrors(tuple(cols["fid"]), tuple(cols["type"]), np.asarray(cols["dist"], dtype=np.float64),
                             np.asarray(cols["gt"], dtype=np.float64), np.asarray(cols["pred"], dtype=np.float64),
                             np.asarray(cols["n"], dtype=np.int64))


# ---------------------------------------------------------------------------- per-object diagnosis
#: A dominant-bin depth within this fraction of a depth is "at" that depth.
DIAGNOSIS_TOLERANCE = 0.10
#: The diagnosis' categories, in the order they are tested (a pixel takes the first that holds).
DIAGNOSIS_CATEGORIES: tuple[str, ...] = ("true", "background", "far", "near")


def _bins_of_objects(distance_m: np.ndarray, edges: Sequence[float]) -> list[tuple[str, np.ndarray]]:
    """``(label, selection)`` per distance bin ``[lo, hi)`` and a last ``all``."""
    bins = [(f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"{lo:g}+", (distance_m >= lo) & (distance_m < hi))
            for lo, hi in zip(edges[:-1], edges[1:])]
    return bins + [("all", np.ones(len(distance_m), dtype=bool))]


@dataclass(frozen=True, eq=False)
class ObjectDiagnosis:
    """Where each object's dominant-bin depths lie: one entry per object (arrays of equal length).

    Attributes:
        frame_ids, types, distance_m, pixels: as :class:`ObjectDepthErrors` (the same objects).
        background_m: the object's background depth (NaN when its 2D box shows nothing behind it).
        shares: (N, 4) share of the object's pixels in each of :data:`DIAGNOSIS_CATEGORIES`.
    """

    frame_ids: tuple[str, ...]
    types: tuple[str, ...]
    distance_m: np.ndarray
    pixels: np.ndarray
    background_m: np.ndarray
    shares: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectDiagnosis):
            return NotImplemented
        return _same_objects(self, other, ("distance_m", "pixels", "background_m", "shares"))

    def by_distance(self, edges: Sequence[float] = DISTANCE_BINS_M) -> list[dict[str, Any]]:
        """One row per bin and ``all``: objects, objects with a background, the mean over objects of
        each category's share (``share_true`` …), and how many objects have at least half their
        pixels at the background depth."""
        rows = []
        for label, sel in _bins_of_objects(self.distance_m, edges):
            n = int(sel.sum())
            row: dict[str, Any] = {"bin_m": label, "objects": n,
                                   "with_background": int(np.isfinite(self.background_m[sel]).sum())}
            for j, cat in enumerate(DIAGNOSIS_CATEGORIES):
                row[f"share_{cat}"] = float(self.shares[sel, j].mean()) if n else float("nan")
            row["background_majority"] = int((self.shares[sel, 1] >= 0.5).sum())
            rows.append(row)
        return rows

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict: the definition, the binned table and the per-object values."""
        return {"definition": "dominant-bin depth of each object pixel: within 10 % of its ground truth (true), "
                              "else within 10 % of the object's background depth (median ground truth of its 2D box's "
                              "other pixels more than 10 % behind its median), else farther (far) or nearer (near)",
                "by_distance": [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                                for r in self.by_distance()],
                "objects": {"frame_ids": list(self.frame_ids), "types": list(self.types),
                            "distance_m": self.distance_m.tolist(), "pixels": self.pixels.tolist(),
                            "background_m": [None if v != v else v for v in self.background_m.tolist()],
                            "shares": self.shares.tolist()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ObjectDiagnosis":
        """Inverse of :meth:`to_json`."""
        o = d["objects"]
        return cls(tuple(o["frame_ids"]), tuple(o["types"]), np.asarray(o["distance_m"], dtype=np.float64),
                   np.asarray(o["pixels"], dtype=np.int64),
                   np.asarray([np.nan if v is None else v for v in o["background_m"]], dtype=np.float64),
                   np.asarray(o["shares"], dtype=np.float64).reshape(-1, len(DIAGNOSIS_CATEGORIES)))


def object_background_depth(gt_depth_m: np.ndarray, obj: Object3d, object_mask: np.ndarray) -> float:
    """The object's background depth: the median ground truth of the pixels of its 2D box that are
    not its own (``object_mask``) and lie more than :data:`DIAGNOSIS_TOLERANCE` behind the median
    ground truth of its own pixels; NaN when there are none. (Occluders in front and the road it
    stands on are not behind it.)"""
    own = float(np.median(gt_depth_m[object_mask].astype(np.float64)))
    box = boxes_mask(gt_depth_m.shape, np.array([[obj.x1, obj.y1, obj.x2, obj.y2]]))
    behind = box & ~object_mask & (gt_depth_m > own * (1.0 + DIAGNOSIS_TOLERANCE))
    return float(np.median(gt_depth_m[behind].astype(np.float64))) if behind.any() else float("nan")


def classify_object_pixels(mode_m: np.ndarray, gt_m: np.ndarray, background_m: float) -> np.ndarray:
    """(N,) int: each pixel's category index in :data:`DIAGNOSIS_CATEGORIES` from its dominant-bin
    depth ``mode_m`` and ground truth ``gt_m``: ``true`` when ``|mode − gt| ≤ 10 %·gt``, else
    ``background`` when ``|mode − background| ≤ 10 %·background`` (never when it is NaN), else
    ``far`` (mode > gt) or ``near``."""
    mode, gt = np.asarray(mode_m, np.float64), np.asarray(gt_m, np.float64)
    tol = DIAGNOSIS_TOLERANCE
    out = np.where(mode > gt, 2, 3)
    if np.isfinite(background_m):
        out = np.where(np.abs(mode - background_m) <= tol * background_m, 1, out)
    return np.where(np.abs(mode - gt) <= tol * gt, 0, out)


def object_diagnosis(modes: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                     labels: Sequence[Sequence[Object3d]], calibs: Sequence[Calibration],
                     frame_ids: Sequence[str] | None = None,
                     classes: Sequence[str] = DEPTH_FOREGROUND_CLASSES) -> ObjectDiagnosis:
    """Per-object diagnosis of dominant-bin depth maps ``modes`` (metres) against the ground truth,
    over the objects of :func:`object_depth_errors` (:func:`classify_object_pixels`,
    :func:`object_background_depth`)."""
    if len(modes) != len(gts):
        raise ValueError(f"{len(modes)} dominant-bin maps for {len(gts)} ground-truth maps")
    cols: dict[str, list[Any]] = {k: [] for k in ("fid", "type", "dist", "n", "bg", "shares")}
    for k, fid, obj, mask in _scored_objects(gts, labels, calibs, frame_ids, classes):
        background = object_background_depth(gts[k], obj, mask)
        cat = classify_object_pixels(modes[k][mask], gts[k][mask], background)
        shares = np.bincount(cat, minlength=len(DIAGNOSIS_CATEGORIES)) / cat.size
        for key, val in (("fid", fid), ("type", obj.type), ("dist", obj.z), ("n", int(mask.sum())),
                         ("bg", background), ("shares", shares)):
            cols[key].append(val)
    return ObjectDiagnosis(tuple(cols["fid"]), tuple(cols["type"]), np.asarray(cols["dist"], dtype=np.float64),
                           np.asarray(cols["n"], dtype=np.int64), np.asarray(cols["bg"], dtype=np.float64),
                           np.asarray(cols["shares"], dtype=np.float64).reshape(-1, len(DIAGNOSIS_CATEGORIES)))


def format_diagnosis_table(rows: Mapping[str, ObjectDiagnosis]) -> str:
    """Markdown: per method and distance bin, the mean shares of the objects' pixels by where their
    dominant bin lies."""
    lines = ["| method | distance (m) | objects | with background | at true depth | at background depth | "
             "farther, elsewhere | nearer, elsewhere | objects with ≥ half at background |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in rows.items():
        for r in res.by_distance():
            lines.append(f"| {name} | {r['bin_m']} | {r['objects']} | {r['with_background']} | "
                         + " | ".join(_fmt(r[f"share_{c}"]) for c in DIAGNOSIS_CATEGORIES)
                         + f" | {r['background_majority']} |")
    return "\n".join(lines)


def format_object_table(rows: Mapping[str, ObjectDepthErrors]) -> str:
    """Markdown: per method and distance bin, objects and mean relative / median absolute error."""
    lines = ["| method | distance (m) | objects | mean rel. error | median rel. error | median abs. error (m) | "
             "mean signed error (m) |", "|---|---|---|---|---|---|---|"]
    for name, res in rows.items():
        for r in res.by_distance():
            lines.append(f"| {name} | {r['bin_m']} | {r['objects']} | {_fmt(r['mean_rel'])} | {_fmt(r['median_rel'])} "
                         f"| {_fmt(r['median_abs_m'])} | {_fmt(r['mean_signed_m'])} |")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return "–" if v != v else f"{v:.3f}"


def format_surface(rows: Mapping[str, DepthEvalResult]) -> str:
    """Markdown: absRel / SILog pooled over the object-surface pixels, beside the fg (boxes) region."""
    lines = ["| method | object surfaces | pixels | foreground (2D boxes) |", "|---|---|---|---|"]
    for name, res in rows.items():
        surf = res.surface or {"absrel": float("nan"), "silog": float("nan"), "pixels": 0}
        lines.append(f"| {name} | {_fmt(surf['absrel'])} / {_fmt(surf['silog'])} | {int(surf['pixels'])} | "
                     f"{_fmt(res.pooled['fg']['absrel'])} / {_fmt(res.pooled['fg']['silog'])} |")
    return "\n".join(lines)


def format_objects(rows: Mapping[str, DepthEvalResult]) -> str:
    """Markdown: the object-surface region, the per-object table by distance and, for the rows that
    have one, the per-object diagnosis, of the rows with per-object figures ("" when none has)."""
    objects = {n: r.objects for n, r in rows.items() if r.objects is not None}
    if not objects:
        return ""
    md = (f"Object surfaces (absRel / SILog pooled over the pixels whose ground-truth point lies inside the 3D "
          f"box of an object of the foreground classes)\n\n{format_surface({n: rows[n] for n in objects})}\n\n"
          f"Per-object depth error (median over each object's pixels vs ground truth; pixels = 2D box with the "
          f"ground-truth point inside the 3D box; signed + = placed too far), by distance\n\n"
          f"{format_object_table(objects)}\n")
    diagnosed = {n: r.diagnosis for n, r in rows.items() if r.diagnosis is not None}
    if diagnosed:
        md += (f"\nPer-object diagnosis (depth-infer --dominant): mean share of an object's pixels whose dominant "
               f"bin is within 10 % of the pixel's true depth, else within 10 % of the object's background depth "
               f"(median true depth of its 2D box's other pixels more than 10 % behind it), else farther or "
               f"nearer\n\n{format_diagnosis_table(diagnosed)}\n")
    return md


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
