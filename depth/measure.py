"""Accuracy per CPU-second of depth settings (the measurements of docs/depth-power.md).

Three measurements, each printing one JSON line per case (and appending it to ``--jsonl``):

* ``step`` — CPU seconds per training step (forward, loss, backward, Adam on a random batch of the
  preset's crop) and per inference frame (1242x375 at the preset's resize), no data needed::

      python -m depth.measure step --case lite0 baseline '{}' --case lite0-bf16 baseline '{"cpu_bf16": true}'

* ``accuracy`` — train on a KITTI-format root's train split, infer its val split (with its
  dominant-bin maps), evaluate (pooled fg / bg / global and object-surface absRel, the per-object
  table and the per-object diagnosis)::

      python -m depth.measure accuracy --data data/embedded --work /tmp/power \\
          --case lite0_500_s0 baseline '{"max_steps": 500}'

  ``--reuse`` keeps a case's checkpoint when ``WORK/TAG/train/checkpoint.pt`` exists (it must be
  a training of the same settings): a finished one is only inferred and evaluated again (its
  training CPU seconds are then null), an unfinished one resumes where it stopped.
  ``--snapshots 500,1500,3000`` with ``"max_steps": 6000`` also evaluates the checkpoints kept
  after those steps (the depth-power curve from one training; mid-schedule models, see
  ``depth.train.train_depth``)::

      python -m depth.measure accuracy --data data/embedded --work /tmp/curve --reuse \\
          --snapshots 500,1500,3000 --case fsee_curve foresee '{"max_steps": 6000}'

* ``curve`` — the depth-power curve's table (markdown) and figure from ``accuracy`` rows with
  snapshots (``--rows`` the JSON lines ``accuracy --jsonl`` wrote; each row's snapshots and its
  final model are the points of one line)::

      python -m depth.measure curve --rows /tmp/curve.jsonl --png docs/img/depth_power_curve.png

* ``floor`` — the error that predicting at a reduced size costs by itself: each val ground truth
  resized by ``--factors`` the way training targets are (``depth.data.resize_depth``), then
  resized back as inference does (bilinear in log depth), against the ground truth; no network,
  no ``--case``::

      python -m depth.measure floor --data data/embedded --factors 0.25,0.5

A case is ``TAG VARIANT OVERRIDES`` with OVERRIDES a JSON object of ``DepthSettings`` fields on top
of the ``--preset`` (default cpu-small). CPU time is the process's user + system time
(``resource.getrusage``); the torch thread count is ``--threads``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from depth.settings import DepthSettings, preset


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _settings(preset_name: str, variant: str, overrides: dict[str, Any]) -> DepthSettings:
    return preset(preset_name, variant, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def step_cost(settings: DepthSettings, steps: int = 7, warmup: int = 2,
              image_hw: tuple[int, int] = (375, 1242)) -> dict[str, float]:
    """CPU seconds per training step (mean after ``warmup``) and per inference frame."""
    from depth.loss import soft_target_matrix, variant_loss
    from depth.model import DepthNet, count_parameters

    torch.manual_seed(0)
    model = DepthNet(settings).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    soft = soft_target_matrix(settings.n_bins, settings.soft_label_coeff, torch.device("cpu"))
    b, (h, w) = settings.batch_size, settings.crop_hw
    x, target = torch.randn(b, 3, h, w), torch.randint(0, settings.n_bins, (b, h, w))
    fg = torch.rand(b, h, w) < 0.2
    times = []
    for _ in range(steps):
        c0 = cpu_seconds()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.cpu_bf16):
            logits = model(x)
        loss = variant_loss(logits, target, fg, settings, soft).total
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(cpu_seconds() - c0)
    model.eval()
    ih, iw = (-(-round(s * settings.resize_factor) // 16) * 16 for s in image_hw)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.cpu_bf16):
        xi = torch.randn(1, 3, ih, iw)
        c0 = cpu_seconds()
        for _ in range(3):
            model(xi)
        infer = (cpu_seconds() - c0) / 3
    return {"params": count_parameters(model), "cpu_s_per_step": sum(times[warmup:]) / len(times[warmup:]),
            "cpu_s_per_infer_frame": infer}


def accuracy(data_root: Path, work: Path, tag: str, settings: DepthSettings, frames: int = 0,
             reuse: bool = False, snapshots: Sequence[int] = ()) -> dict[str, Any]:
    """Train ``settings`` on the train split (its first ``frames`` frames when > 0), infer and
    evaluate the val split; CPU and wall seconds of each part.

    With ``reuse``, an existing ``work/tag/train/checkpoint.pt`` of the same settings is used: a
    finished training is only inferred and evaluated again, an unfinished one (a run that was
    stopped) resumes where it stopped. ``snapshots``: steps < ``max_steps`` whose checkpoints
    (``depth.train.snapshot_path``) are evaluated too, as ``row["snapshots"]`` (one training read
    at several lengths: the depth-power curve)."""
    from depth.train import snapshot_path, train_depth
    from kitti import KittiRoot

    root = KittiRoot(data_root)
    train_ids, val_ids = root.split("train"), root.split("val")
    if frames:
        train_ids = train_ids[:frames]
    out = Path(work) / tag
    ckpt = out / "train" / "checkpoint.pt"
    snapshots = sorted({int(s) for s in snapshots})
    if any(not 0 < s < settings.max_steps for s in snapshots):
        raise ValueError(f"snapshots {snapshots} must lie between 0 and max_steps {settings.max_steps}")
    c0, w0 = cpu_seconds(), time.time()
    resume, resumed_from, info = None, None, None
    if reuse and ckpt.is_file():
        from depth.model import read_checkpoint

        payload = read_checkpoint(ckpt)
        if payload["settings"] != settings:
            raise ValueError(f"{ckpt}: not a training of case {tag!r} (other settings)")
        if int(payload["step"]) >= settings.max_steps:
            info = {"steps": int(payload["step"]), "parameters": None, "reused": True}
        else:
            resume, resumed_from = ckpt, int(payload["step"])
    if info is None:
        info = train_depth(data_root, train_ids, settings, out / "train", progress=False, resume=resume,
                           snapshots=snapshots)
    c1, w1 = cpu_seconds(), time.time()
    row = _infer_evaluate(data_root, val_ids, ckpt, out, "")
    reused = bool(info.get("reused"))
    curve = []
    for step in snapshots:
        path = snapshot_path(out / "train", step)
        if not path.is_file():
            raise ValueError(f"{path}: snapshot missing (a training that resumed after step {step}, "
                             "or was started without it)")
        curve.append({"steps": step, **_infer_evaluate(data_root, val_ids, path, out, f"_step{step}")})
    return {"frames": len(train_ids), "steps": info["steps"], "params": info["parameters"], "reused": reused,
            "resumed_from": resumed_from,
            "train_cpu_s": None if reused else round(c1 - c0, 1), "train_wall_s": None if reused else round(w1 - w0, 1),
            **row, **({"snapshots": curve} if snapshots else {})}


def _infer_evaluate(data_root: Path, val_ids: Sequence[str], ckpt: Path, out: Path, suffix: str) -> dict[str, Any]:
    """Infer ``val_ids`` with ``ckpt`` into ``out/depth<suffix>`` (+ dominant-bin maps) and evaluate."""
    from depth.infer import infer_depth
    from depth.metrics import evaluate_depth_dir

    c1, w1 = cpu_seconds(), time.time()
    infer_depth(data_root, val_ids, ckpt, out / f"depth{suffix}", progress=False, dominant_dir=out / f"dominant{suffix}")
    c2, w2 = cpu_seconds(), time.time()
    res = evaluate_depth_dir(data_root, val_ids, out / f"depth{suffix}", dominant_dir=out / f"dominant{suffix}")
    return {"infer_cpu_s": round(c2 - c1, 1), "infer_wall_s": round(w2 - w1, 1),
            "absrel": {r: round(res.pooled[r]["absrel"], 4) for r in ("fg", "bg", "global")},
            "absrel_surface": round(res.surface["absrel"], 4) if res.surface else None,
            "objects": res.objects.by_distance() if res.objects is not None else None,
            "diagnosis": res.diagnosis.by_distance() if res.diagnosis is not None else None}


def resolution_floor(data_root: Path, factor: float, split: str = "val") -> dict[str, Any]:
    """absRel (pooled, fg / bg / global) of the split's ground truth after a round trip through
    ``factor`` of its size: down as training targets (:func:`depth.data.resize_depth`; pixels
    without ground truth become 80 m so the log is defined, and are not scored), up as
    :func:`depth.infer.upsample_log_depth`. It is the error of a network that predicts the
    resized ground truth perfectly: what working at that size costs by itself (mostly at depth
    edges; a network could trim it a little by choosing other low-resolution values there)."""
    from depth.data import boxes_mask, eval_fg_boxes, resize_depth, resized_hw
    from depth.infer import upsample_log_depth
    from depth.metrics import evaluate_depth_maps
    from kitti import KittiRoot

    root = KittiRoot(Path(data_root))
    ids = root.split(split)
    root.check(tuple(ids), ("depth_2", "label_2"))
    preds, gts, fgs = [], [], []
    for fid in ids:
        gt = root.depth(fid)
        small = resize_depth(gt, resized_hw(gt.shape, factor))
        small = np.where(small > 0, small, np.float32(80.0))
        preds.append(upsample_log_depth(torch.from_numpy(small), gt.shape).numpy())
        gts.append(gt)
        fgs.append(boxes_mask(gt.shape, eval_fg_boxes(root.labels(fid))))
    res = evaluate_depth_maps(preds, gts, fgs)
    return {"factor": factor, "frames": len(ids), "absrel": {r: round(res.pooled[r]["absrel"], 4)
                                                             for r in ("fg", "bg", "global")}}


@dataclass(frozen=True)
class CurvePoint:
    """One model of the depth-power curve: the val figures of a training's checkpoint.

    ``steps`` < ``max_steps`` marks a model mid-schedule (its learning rate not yet decayed).
    absRel values are pooled over the pixels of a region; ``object_mean_rel`` / ``object_signed_m``
    are the per-object mean relative error and mean signed error (metres, + = placed too far) over
    all val objects, ``signed_30_40_m`` the latter over the objects 30-40 m away, and ``share_true``
    the mean share of an object's pixels whose dominant bin lies at its true depth."""

    tag: str
    variant: str
    steps: int
    max_steps: int
    fg_absrel: float
    surface_absrel: float
    bg_absrel: float
    global_absrel: float
    object_mean_rel: float
    object_signed_m: float
    signed_30_40_m: float
    share_true: float


def curve_points(rows: Sequence[dict[str, Any]]) -> list[CurvePoint]:
    """The points of ``accuracy`` rows: each row's snapshots, then its final model, by steps."""
    points = []
    for row in rows:
        tag = row.get("tag", "?")
        max_steps = int(row.get("overrides", {}).get("max_steps", row["steps"]))
        line = []
        for p in [*row.get("snapshots", []), row]:
            objects = {x["bin_m"]: x for x in p["objects"]}
            diagnosis = {x["bin_m"]: x for x in p["diagnosis"]}
            for need, have in (("all", objects), ("30-40", objects), ("all", diagnosis)):
                if need not in have:
                    raise ValueError(f"case {tag!r}, {p['steps']} steps: no {need!r} distance bin in its rows")
            a = p["absrel"]
            line.append(CurvePoint(tag, row["variant"], int(p["steps"]), max_steps, a["fg"], p["absrel_surface"],
                                   a["bg"], a["global"], objects["all"]["mean_rel"], objects["all"]["mean_signed_m"],
                                   objects["30-40"]["mean_signed_m"], diagnosis["all"]["share_true"]))
        points += sorted(line, key=lambda q: q.steps)
    return points


def curve_markdown(points: Sequence[CurvePoint]) -> str:
    """The curve as a markdown table, one line per point."""
    lines = ["| variant (case), steps | fg (2D boxes) | object surfaces | bg | global | "
             "objects: mean rel. / signed (m) | 30-40 m signed (m) | share at the true depth |",
             "|---|---|---|---|---|---|---|---|"]
    for q in points:
        mid = " (mid-schedule)" if q.steps < q.max_steps else ""
        lines.append(f"| {q.variant} ({q.tag}), {q.steps}{mid} | {q.fg_absrel:.3f} | {q.surface_absrel:.3f} | "
                     f"{q.bg_absrel:.3f} | {q.global_absrel:.3f} | {q.object_mean_rel:.3f} / "
                     f"{q.object_signed_m:+.1f} | {q.signed_30_40_m:+.1f} | {q.share_true:.3f} |")
    return "\n".join(lines)


#: Line colours of the curve's variants (the chain's figures: baseline red, ForeSeE yellow-orange,
#: ForeSeE-obj violet).
CURVE_COLOURS = {"baseline": "tab:red", "foresee": "goldenrod", "foresee-obj": "darkviolet"}


def plot_curve(points: Sequence[CurvePoint], png_path: Path) -> None:
    """Four panels against training steps (fg absRel, object-surface absRel, per-object mean
    relative error, 30-40 m signed error), one line per case; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from depth.stats import write_figure

    panels = [("fg_absrel", "fg (2D-box pixels) absRel"), ("surface_absrel", "object-surface absRel"),
              ("object_mean_rel", "per-object mean relative error"), ("signed_30_40_m", "30-40 m objects: signed error (m)")]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    cases = dict.fromkeys((q.tag, q.variant) for q in points)
    variants = [variant for _, variant in cases]
    drawn: dict[str, int] = {}
    for tag, variant in cases:
        line = [q for q in points if q.tag == tag]
        label = variant if variants.count(variant) == 1 else f"{variant} ({tag})"
        style = ("o-", "s--", "^:", "d-.")[drawn.get(variant, 0) % 4]  # a variant's second case dashed, ...
        drawn[variant] = drawn.get(variant, 0) + 1
        for ax, (field, _) in zip(axes, panels):
            ax.plot([q.steps for q in line], [getattr(q, field) for q in line], style,
                    color=CURVE_COLOURS.get(variant), label=label)
    for ax, (_, title) in zip(axes, panels):
        ax.set(xlabel="training steps", title=title)
        ax.grid(alpha=0.3)
    axes[3].axhline(0.0, color="grey", lw=1)
    axes[0].legend()
    fig.suptitle("the depth-power curve: val figures of one training per case (points before its last are mid-schedule)")
    fig.tight_layout()
    write_figure(fig, png_path, dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["step", "accuracy", "floor", "curve"])
    p.add_argument("--case", nargs=3, action="append", default=[], metavar=("TAG", "VARIANT", "OVERRIDES"))
    p.add_argument("--factors", default="0.25,0.5", help="floor: resize factors, comma-separated")
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frames", type=int, default=0, help="accuracy: train on the first N train frames (0 = all)")
    p.add_argument("--data", type=Path)
    p.add_argument("--work", type=Path, default=Path("power"))
    p.add_argument("--jsonl", type=Path, default=None)
    p.add_argument("--reuse", action="store_true",
                   help="accuracy: reuse WORK/TAG/train/checkpoint.pt when present (an unfinished one resumes)")
    p.add_argument("--snapshots", default="", help="accuracy: steps < max_steps to evaluate too, comma-separated "
                   "(one training read at several lengths)")
    p.add_argument("--rows", type=Path, help="curve: the JSON lines of accuracy cases (with --snapshots)")
    p.add_argument("--png", type=Path, help="curve: write the figure here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.what == "curve":
        if args.rows is None:
            p.error("curve needs --rows")
        rows = []
        for n, line in enumerate(args.rows.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    p.exit(2, f"error: {args.rows}:{n}: not a JSON line ({e.msg})\n")
        try:
            points = curve_points(rows)
        except (KeyError, ValueError) as e:
            p.exit(2, f"error: {args.rows}: {e}\n")
        print(curve_markdown(points))
        if args.png:
            plot_curve(points, args.png)
        return
    if args.what == "floor":
        if args.data is None:
            p.error("floor needs --data")
        for factor in args.factors.split(","):
            _emit(resolution_floor(args.data, float(factor)), args.jsonl)
        return
    if not args.case:
        p.error(f"{args.what} needs at least one --case TAG VARIANT OVERRIDES")
    for tag, variant, overrides in args.case:
        ov = json.loads(overrides)
        if args.what == "step":
            ov.setdefault("encoder_weights", "none")
            row = step_cost(_settings(args.preset, variant, ov))
        else:
            if args.data is None:
                p.error("accuracy needs --data")
            try:
                row = accuracy(args.data, args.work, tag, _settings(args.preset, variant, ov), args.frames, args.reuse,
                               [int(x) for x in args.snapshots.split(",") if x.strip()])
            except ValueError as e:
                p.exit(2, f"error: {e}\n")
        _emit({"tag": tag, "variant": variant, "overrides": ov, "threads": args.threads, **row,
               "load": open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else None},
              args.jsonl)


def _emit(row: dict[str, Any], jsonl: Path | None) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if jsonl:
        with open(jsonl, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
