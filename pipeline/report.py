"""The paper's Table 4 (and Table 2) for a run: markdown, CSV and a bar chart.

AP numbers come from each (detector, cloud) ``eval.json`` (kitti_eval, the devkit's protocol); the
paper's own rows and other methods' published rows are copied from docs/paper.md §6 and marked as
quoted. Row prefixes (``F-PN``, ``AVOD``) are the detectors' registry labels
(:mod:`pipeline.detectors`).

Machine-readable files of :func:`write_table4`: ``evals.json`` / ``evals_iou05.json`` map
detector name -> cloud -> that eval's full ``eval.json`` / ``eval_loose.json``; ``table4.csv`` /
``table4_iou05.csv`` have one row per (detector, cloud, recall) with ``detector`` and ``cloud``
columns (empty for the paper's and quoted rows).
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
    "foresee-obj": "ForeSeE-obj-PL (extension, not in the paper)",
    "oracle": "oracle-PL: GT depth (ours)",
    "lidar": "LiDAR (ours)",
}
#: The order of the measured rows of every table (Table 4, the seed tables).
ROW_ORDER: tuple[str, ...] = ("baseline", "foresee", "foresee-obj", "oracle", "lidar")
ROW_LABELS = {cloud: f"F-PN, {label}" for cloud, label in CLOUD_LABELS.items()}


@dataclass(frozen=True)
class Table4Row:
    label: str
    source: str  # "measured", "paper", "quoted"
    recall: str  # "R11" or "R40"
    bev: tuple[float | None, float | None, float | None]
    ap3d: tuple[float | None, float | None, float | None]
    detector: str = ""  # registry name of a measured row's detector
    cloud: str = ""  # a measured row's cloud


def rows_from_evals(evals: Mapping[str, Mapping], recall: str, prefix: str = "F-PN",
                    detector: str = "") -> list[Table4Row]:
    """Our rows from eval.json contents (cloud -> json), Car at the evaluator's Car threshold;
    ``prefix`` names the detector (``F-PN``, ``AVOD``), ``detector`` is its registry name."""
    rows = []
    for cloud in ROW_ORDER:
        if cloud not in evals:
            continue
        car = evals[cloud].get("Car", {})
        bev = tuple(car.get("bev", {}).get(recall, [0.0, 0.0, 0.0]))
        ap3d = tuple(car.get("3d", {}).get(recall, [0.0, 0.0, 0.0]))
        rows.append(Table4Row(f"{prefix}, {CLOUD_LABELS[cloud]}", "measured", recall,
                              bev, ap3d, detector, cloud))  # type: ignore[arg-type]
    return rows


def measured_rows(evals: Mapping[str, Mapping[str, Mapping]], labels: Mapping[str, str] | None = None
                  ) -> list[Table4Row]:
    """R11 then R40 rows of every detector in ``evals`` (detector -> cloud -> eval.json), in its
    order; ``labels``: detector -> row prefix (default: the registry's label)."""
    from pipeline.detectors import DETECTORS

    rows: list[Table4Row] = []
    for det, ev in evals.items():
        prefix = (labels or {}).get(det) or (DETECTORS[det].label if det in DETECTORS else det)
        rows += rows_from_evals(ev, "R11", prefix, det) + rows_from_evals(ev, "R40", prefix, det)
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
    w.writerow(["method", "source", "recall", *[f"bev_{d}" for d in DIFFS], *[f"3d_{d}" for d in DIFFS],
                "detector", "cloud"])
    for r in list(measured) + (reference_rows() if with_reference else []):
        w.writerow([r.label, r.source, r.recall, *["" if v is None else f"{v:.4f}" for v in r.bev],
                    *["" if v is None else f"{v:.4f}" for v in r.ap3d], r.detector, r.cloud])
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


def with_zeros(evals: Mapping[str, Mapping]) -> dict:
    """cloud -> evaluation with every class of the eval stage present: the devkit leaves out a
    class nothing was detected as (its AP is 0: nothing found), and the tables print 0.0 for it,
    so the JSON says 0.0 too (every metric, R11 and R40) instead of leaving the class out."""
    from kitti.classes import EVAL_CLASSES

    zero = {m: {r: [0.0, 0.0, 0.0] for r in ("R11", "R40")} for m in ("2d", "bev", "3d", "aos")}
    return {cloud: {**{c: zero for c in EVAL_CLASSES}, **dict(ev)} for cloud, ev in evals.items()}


def write_table4(evals: Mapping[str, Mapping[str, Mapping]], out_dir: Path, *, title: str, note: str = "",
                 evals_loose: Mapping[str, Mapping[str, Mapping]] | None = None,
                 labels: Mapping[str, str] | None = None) -> str:
    """Write table4.md / table4.csv / table4.png / evals.json (IoU 0.7, the paper's setting) into
    ``out_dir``, plus table4_iou05.md / .csv / evals_iou05.json from the loose evaluation when
    given; returns the markdown.

    ``evals`` / ``evals_loose``: detector name -> cloud -> eval.json / eval_loose.json contents,
    every detector's rows in that order; ``labels``: detector -> row prefix (default: registry)."""
    measured = measured_rows(evals, labels)
    md = table4_markdown(measured, title=title, note=note)
    atomic_write_text(out_dir / "table4.md", md)
    atomic_write_text(out_dir / "table4.csv", table4_csv(measured))
    table4_png(measured, out_dir / "table4.png", title=title)
    atomic_write_text(out_dir / "evals.json", json.dumps({d: with_zeros(ev) for d, ev in evals.items()}, indent=1))
    if evals_loose:
        loose = measured_rows(evals_loose, labels)
        md_loose = table4_markdown(loose, title=title + " — loose IoU (not in the paper)", note=note,
                                   iou="0.5", with_reference=False)
        atomic_write_text(out_dir / "table4_iou05.md", md_loose)
        atomic_write_text(out_dir / "table4_iou05.csv", table4_csv(loose, with_reference=False))
        atomic_write_text(out_dir / "evals_iou05.json", json.dumps({d: with_zeros(ev) for d, ev in evals_loose.items()}, indent=1))
        md = md + "\n" + md_loose
    return md


# ---------------------------------------------------------------------------- seeds and spread
#: the paired differences of the seed report, (row, reference row): ForeSeE − baseline, and with
#: the opt-in foresee-obj cloud ForeSeE-obj − baseline and ForeSeE-obj − ForeSeE. A pair is
#: reported where both rows exist; its subject is ``<row>-<reference>``.
DIFF_PAIRS: tuple[tuple[str, str], ...] = (("foresee", "baseline"), ("foresee-obj", "baseline"),
                                           ("foresee-obj", "foresee"))
#: how ``foresee run --seeds N`` decides whether a difference (ForeSeE − baseline, …) exceeds the seed spread.
SPREAD_RULE = ("paired per-seed difference d_s = ForeSeE_s − baseline_s (likewise ForeSeE-obj − baseline and "
               "ForeSeE-obj − ForeSeE); mean ± std (sample std, "
               "ddof=1) over the N seeds; \"exceeds the spread\" when |mean| > 2·std/√N (twice the "
               "standard error of the mean difference), else \"within the spread\"")
#: Table 2's columns as the seed tables name them: (region, metric key, label).
TABLE2_METRICS = tuple((r, m, f"{r} {lab}") for r in ("fg", "bg", "global")
                       for m, lab in (("absrel", "absRel"), ("silog", "SILog")))
#: The per-object columns of the Table 2 seed rows, from ``depth_metrics.json`` (not in the paper;
#: ``depth.metrics``): label -> (section, key, distance bin or None): the object-surface region's
#: absRel, the per-object mean relative error over all objects, and the per-object mean signed error
#: (metres; > 0 = too far) of the objects 30–40 m away.
TABLE2_OBJECT_METRICS: tuple[tuple[str, str, str, str | None], ...] = (
    ("object-surface absRel", "surface", "absrel", None),
    ("per-object mean rel. error (all)", "objects", "mean_rel", "all"),
    ("per-object mean signed error 30-40 m (m)", "objects", "mean_signed_m", "30-40"),
)


@dataclass(frozen=True)
class SeedRow:
    """One metric of one report row, over the seeds.

    Attributes:
        table: ``Table 2`` or ``Table 4``.
        method: ``depth`` (Table 2) or the detector's row prefix (``F-PN``, ``AVOD``).
        subject: the cloud / depth variant (``baseline``, ``foresee``, ``foresee-obj``, ``oracle``,
            ``lidar``), or a difference of two (``foresee-baseline``, :data:`DIFF_PAIRS`).
        metric: e.g. ``fg absRel`` or ``AP_BEV IoU 0.7 R40 moderate``.
        values: one per seed, in seed order (NaN where the metric is undefined).
    """

    table: str
    method: str
    subject: str
    metric: str
    values: tuple[float, ...]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for fewer than two values)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def spread_verdict(diffs: Sequence[float]) -> tuple[float, float, float, str]:
    """(mean, std, 2·std/√N, verdict) of paired per-seed differences (:data:`SPREAD_RULE`)."""
    mean, std = mean_std(diffs)
    bound = 2.0 * std / len(diffs) ** 0.5
    if mean != mean or bound != bound:
        return mean, std, bound, "undefined (a value is missing)"
    return mean, std, bound, "exceeds the spread" if abs(mean) > bound else "within the spread"


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _object_metric(depth_json: Mapping, section: str, key: str, bin_m: str | None) -> float:
    """One of :data:`TABLE2_OBJECT_METRICS` from a ``depth_metrics.json`` (NaN where it has none)."""
    part = depth_json.get(section)
    if not part:
        return float("nan")
    if bin_m is None:
        return _num(part.get(key))
    row = next((r for r in part.get("by_distance", ()) if r.get("bin_m") == bin_m), {})
    return _num(row.get(key))


def table2_seed_rows(depth: Mapping[str, Sequence[Mapping]]) -> list[SeedRow]:
    """Table 2 rows over the seeds: variant -> per-seed ``depth_metrics.json`` contents: the pooled
    regions (:data:`TABLE2_METRICS`), then the per-object columns (:data:`TABLE2_OBJECT_METRICS`)."""
    rows = []
    for variant, per_seed in depth.items():
        rows += [SeedRow("Table 2", "depth", variant, label, tuple(_num(j["pooled"][r][m]) for j in per_seed))
                 for r, m, label in TABLE2_METRICS]
        rows += [SeedRow("Table 2", "depth", variant, label, tuple(_object_metric(j, *where) for j in per_seed))
                 for label, *where in TABLE2_OBJECT_METRICS]
    return rows


def table4_seed_rows(prefix: str, cloud: str, iou: str, evals: Sequence[Mapping]) -> list[SeedRow]:
    """Table 4 rows (Car; AP_BEV and AP_3D, R11 and R40, easy / moderate / hard) of one detector
    and cloud at one IoU set over the seeds: per-seed ``eval.json`` contents."""
    rows = []
    for kind, lab in (("bev", "AP_BEV"), ("3d", "AP_3D")):
        for recall in ("R11", "R40"):
            for i, d in enumerate(DIFFS):
                vals = tuple(_num(e.get("Car", {}).get(kind, {}).get(recall, [None] * 3)[i]) for e in evals)
                rows.append(SeedRow("Table 4", prefix, cloud, f"{lab} IoU {iou} {recall} {d}", vals))
    return rows


def seed_diffs(rows: Sequence[SeedRow], pairs: Sequence[tuple[str, str]] = DIFF_PAIRS
               ) -> list[tuple[SeedRow, tuple[float, float, float, str]]]:
    """Per pair (row, reference) of ``pairs`` in order, row − reference per (table, method, metric)
    where both rows exist: the paired differences (as a SeedRow with subject ``<row>-<reference>``,
    e.g. ``foresee-baseline``) and :func:`spread_verdict`."""
    by = {(r.table, r.method, r.subject, r.metric): r for r in rows}
    out = []
    for subject, reference in pairs:
        for r in rows:
            ref = by.get((r.table, r.method, reference, r.metric))
            if r.subject != subject or ref is None:
                continue
            d = tuple(f - b for f, b in zip(r.values, ref.values, strict=True))
            out.append((SeedRow(r.table, r.method, f"{subject}-{reference}", r.metric, d), spread_verdict(d)))
    return out


def _f(v: float, digits: int) -> str:
    return "–" if v != v else f"{v:.{digits}f}"


def seeds_csv(rows: Sequence[SeedRow], seeds: Sequence[int]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "method", "row", "metric", *[f"seed{s}" for s in seeds], "mean", "std"])
    for r in rows:
        w.writerow([r.table, r.method, r.subject, r.metric, *[f"{v:.6g}" for v in r.values],
                    *[f"{v:.6g}" for v in mean_std(r.values)]])
    return buf.getvalue()


def seed_diffs_csv(diffs, seeds: Sequence[int]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "method", "metric", *[f"diff_seed{s}" for s in seeds], "mean", "std",
                "two_sem", "verdict", "row"])  # row: which difference (foresee-baseline, ...), last
    for r, (mean, std, bound, verdict) in diffs:
        w.writerow([r.table, r.method, r.metric, *[f"{v:.6g}" for v in r.values],
                    f"{mean:.6g}", f"{std:.6g}", f"{bound:.6g}", verdict, r.subject])
    return buf.getvalue()


#: the names of the rows in the headings of the differences.
_DIFF_NAMES = {"baseline": "baseline", "foresee": "ForeSeE", "foresee-obj": "ForeSeE-obj"}


def seeds_markdown(rows: Sequence[SeedRow], seeds: Sequence[int], *, title: str, note: str = "") -> str:
    """Every seed's value and mean ± std per metric, then per pair of :data:`DIFF_PAIRS` present
    (ForeSeE − baseline first) one line per metric: the difference against the spread
    (:data:`SPREAD_RULE`)."""
    def digits(r: SeedRow) -> int:
        return 3 if r.table == "Table 2" else 2

    n = len(seeds)
    lines = [f"### {title}", "", f"{n} seeds ({', '.join(map(str, seeds))})" + (f"; {note}" if note else ""), "",
             "| table | method | row | metric | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |",
             "|---|---|---|---|" + "---|" * n + "---|"]
    for r in rows:
        mean, std = mean_std(r.values)
        lines.append(f"| {r.table} | {r.method} | {r.subject} | {r.metric} | "
                     + " | ".join(_f(v, digits(r)) for v in r.values)
                     + f" | {_f(mean, digits(r))} ± {_f(std, digits(r))} |")
    rule = [f"Rule: {SPREAD_RULE}.", ""]  # under the first difference's heading
    for subject, reference in DIFF_PAIRS:
        diffs = seed_diffs(rows, [(subject, reference)])
        if not diffs:
            continue
        lines += ["", f"#### {_DIFF_NAMES[subject]} − {_DIFF_NAMES[reference]} against the seed spread", "", *rule,
                  "| table | method | metric | " + " | ".join(f"Δ seed {s}" for s in seeds)
                  + " | mean ± std | 2·std/√N | verdict |", "|---|---|---|" + "---|" * n + "---|---|---|"]
        for r, (mean, std, bound, verdict) in diffs:
            k = digits(r)
            lines.append(f"| {r.table} | {r.method} | {r.metric} | " + " | ".join(_f(v, k) for v in r.values)
                         + f" | {_f(mean, k)} ± {_f(std, k)} | {_f(bound, k)} | {verdict} |")
        rule = []
    return "\n".join(lines) + "\n"


def write_seeds(rows: Sequence[SeedRow], seeds: Sequence[int], out_dir: Path, *, title: str,
                note: str = "") -> str:
    """seeds.md / seeds.csv / seeds_diff.csv into ``out_dir``; returns the markdown."""
    md = seeds_markdown(rows, seeds, title=title, note=note)
    atomic_write_text(out_dir / "seeds.md", md)
    atomic_write_text(out_dir / "seeds.csv", seeds_csv(rows, seeds))
    atomic_write_text(out_dir / "seeds_diff.csv", seed_diffs_csv(seed_diffs(rows), seeds))
    return md
