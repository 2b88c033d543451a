"""Foreground vs background depth statistics (paper Fig. 2 and Table 1).

For the ground truth of a split: the share of foreground pixels (inside the eval boxes), the
depth distribution of each region (quantiles, share under 16 m, histogram) and the distribution
of depth-gradient magnitudes (|∂d/∂u| and |∂d/∂v| between horizontally / vertically adjacent
pixels that both have ground truth, in metres per pixel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from depth.data import boxes_mask, eval_fg_boxes
from kitti import KittiRoot

DEPTH_EDGES_M = np.arange(0.0, 82.0, 2.0)
GRAD_EDGES = np.concatenate([[0.0], np.logspace(-3, 1.5, 46)])
NEAR_M = 16.0


@dataclass(frozen=True)
class RegionStats:
    """Distributions of one region: histogram counts over :data:`DEPTH_EDGES_M` / :data:`GRAD_EDGES`."""

    pixels: int
    depth_hist: np.ndarray
    grad_hist: np.ndarray
    depth_quantiles_m: tuple[float, float, float]   # 25 %, 50 %, 75 %
    near_fraction: float                             # share of pixels under 16 m
    grad_mean: float
    grad_median: float


@dataclass(frozen=True)
class DepthStats:
    """fg / bg statistics of a split's ground truth."""

    frames: int
    image_pixels: int
    fg_fraction_of_image: float      # fg pixels (any GT or not) / all pixels
    regions: Mapping[str, RegionStats]


def _gradients(depth: np.ndarray, region: np.ndarray) -> np.ndarray:
    valid = depth > 0
    out = []
    for axis in (0, 1):
        a = np.swapaxes(depth, 0, axis)
        v = np.swapaxes(valid, 0, axis)
        r = np.swapaxes(region, 0, axis)
        both = v[1:] & v[:-1] & r[1:] & r[:-1]
        out.append(np.abs(a[1:] - a[:-1])[both])
    return np.concatenate(out)


def _quantiles_hist(values: list[np.ndarray], edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.concatenate(values) if values else np.zeros(0)
    return v, np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)[0]


def depth_statistics(data_root: Path, frame_ids: Sequence[str]) -> DepthStats:
    """Collect the fg / bg statistics of the ground truth (``depth_2``, ``label_2``)."""
    root = KittiRoot(Path(data_root))
    root.check(tuple(frame_ids), ("depth_2", "label_2"))
    depths: dict[str, list[np.ndarray]] = {"fg": [], "bg": []}
    grads: dict[str, list[np.ndarray]] = {"fg": [], "bg": []}
    image_pixels = fg_pixels = 0
    for fid in frame_ids:
        depth = root.depth(fid)
        fg = boxes_mask(depth.shape, eval_fg_boxes(root.labels(fid)))
        image_pixels += depth.size
        fg_pixels += int(fg.sum())
        valid = depth > 0
        for name, region in (("fg", fg), ("bg", ~fg)):
            depths[name].append(depth[valid & region])
            grads[name].append(_gradients(depth, region))
    regions = {}
    for name in ("fg", "bg"):
        d, dh = _quantiles_hist(depths[name], DEPTH_EDGES_M)
        g, gh = _quantiles_hist(grads[name], GRAD_EDGES)
        q = tuple(float(x) for x in np.quantile(d, [0.25, 0.5, 0.75])) if d.size else (np.nan,) * 3
        regions[name] = RegionStats(
            pixels=int(d.size), depth_hist=dh, grad_hist=gh, depth_quantiles_m=q,  # type: ignore[arg-type]
            near_fraction=float(np.mean(d < NEAR_M)) if d.size else float("nan"),
            grad_mean=float(g.mean()) if g.size else float("nan"),
            grad_median=float(np.median(g)) if g.size else float("nan"))
    return DepthStats(len(frame_ids), image_pixels, fg_pixels / max(image_pixels, 1), regions)


def format_stats(stats: DepthStats) -> str:
    """Markdown table (Table 1 style) of the statistics."""
    lines = [f"{stats.frames} frames; foreground = {100 * stats.fg_fraction_of_image:.1f} % of image pixels "
             "(paper, KITTI: 9.4 %)", "",
             "| region | pixels with GT | depth 25/50/75 % (m) | share < 16 m | |∇d| mean / median (m/px) |",
             "|---|---|---|---|---|"]
    for name, r in stats.regions.items():
        q = " / ".join(f"{x:.1f}" for x in r.depth_quantiles_m)
        lines.append(f"| {name} | {r.pixels} | {q} | {100 * r.near_fraction:.1f} % | "
                     f"{r.grad_mean:.3f} / {r.grad_median:.3f} |")
    lines.append("\nPaper (KITTI): 75 % of fg pixels under 16 m vs about 50 % of bg pixels; fg has larger gradients.")
    return "\n".join(lines)


def write_figure(fig, png_path: Path, dpi: int) -> None:
    """Write a matplotlib figure as a PNG through a temporary file renamed into place, and close it."""
    import io

    import matplotlib.pyplot as plt

    from kitti import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(Path(png_path), buf.getvalue())


def plot_stats(stats: DepthStats, png_path: Path) -> None:
    """Fig. 2 style PNG: depth and gradient distributions, fg vs bg (densities), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_d, ax_g) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = {"fg": "tab:orange", "bg": "tab:blue"}
    for name, r in stats.regions.items():
        dens = r.depth_hist / max(r.depth_hist.sum(), 1)
        ax_d.step(DEPTH_EDGES_M[:-1], dens, where="post", color=colours[name], label=f"{name} ({r.pixels} px)")
        gd = r.grad_hist / max(r.grad_hist.sum(), 1)
        ax_g.step(GRAD_EDGES[1:], gd, where="pre", color=colours[name], label=name)
    ax_d.axvline(NEAR_M, color="grey", ls=":", lw=1)
    ax_d.set(xlabel="ground-truth depth (m)", ylabel="share of pixels", title="depth distribution")
    ax_g.set(xscale="log", xlabel="|depth gradient| (m / px)", ylabel="share of pixel pairs",
             title="depth-gradient distribution")
    for ax in (ax_d, ax_g):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"foreground vs background, {stats.frames} frames (fg = {100 * stats.fg_fraction_of_image:.1f} % of pixels)")
    fig.tight_layout()
    write_figure(fig, png_path, dpi=110)


def plot_depth_comparison(image: np.ndarray, depth_maps: Mapping[str, np.ndarray], png_path: Path, *,
                          fg_mask: np.ndarray | None = None, max_depth_m: float = 80.0) -> None:
    """Stack an RGB image and named (H, W) depth maps (metres, 0 = none) into one PNG, atomically.

    With ``fg_mask`` each map's title gives its foreground absRel against the map named ``gt``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gt = depth_maps.get("gt")
    n = 1 + len(depth_maps)
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.6 * n + 0.4))
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    for ax, (name, d) in zip(axes[1:], depth_maps.items()):
        shown = np.where(d > 0, np.clip(d, 0, max_depth_m), np.nan)
        ax.imshow(shown, cmap="turbo_r", vmin=0, vmax=max_depth_m)
        title = name
        if gt is not None and fg_mask is not None and name != "gt":
            m = fg_mask & (gt > 0)
            if m.any():
                title += f"  (fg absRel {np.mean(np.abs(d[m] - gt[m]) / gt[m]):.3f})"
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    write_figure(fig, png_path, dpi=90)
