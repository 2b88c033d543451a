"""The whole chain on a tiny embedded-benchmark render: runs, caches, re-runs only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cache import ArtifactCache
from pipeline.stages import RunConfig, build_chain
from pipeline.run import run_chain
from pipeline.executor import plan

TINY_DETECT = {"epochs": 1}


def _cfg(root: Path, clouds=("lidar", "oracle"), **pl) -> RunConfig:
    overrides = {"detect": TINY_DETECT}
    if pl:
        overrides["pseudolidar"] = pl
    return RunConfig(data_root=root, clouds=clouds, overrides=overrides)


def test_run_chain_lidar_and_oracle_then_cached_then_partial_rerun(tiny_root, tmp_path):
    work = tmp_path / "work"
    summary = run_chain(_cfg(tiny_root), work)
    assert set(summary["stages"]) == {"depth-gt", "pseudolidar/oracle", "depth-eval/oracle",
                                      *(f"{s}/fpointnet/{c}" for s in ("detect-train", "detect-infer", "eval")
                                        for c in ("lidar", "oracle"))}
    report = work / "report"
    for name in ("table4.md", "table4.csv", "table4.png", "table4_iou05.md", "report.md", "run_summary.json"):
        assert (report / name).is_file(), name
    md = (report / "table4.md").read_text()
    assert "F-PN, LiDAR (ours)" in md and "F-PN, oracle-PL: GT depth (ours)" in md
    evals = json.loads((report / "evals.json").read_text())
    assert set(evals) == {"fpointnet"} and set(evals["fpointnet"]) == {"lidar", "oracle"}
    # `foresee cache ls` can tell the run's artifacts apart
    assert {"pseudolidar/oracle", "eval/fpointnet/lidar", "detect-train/fpointnet/oracle"} <= {r["label"] for r in ArtifactCache(work).ls()}

    # the stage commands, given the same inputs, find the run's artifacts (one key function per stage)
    _commands_hit_the_runs_artifacts(tiny_root, work, summary["stages"], tmp_path)

    # second run: everything cached
    again = run_chain(_cfg(tiny_root), work)
    assert all(s["cached"] for s in again["stages"].values())

    # a new height filter re-runs pseudo-LiDAR and what follows it, nothing else
    cache = ArtifactCache(work)
    changed = plan(build_chain(_cfg(tiny_root, max_height_m=0.5)), cache)
    to_run = sorted(p.spec.name for p in changed if not p.cached)
    assert to_run == ["detect-infer/fpointnet/oracle", "detect-train/fpointnet/oracle", "eval/fpointnet/oracle",
                      "pseudolidar/oracle"]


def _commands_hit_the_runs_artifacts(root: Path, work: Path, stages: dict, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kitti import KittiRoot
    from pipeline.cli import main

    kr = KittiRoot(root)
    both = tmp_path / "both.txt"
    both.write_text("".join(f"{f}\n" for f in sorted(set(kr.split("train")) | set(kr.split("val")))))
    ref = {name: f"{Path(s['path']).parent.name}/{Path(s['path']).name}" for name, s in stages.items()}
    common = ["--data", str(root), "--workdir", str(work)]
    calls = [
        (["depth", "infer", "--from-gt", "--split", str(both)], "depth-gt"),
        (["pseudolidar", "--depth", ref["depth-gt"], "--split", str(both), "--preset", "cpu-small"],
         "pseudolidar/oracle"),
        (["detect", "train", "--points", ref["pseudolidar/oracle"], "--epochs", "1"], "detect-train/fpointnet/oracle"),
        (["detect", "infer", "--points", str(root / "training" / "velodyne"),
          "--model", ref["detect-train/fpointnet/lidar"]], "detect-infer/fpointnet/lidar"),
    ]
    for args, node in calls:
        r = CliRunner().invoke(main, args + common)
        assert r.exit_code == 0, r.output
        assert "cached" in r.output and stages[node]["path"].split("/")[-1] in r.output, (node, r.output)


def test_run_chain_missing_frame_fails_before_work(tiny_root, tmp_path):
    from kitti import KittiFormatError

    split = tmp_path / "val.txt"
    split.write_text("000006\n999999\n")
    cfg = RunConfig(data_root=tiny_root, val_split=str(split), clouds=("lidar",))
    with pytest.raises(KittiFormatError, match="999999"):
        run_chain(cfg, tmp_path / "work")
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_run_chain_full_with_depth_models(tmp_path):
    from synth import render_dataset
    from synth.settings import SynthSettings

    root = tmp_path / "full"
    render_dataset(root, SynthSettings(frames_train=8, frames_val=4, seed=5), workers=2, progress=False)
    cfg = RunConfig(data_root=root, overrides={"detect": TINY_DETECT, "depth": {"max_steps": 2}})
    summary = run_chain(cfg, tmp_path / "work")
    assert "depth-train/foresee" in summary["stages"]
    table2 = (tmp_path / "work" / "report" / "table2.md").read_text()
    # Table 2 equals an independent float64 computation on the chain's own depth maps
    for variant in ("baseline", "foresee"):
        maps = Path(summary["stages"][f"depth-infer/{variant}"]["path"]) / "depth"
        expected = _table2_reference(root, maps)
        got = json.loads((Path(summary["stages"][f"depth-eval/{variant}"]["path"]) / "depth_metrics.json")
                         .read_text())["pooled"]
        for region, (absrel, silog) in expected.items():
            assert got[region]["absrel"] == pytest.approx(absrel, rel=1e-9), (variant, region)
            assert got[region]["silog"] == pytest.approx(silog, rel=1e-9), (variant, region)
        assert f"{expected['fg'][0]:.3f} / {expected['fg'][1]:.3f}" in table2


def _table2_reference(root: Path, maps: Path) -> dict[str, tuple[float, float]]:
    """Pooled absRel and SILog (docs/paper.md) per region, from the files, in float64."""
    import cv2
    import numpy as np

    fg_classes = {"Car", "Van", "Truck", "Pedestrian", "Cyclist", "Tram"}
    acc = {r: [] for r in ("fg", "bg", "global")}
    for f in (root / "ImageSets" / "val.txt").read_text().split():
        gt = cv2.imread(str(root / "training" / "depth_2" / f"{f}.png"), cv2.IMREAD_UNCHANGED).astype(np.float64) / 256
        with np.load(maps / f"{f}.npz") as z:
            pred = np.maximum(z["depth_m"].astype(np.float64), 1e-3)
        fg = np.zeros(gt.shape, bool)
        for line in (root / "training" / "label_2" / f"{f}.txt").read_text().splitlines():
            t = line.split()
            if t and t[0] in fg_classes:
                x1, y1, x2, y2 = (float(v) for v in t[4:8])
                fg[max(int(np.floor(y1)), 0):int(np.floor(y2)) + 1, max(int(np.floor(x1)), 0):int(np.floor(x2)) + 1] = True
        valid = gt > 0
        for region, m in (("fg", valid & fg), ("bg", valid & ~fg), ("global", valid)):
            acc[region].append((pred[m], gt[m]))
    out = {}
    for region, pairs in acc.items():
        p = np.concatenate([a for a, _ in pairs])
        g = np.concatenate([b for _, b in pairs])
        d = np.log(p) - np.log(g)
        out[region] = (float(np.mean(np.abs(p - g) / g)), float(np.sqrt(np.mean(d ** 2) - np.mean(d) ** 2)))
    return out
