"""The KITTI object benchmark's AP, computed like the official devkit (``evaluate_object.cpp``).

Protocol (all of it devkit behaviour; see ``tests/data/golden_kitti_eval/README.md``):

* classes Car, Pedestrian, Cyclist, compared case-insensitively; Van ground truth is *ignored* for
  Car and Person_sitting for Pedestrian (a detection matched to them is neither TP nor FP);
* ground truth outside the difficulty (occlusion / truncation above the maximum, 2D height
  ``y2 - y1 <=`` the minimum, :mod:`kitti.labels`) is ignored; detections whose height truncated
  to an int is below the minimum are ignored;
* greedy matching in ground-truth order, a match needs overlap strictly above the threshold;
  DontCare regions swallow unmatched detections (intersection / detection area);
* 41 score thresholds from the recall pass (``getThresholds``), precision made monotone,
  AP over samples 0, 4, ..., 40 (``R11``, includes recall 0) or 1..40 (``R40``), in percent;
* a class is evaluated only if it is detected at least once (per metric, the devkit's
  ``eval_image``/``eval_ground``/``eval_3d``), AOS only if no detection has ``alpha == -10``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from kitti.classes import EVAL_CLASSES
from kitti.errors import KittiFormatError
from kitti.labels import MIN_HEIGHT_PX, MAX_OCCLUSION, MAX_TRUNCATION, Difficulty, Object3d
from kitti_eval import _kernels as K
from kitti_eval.loading import FrameLabels, label_frame_ids, read_label_folder
from kitti_eval.settings import METRICS, RECALL_POINTS, EvalSettings, IouThresholds

#: Recall positions the devkit samples (``N_SAMPLE_PTS``).
N_SAMPLE_PTS = 41
#: Neighbouring class whose ground truth is ignored (not a false negative) for each class.
NEIGHBOUR_CLASS: Mapping[str, str | None] = MappingProxyType(
    {"Car": "Van", "Pedestrian": "Person_sitting", "Cyclist": None})

APTable = Mapping[str, Mapping[str, Mapping[str, tuple[float, float, float]]]]


@dataclass(frozen=True)
class EvalResult:
    """AP of one evaluation.

    Attributes:
        ap: class -> metric (``2d``, ``bev``, ``3d``, ``aos``) -> ``R11``/``R40`` ->
            (easy, moderate, hard), percent. Only evaluated entries appear (devkit rules).
        curves: (class, metric) -> (3, 41) interpolated precision (orientation similarity for
            ``aos``) at recall samples 0, 1/40, ..., 1, rows easy/moderate/hard.
        n_frames: frames evaluated.
        iou: the thresholds used.
        n_gt: class -> valid ground-truth objects per difficulty (easy, moderate, hard), for
            the classes evaluated.
    """

    ap: APTable
    curves: Mapping[tuple[str, str], np.ndarray] = field(repr=False)
    n_frames: int
    iou: IouThresholds
    n_gt: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)

    def sampling_notes(self) -> list[str]:
        """One line per class whose AP is capped by the devkit's recall sampling (a difficulty
        with 1 to 40 valid objects, :func:`sampling_cap`): the counts and the caps."""
        lines = []
        for cname, counts in self.n_gt.items():
            if cname not in self.ap or not any(0 < n < N_SAMPLE_PTS for n in counts):
                continue
            recalls = sorted({r for ms in self.ap[cname].values() for r in ms}, key=lambda r: -int(r[1:]))
            caps = ", ".join(f"{r} " + " / ".join(f"{sampling_cap(n, int(r[1:])):.2f}" for n in counts)
                             for r in recalls)
            lines.append(f"note: {cname} has {' / '.join(map(str, counts))} ground-truth objects "
                         f"(easy / moderate / hard); with {N_SAMPLE_PTS - 1} or fewer, the devkit's recall "
                         f"sampling caps AP even for perfect detections, here at {caps}")
        return lines

    def to_dict(self) -> dict:
        """Plain nested dict in the golden ``expected.json`` schema."""
        return {c: {m: {r: list(v) for r, v in rs.items()} for m, rs in ms.items()}
                for c, ms in self.ap.items()}

    def to_json(self, indent: int | None = 1) -> str:
        """JSON text of :meth:`to_dict` (full double precision)."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self):
        """pandas DataFrame, one row per (class, metric, recall), columns easy/moderate/hard."""
        from kitti_eval.report import to_dataframe

        return to_dataframe(self.ap)

    def to_markdown(self) -> str:
        """Markdown table: one row per (class, metric), columns per recall and difficulty."""
        from kitti_eval.report import to_markdown

        return to_markdown(self.ap)


def _as_labels(x: FrameLabels | Sequence[Sequence[Object3d]]) -> FrameLabels:
    return x if isinstance(x, FrameLabels) else FrameLabels.from_objects(x)


def clean_data(class_name: str, difficulty: Difficulty, gt_types: np.ndarray,
               gt: FrameLabels, det_types: np.ndarray, det: FrameLabels,
               codes: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """The devkit's ``cleanData`` for all frames at once.

    Returns:
        ``(ignored_gt, ignored_det, n_gt)``: int8 states 0 (valid), 1 (ignored: matched
        detections are neither TP nor FP), -1 (irrelevant) per row, and the valid-GT count.
    """
    d = int(difficulty)
    cls = codes.get(class_name.lower(), -2)
    neighbour = NEIGHBOUR_CLASS[class_name]
    nb = codes.get(neighbour.lower(), -2) if neighbour else -2
    height = gt.box2d[:, 3] - gt.box2d[:, 1]
    ignore = ((gt.occluded > MAX_OCCLUSION[d]) | (gt.truncated > MAX_TRUNCATION[d])
              | (height <= MIN_HEIGHT_PX[d]))
    valid = gt_types == cls
    ignored_gt = np.full(len(gt), -1, dtype=np.int8)
    ignored_gt[(gt_types == nb) | (valid & ignore)] = 1
    ignored_gt[valid & ~ignore] = 0
    det_height = np.abs(det.box2d[:, 1] - det.box2d[:, 3]).astype(np.int32)  # (int32_t) fabs(...)
    ignored_det = np.where(det_height < MIN_HEIGHT_PX[d], 1,
                           np.where(det_types == cls, 0, -1)).astype(np.int8)
    return ignored_gt, ignored_det, int((ignored_gt == 0).sum())


def _max_element_filter(x: np.ndarray, n: int) -> np.ndarray:
    """``x[i] = *max_element(x.begin() + i, x.end())`` for i < n, C++ semantics (NaN kept)."""
    out = x.copy()
    for i in range(n):
        best = out[i]
        for v in out[i + 1:]:
            if best < v:
                best = v
        out[i] = best
    return out


def sampling_cap(n_gt: int, recall_points: int) -> float:
    """The highest AP (percent) the devkit can give a class and difficulty with ``n_gt`` valid
    ground-truth objects: that of perfect detections (every object found, no false positive).

    The devkit samples the precision curve at the score thresholds ``getThresholds`` picks, one
    per 1/40 of recall; with ``n_gt <= 40`` objects it finds only ``n_gt`` of them (recall
    1/n, 2/n, ..., 1 each get one), so the curve holds precision 1 at samples ``0 .. n_gt - 1`` and
    0 after: R40 (samples 1..40) is ``100 (n_gt - 1) / 40``, R11 (samples 0, 4, ..., 40)
    ``100 ceil(n_gt / 4) / 11``. From 41 objects on the cap is 100. 0 objects: 0.
    """
    if n_gt <= 0:
        return 0.0
    scores = np.arange(n_gt, 0, -1, dtype=np.float64)  # n_gt distinct scores, all true positives
    n_thr = min(len(K.get_thresholds(scores, n_gt, N_SAMPLE_PTS)), N_SAMPLE_PTS)
    curve = np.zeros(N_SAMPLE_PTS)
    curve[:n_thr] = 1.0
    return average_precision(curve, recall_points)


def average_precision(curve: np.ndarray, recall_points: int) -> float:
    """AP in percent from a 41-sample curve: R11 = samples 0, 4, ..., 40; R40 = samples 1..40."""
    samples = curve[0::4] if recall_points == 11 else curve[1:]
    total = 0.0
    for v in samples:
        total += float(v)
    return total / recall_points * 100.0


def _curves(n_thr: int, tp: np.ndarray, fp: np.ndarray, similarity: np.ndarray,
            with_aos: bool) -> tuple[np.ndarray, np.ndarray]:
    """End of the devkit's ``eval_class``: (41,) interpolated precision and orientation similarity."""
    precision, aos = np.zeros(N_SAMPLE_PTS), np.zeros(N_SAMPLE_PTS)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 stays NaN, as in C++
        precision[:n_thr] = tp[:n_thr] / (tp[:n_thr] + fp[:n_thr]).astype(np.float64)
        aos[:n_thr] = similarity[:n_thr] / (tp[:n_thr] + fp[:n_thr]).astype(np.float64)
    return _max_element_filter(precision, n_thr), _max_element_filter(aos, n_thr) if with_aos else aos


def evaluate(gt: FrameLabels | Sequence[Sequence[Object3d]],
             det: FrameLabels | Sequence[Sequence[Object3d]],
             classes: Sequence[str] = EVAL_CLASSES, metrics: Sequence[str] = METRICS,
             recall_points: Sequence[int] = RECALL_POINTS,
             thresholds: IouThresholds = IouThresholds()) -> EvalResult:
    """Evaluate detections against ground truth like the official KITTI devkit.

    Args:
        gt: ground truth per frame (label_2 objects, DontCare included) or a :class:`FrameLabels`.
        det: detections per frame, same frames in the same order; every one needs a score.
        classes: subset of ``("Car", "Pedestrian", "Cyclist")``.
        metrics: subset of ``("2d", "bev", "3d", "aos")``.
        recall_points: subset of ``(11, 40)``.
        thresholds: minimum overlaps per metric and class.

    Returns:
        An :class:`EvalResult` (AP in percent).

    Example:
        >>> from kitti.labels import parse_label_line
        >>> g = parse_label_line("Car 0.00 0 0.1 100 100 300 200 1.5 1.6 4.0 1.0 1.6 20.0 0.1")
        >>> d = parse_label_line("Car -1 -1 0.1 100 100 300 200 1.5 1.6 4.0 1.0 1.6 20.0 0.1 0.9")
        >>> evaluate([[g]], [[d]], classes=("Car",), metrics=("3d",)).ap["Car"]["3d"]["R11"]
        (9.090909090909092, 9.090909090909092, 9.090909090909092)
    """
    settings = EvalSettings(tuple(classes), tuple(metrics), tuple(recall_points), thresholds)
    gt, det = _as_labels(gt), _as_labels(det)
    if gt.frame_ids != det.frame_ids:
        raise ValueError(f"ground truth and detections must list the same frames in the same order "
                         f"(got {gt.n_frames} and {det.n_frames} frames)")
    if np.isnan(det.score).any():
        raise ValueError("every detection needs a score")
    vocab = sorted({t.lower() for t in gt.types} | {t.lower() for t in det.types})
    codes = {name: i for i, name in enumerate(vocab)}
    gt_types = np.array([codes[t.lower()] for t in gt.types], dtype=np.int64)
    det_types = np.array([codes[t.lower()] for t in det.types], dtype=np.int64)
    is_dc = gt_types == codes.get("dontcare", -2)
    compute_aos = not bool((det.alpha == -10).any())
    x, y, z = det.loc_rect.T
    h, w, l = det.hwl.T
    evaluated = {  # the devkit's eval_image / eval_ground / eval_3d conditions
        "2d": det.box2d[:, 0] >= 0,
        "bev": (x != -1000) & (z != -1000) & (w > 0) & (l > 0),
        "3d": (x != -1000) & (y != -1000) & (z != -1000) & (h > 0) & (w > 0) & (l > 0),
    }
    pair_off = K.pair_offsets(gt.offsets, det.offsets)
    # rows 2d, bev, 3d: IoU per (detection, ground truth) pair, and the DontCare criterion
    metric_rows = {"2d": 0, "bev": 1, "3d": 2}
    overlaps, dc_overlaps = np.zeros((3, pair_off[-1])), np.zeros((3, pair_off[-1]))
    if "2d" in settings.metrics or "aos" in settings.metrics:
        K.image_overlap_frames(det.box2d, gt.box2d, det.offsets, gt.offsets, pair_off,
                               overlaps[0], dc_overlaps[0])
    if "bev" in settings.metrics or "3d" in settings.metrics:
        K.ground_overlap_frames(np.hstack([det.loc_rect, det.hwl, det.ry[:, None]]),
                                np.hstack([gt.loc_rect, gt.hwl, gt.ry[:, None]]), det.offsets,
                                gt.offsets, pair_off, overlaps[1:], dc_overlaps[1:])
    tasks = []  # (class, metric, difficulty, with_aos, min_overlap, ignored_gt, ignored_det, n_gt)
    for cname in settings.classes:
        cls_mask = det_types == codes.get(cname.lower(), -2)
        for metric in ("2d", "bev", "3d"):
            with_aos = metric == "2d" and "aos" in settings.metrics and compute_aos
            if not (metric in settings.metrics or with_aos) or not (cls_mask & evaluated[metric]).any():
                continue
            for diff in Difficulty:
                tasks.append((cname, metric, diff, with_aos, thresholds.for_metric(metric, cname),
                              *clean_data(cname, diff, gt_types, gt, det_types, det, codes)))
    tasks.sort(key=lambda t: (t[2], t[1]))  # interleave classes: balanced across threads
    ap: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {}
    curves: dict[tuple[str, str], np.ndarray] = {}
    n_gt: dict[str, list[int]] = {}
    for cname, _, diff, *_rest in tasks:
        n_gt.setdefault(cname, [0, 0, 0])[diff] = int(_rest[-1])
    if tasks:
        n_thr, tp, fp, _, sim = K.eval_tasks(
            gt.offsets, det.offsets, pair_off, np.stack([t[5] for t in tasks]),
            np.stack([t[6] for t in tasks]), det.score,
            np.array([metric_rows[t[1]] for t in tasks]), overlaps, dc_overlaps, is_dc,
            np.array([t[4] for t in tasks]), np.array([t[7] for t in tasks]), gt.alpha, det.alpha)
    for k, (cname, metric, diff, with_aos, *_) in enumerate(tasks):
        prec, aos = _curves(int(n_thr[k]), tp[k], fp[k], sim[k], with_aos)
        for name, curve in ((metric, prec), ("aos", aos)):
            if name in settings.metrics and (name != "aos" or with_aos):
                curves.setdefault((cname, name), np.zeros((3, N_SAMPLE_PTS)))[diff] = curve
    for (cname, name), curve in curves.items():
        ap.setdefault(cname, {})[name] = {
            f"R{r}": tuple(average_precision(curve[d], r) for d in range(3))
            for r in settings.recall_points}
    ap = {c: {m: ap[c][m] for m in METRICS if m in ap[c]} for c in settings.classes if c in ap}
    return EvalResult(ap=ap, curves=curves, n_frames=gt.n_frames, iou=thresholds,
                      n_gt={c: tuple(n_gt[c]) for c in settings.classes if c in n_gt})


def evaluate_folders(gt_label_dir: str | PathLike[str], det_dir: str | PathLike[str],
                     frame_ids: Sequence[str] | None = None, *, missing_as_empty: bool = False,
                     **kw) -> EvalResult:
    """Evaluate a results folder (``NNNNNN.txt`` with scores) against a ``label_2`` folder.

    Args:
        gt_label_dir: the ground-truth ``label_2`` folder.
        det_dir: one result file per frame (an empty file is a frame without detections).
        frame_ids: frames to evaluate (a split); ``None``: every result file in ``det_dir``
            (the devkit's rule).
        missing_as_empty: a frame of ``frame_ids`` without a result file counts as no detections
            instead of raising.
        **kw: passed to :func:`evaluate` (classes, metrics, recall_points, thresholds).

    Raises:
        KittiFormatError: missing or malformed files, naming file and line.
    """
    if frame_ids is None:
        frame_ids = label_frame_ids(det_dir)
        if not frame_ids:
            raise KittiFormatError(Path(det_dir), None, "no result files (*.txt) to evaluate")
    frame_ids = tuple(frame_ids)
    gt = read_label_folder(gt_label_dir, frame_ids)
    det = read_label_folder(det_dir, frame_ids, detections=True, missing_as_empty=missing_as_empty)
    return evaluate(gt, det, **kw)
