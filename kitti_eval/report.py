"""Tables of an evaluation: pandas DataFrame, markdown, and the devkit-style console table."""

from __future__ import annotations

from typing import Mapping

from kitti_eval.settings import IouThresholds

DIFFICULTIES = ("easy", "moderate", "hard")
_METRIC_NAMES = {"2d": "2D bbox", "bev": "BEV", "3d": "3D", "aos": "AOS"}

APTable = Mapping[str, Mapping[str, Mapping[str, tuple[float, float, float]]]]


def _rows(ap: APTable):
    for cls, metrics in ap.items():
        for metric, recalls in metrics.items():
            for recall, values in recalls.items():
                yield cls, metric, recall, values


def to_dataframe(ap: APTable):
    """One row per (class, metric, recall); columns ``easy``, ``moderate``, ``hard`` (percent)."""
    import pandas as pd

    rows = [dict(zip(("class", "metric", "recall") + DIFFICULTIES, (c, m, r, *v)))
            for c, m, r, v in _rows(ap)]
    return pd.DataFrame(rows, columns=["class", "metric", "recall", *DIFFICULTIES])


def to_markdown(ap: APTable, digits: int = 2) -> str:
    """A markdown table: rows (class, metric), columns ``R40 easy`` ... ``R11 hard``."""
    recalls = sorted({r for _, _, r, _ in _rows(ap)}, key=lambda r: -int(r[1:]))
    head = ["class", "metric"] + [f"{r} {d}" for r in recalls for d in DIFFICULTIES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cls, metrics in ap.items():
        for metric, values in metrics.items():
            cells = [f"{v:.{digits}f}" for r in recalls for v in values.get(r, ("",) * 3)]
            lines.append(f"| {cls} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_table(ap: APTable, iou: IouThresholds, n_frames: int) -> str:
    """The familiar devkit-style console table, one block per class, AP in percent."""
    out = [f"KITTI object evaluation (devkit protocol), {n_frames} frames, AP in %"]
    if not ap:
        out.append("no class was detected: nothing to evaluate")
    for cls, metrics in ap.items():
        ious = ", ".join(f"{m} {iou.for_metric(m, cls):.2f}" for m in ("2d", "bev", "3d"))
        out.append(f"{cls} (IoU {ious})")
        recalls = sorted({r for v in metrics.values() for r in v}, key=lambda r: -int(r[1:]))
        out.append(f"  {'':<8} {'':<4} {'easy':>8} {'moderate':>9} {'hard':>8}")
        for metric, values in metrics.items():
            for r in recalls:
                e, m, h = values[r]
                out.append(f"  {_METRIC_NAMES[metric]:<8} {r:<4} {e:8.2f} {m:9.2f} {h:8.2f}")
    return "\n".join(out)
