"""The paper's Table 4 (and Table 2) for a run: markdown, CSV and a bar chart.

AP numbers come from each cloud's ``eval.json`` (kitti_eval, the devkit's protocol); the paper's
own rows and other methods' published rows are copied from docs/paper.md §6 and marked as
quoted.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from kitti.fileio import atomic_write_bytes, atomic_write_text

DIFFS = ("easy", "moderate", "hard")

#: Table 4 of the paper (Car, IoU 0.7, KITTI val, 11-point AP): (BEV, 3D) per difficulty.
PAPER_ROWS: Mapping[str, tuple[tuple[float | None, float | None], ...]] = {
    "F-PN, baseline-PL (paper)": ((17.3, 9.6), (11.8, 5.4), (10.4, 5.0)),
    "F-PN, ForeSeE-PL (paper)": ((20.2, 13.2), (12.6, 9.4), (12.0, 8.2)),
    "AVOD, baseline-PL (paper)": ((19.0, 7.5), (15.3, 6.1), (13.0, 5.4)),
    "AVOD, ForeSeE-PL (paper)": ((23.4, 15.0), (17.4, 12.5), (15.9, 12.0)),
}
#: Other methods' published rows in the paper's Table 4 (quoted, not run here).
QUOTED_ROWS: Mapping[str, tuple[tuple[float | None, float | None], ...]] = {
    "Mono3D (quoted)": ((5.2, 2.5), (5.2, 2.3), (4.1, 2.3)),
    "MLF-MONO (quoted)": ((22.0, 10.5), (13.6, 5.7), (11.6, 5.4)),
    "ROI-10D (quoted)": ((14.5, 9.6), (9.9, 6.6), (8.7, 6.3)),
    "MonoGRNet (quoted)": ((None, 13.9), (None, 10.2), (None, 7.6)),
    "MonoPSR (quoted)": ((20.6, 12.8), (18.7, 11.5), (14.5, 8.6)),
    "TLNet-Mono (quoted)": ((21.9, 13.8), (15.7, 9.7), (14.3, 9.3)),
    "DFDSNet (quoted)": ((9.5, 6.0), (8.0, 5.5), (7.7, 4.8)),
}
#: Our rows: cloud name -> row label (after the detector's prefix).
CLOUD_LABELS = {
    "baseline": "baseline-PL (ours)",
    "foresee": "ForeSeE-PL (ours)",
    "oracle": "oracle-PL: GT depth (ours)",
    "lidar": "LiDAR (ours)",
}
ROW_LABELS = {cloud: f"F-PN, {label}" for cloud, label in CLOUD_LABELS.items()}


@dataclass(frozen=True)
class Table4Row:
    label: str
    source: str  # "measured", "paper", "quoted"
    recall: str  # "R11" or "R40"
    bev: tuple[float | None, float | None, float | None]
    ap3d: tuple[float | None, float | None, float | None]


def rows_from_evals(evals: Mapping[str, Mapping], recall: str, prefix: str = "F-PN") -> list[Table4Row]:
    """Our rows from eval.json contents (cloud -> json), Car at the evaluator's Car threshold;
    ``prefix`` names the detector (``F-PN``, ``AVOD``)."""
    rows = []
    for cloud in ("baseline", "foresee", "oracle", "lidar"):
        if cloud not in evals:
            continue
        car = evals[cloud].get("Car", {})
        bev = tuple(car.get("bev", {}).get(recall, [0.0, 0.0, 0.0]))
        ap3d = tuple(car.get("3d", {}).get(recall, [0.0, 0.0, 0.0]))
        rows.append(Table4Row(f"{prefix}, {CLOUD_LABELS[cloud]}", "measured", recall, bev, ap3d))  # type: ignore[arg-type]
    return rows


def reference_rows() -> list[Table4Row]:
    out = []
    for src, table in (("paper", PAPER_ROWS), ("quoted", QUOTED_ROWS)):
        for label, vals in table.items():
            out.append(Table4Row(label, src, "R11", tuple(v[0] for v in vals), tuple(v[1] for v in vals)))  # type: ignore[arg-type]
    return out


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def table4_markdown(measured: Sequence[Table4Row], *, title: str, note: str = "",
                    iou: str = "0.7", with_reference: bool = True) -> str:
    """Markdown: our rows (R11 and R40) then (at IoU 0.7) the paper's and quoted rows (R11)."""
    lines = [f"### {title}", "", f"AP_BEV / AP_3D, Car, IoU {iou}" + (f" — {note}" if note else ""), "",
             "| method | AP | easy | moderate | hard |", "|---|---|---|---|---|"]
    for r in list(measured) + (reference_rows() if with_reference else []):
        cells = [f"{_fmt(b)} / {_fmt(a)}" for b, a in zip(r.bev, r.ap3d)]
        lines.append(f"| {r.label} | {r.recall} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table4_csv(measured: Sequence[Table4Row], *, with_reference: bool = True) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "source", "recall", *[f"bev_{d}" for d in DIFFS], *[f"3d_{d}" for d in DIFFS]])
    for r in list(measured) + (reference_rows() if with_reference else []):
        w.writerow([r.label, r.source, r.recall, *["" if v is None else f"{v:.4f}" for v in r.bev],
                    *["" if v is None else f"{v:.4f}" for v in r.ap3d]])
    return buf.getvalue()


def table4_png(measured: Sequence[Table4Row], path: Path, *, title: str) -> None:
    """Grouped bars: AP_BEV and AP_3D (moderate and easy) per row, ours next to the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in measured if r.recall == "R11"] + [
        r for r in reference_rows() if r.source == "paper" and r.label.startswith("F-PN")]
    labels = [r.label.replace("F-PN, ", "") for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, metric in zip(axes, ("bev", "ap3d")):
        for i, d in enumerate(DIFFS):
            vals = [getattr(r, metric)[i] or 0.0 for r in rows]
            ax.bar(x + (i - 1) * 0.27, vals, 0.27, label=d)
        ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=8)
        ax.set_title(("AP_BEV" if metric == "bev" else "AP_3D") + " (Car, IoU 0.7, R11)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("AP (%)")
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_table4(evals: Mapping[str, Mapping], out_dir: Path, *, title: str, note: str = "",
                 evals_loose: Mapping[str, Mapping] | None = None,
                 more_detectors: Mapping[str, tuple[Mapping[str, Mapping], Mapping[str, Mapping] | None]] | None = None,
                 ) -> str:
    """Write table4.md / table4.csv / table4.png (IoU 0.7, the paper's setting) into ``out_dir``,
    plus table4_iou05.md / .csv from the loose evaluation when given; returns the markdown.

    ``evals`` are F-PointNet's; ``more_detectors`` maps another detector's row prefix (``AVOD``)
    to its (evals, loose evals), whose rows follow F-PointNet's."""
    more = dict(more_detectors or {})
    measured = rows_from_evals(evals, "R11") + rows_from_evals(evals, "R40")
    for prefix, (ev, _) in more.items():
        measured += rows_from_evals(ev, "R11", prefix) + rows_from_evals(ev, "R40", prefix)
    md = table4_markdown(measured, title=title, note=note)
    atomic_write_text(out_dir / "table4.md", md)
    atomic_write_text(out_dir / "table4.csv", table4_csv(measured))
    table4_png(measured, out_dir / "table4.png", title=title)
    atomic_write_text(out_dir / "evals.json", json.dumps(evals, indent=1))
    if evals_loose:
        loose = rows_from_evals(evals_loose, "R11") + rows_from_evals(evals_loose, "R40")
        for prefix, (_, ev_loose) in more.items():
            if ev_loose:
                loose += rows_from_evals(ev_loose, "R11", prefix) + rows_from_evals(ev_loose, "R40", prefix)
        md_loose = table4_markdown(loose, title=title + " — loose IoU (not in the paper)", note=note,
                                   iou="0.5", with_reference=False)
        atomic_write_text(out_dir / "table4_iou05.md", md_loose)
        atomic_write_text(out_dir / "table4_iou05.csv", table4_csv(loose, with_reference=False))
        atomic_write_text(out_dir / "evals_iou05.json", json.dumps(evals_loose, indent=1))
        md = md + "\n" + md_loose
    return md
