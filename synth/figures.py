"""Figures of a rendered dataset: a montage (image with 2D boxes, depth, BEV of the velodyne with
3D boxes) and the fg/bg depth histograms of the paper's Fig. 2. matplotlib is imported lazily."""

from __future__ import annotations

import io
import json
from os import PathLike
from pathlib import Path
from typing import Sequence

import numpy as np

from kitti.boxes import box_bev_corners
from kitti.fileio import atomic_write_bytes
from kitti.layout import KittiRoot

_COLOURS = {"Car": "#00e000", "Van": "#00b0ff", "Truck": "#ff40ff", "Pedestrian": "#ffd000",
            "Cyclist": "#ff4000", "DontCare": "#909090"}


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(Path(path), buf.getvalue())


def plot_montage(root: str | PathLike[str], frame_ids: Sequence[str], out_png: str | PathLike[str]) -> None:
    """One row per frame: image_2 with the labels' 2D boxes, depth_2 (turbo, 0-80 m, black =
    sky), and the velodyne in bird's-eye view (velo x up, 0-70 m, ±30 m) with the 3D boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    kr = KittiRoot(Path(root))
    n = len(frame_ids)
    fig = plt.figure(figsize=(15, 6.0 * n))
    gs = fig.add_gridspec(2 * n, 2, width_ratios=[3.31, 1.6], hspace=0.17, wspace=0.02)
    for r, fid in enumerate(frame_ids):
        img, depth, pts, calib = kr.image(fid), kr.depth(fid), kr.velodyne(fid), kr.calib(fid)
        labels = kr.labels(fid)
        ax = fig.add_subplot(gs[2 * r, 0])
        ax.imshow(img)
        for o in labels:
            ax.add_patch(Rectangle((o.x1, o.y1), o.x2 - o.x1, o.y2 - o.y1, fill=False, lw=1.0,
                                   ec=_COLOURS.get(o.type, "w")))
        ax.set_axis_off()
        ax.set_title(f"frame {fid}: image_2 + label_2 2D boxes", fontsize=8, loc="left")
        ax = fig.add_subplot(gs[2 * r + 1, 0])
        d = np.ma.masked_where(depth <= 0, depth)
        cmap = plt.get_cmap("turbo").with_extremes(bad="black")
        ax.imshow(d, cmap=cmap, vmin=0, vmax=80)
        ax.set_axis_off()
        ax.set_title("depth_2 (0-80 m, black = sky)", fontsize=8, loc="left")
        ax = fig.add_subplot(gs[2 * r:2 * r + 2, 1])
        keep = (pts[:, 0] > -5) & (pts[:, 0] < 70) & (np.abs(pts[:, 1]) < 30)
        ax.scatter(-pts[keep, 1], pts[keep, 0], s=0.25, c=pts[keep, 2], cmap="turbo", vmin=-2.0, vmax=1.0,
                   linewidths=0)
        objs = [o for o in labels if o.type != "DontCare"]
        if objs:
            bev = box_bev_corners(np.array([o.loc_rect for o in objs]), np.array([o.hwl for o in objs]),
                                  np.array([o.ry for o in objs]))
            for o, quad in zip(objs, bev):
                rect = np.column_stack([quad[:, 0], np.full(4, o.y), quad[:, 1]])
                velo = calib.rect_to_velo(rect)
                ax.add_patch(Polygon(np.column_stack([-velo[:, 1], velo[:, 0]]), closed=True, fill=False,
                                     lw=0.9, ec=_COLOURS.get(o.type, "r")))
        ax.set_xlim(-30, 30)
        ax.set_ylim(-5, 70)
        ax.set_aspect("equal")
        ax.set_facecolor("black")
        ax.tick_params(labelsize=6)
        ax.set_title("velodyne BEV (colour = height) + label 3D boxes", fontsize=8, loc="left")
    _save(fig, Path(out_png))
    plt.close(fig)


def plot_depth_histograms(summary: dict, out_png: str | PathLike[str], *, title: str = "") -> None:
    """Fig. 2-style: the depth distribution of foreground (inside 2D boxes) and background pixels
    from a :func:`~synth.render_dataset` summary (or ``synth.json``'s ``summary``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.asarray(summary["hist_edges_m"], dtype=float)
    fg = np.asarray(summary["hist_fg"], dtype=float)
    bg = np.asarray(summary["hist_bg"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    centres = (edges[:-1] + edges[1:]) / 2
    for ax, h, name, colour, under16 in ((axes[0], fg, "foreground", "tab:orange", summary.get("fg_under_16m")),
                                         (axes[1], bg, "background", "tab:blue", summary.get("bg_under_16m"))):
        ax.bar(centres, h / max(h.sum(), 1), width=np.diff(edges), color=colour)
        cdf = np.cumsum(h) / max(h.sum(), 1)
        ax2 = ax.twinx()
        ax2.plot(centres, cdf, color="k", lw=1)
        ax2.set_ylim(0, 1)
        ax2.axvline(16, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("depth (m)")
        ax.set_ylabel("fraction of pixels (0-80 m)")
        # the share under 16 m counts every pixel with depth (also those beyond the plotted 80 m)
        share = cdf[15] if under16 is None else under16
        ax.set_title(f"{name}: {100 * share:.0f}% of pixels under 16 m", fontsize=9)
    fig.suptitle(title or f"fg fraction {100 * summary['fg_fraction']:.1f}% of pixels "
                 f"({summary['frames']} frames)", fontsize=10)
    fig.tight_layout()
    _save(fig, Path(out_png))
    plt.close(fig)


def figures_from_root(root: str | PathLike[str], out_dir: str | PathLike[str], frame_ids: Sequence[str]) -> None:
    """``synth_montage.png`` and ``synth_depth_hist.png`` of a rendered root into ``out_dir``."""
    root = Path(root)
    meta = json.loads((root / "synth.json").read_text())
    plot_montage(root, frame_ids, Path(out_dir) / "synth_montage.png")
    plot_depth_histograms(meta["summary"], Path(out_dir) / "synth_depth_hist.png")
