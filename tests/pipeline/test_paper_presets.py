"""The ``paper`` presets cannot break unseen: ``foresee run --preset paper --dry-run`` plans every stage
on the nine real frames, and one optimiser step of each paper network runs on the CPU."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture()
def paper_root(tmp_path, sample_root) -> Path:
    """A copy of the nine frames with a depth_2 map each (planning reads no depth value) and a 6/3 split."""
    from kitti import KittiRoot, write_depth_png

    root = tmp_path / "kitti"
    shutil.copytree(sample_root / "training", root / "training")
    k = KittiRoot(root)
    ids = [f"{i:06d}" for i in range(9)]
    for fid in ids:
        h, w = k.image_hw(fid)
        depth = np.zeros((h, w), dtype=np.float32)
        depth[h // 2:] = 10.0
        write_depth_png(root / "training/depth_2" / f"{fid}.png", depth)
    (root / "ImageSets").mkdir()
    (root / "ImageSets/train.txt").write_text("\n".join(ids[:6]) + "\n")
    (root / "ImageSets/val.txt").write_text("\n".join(ids[6:]) + "\n")
    return root


def test_run_paper_dry_run_plans_every_stage(paper_root, tmp_path):
    from pipeline.cli import main

    r = CliRunner().invoke(main, ["run", "--data", str(paper_root), "--preset", "paper", "--dry-run",
                                  "--workdir", str(tmp_path / "work")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "preset paper" in r.output and "25 stages, 0 cached, 25 to run" in r.output
    planned = {line.split()[0] for line in r.output.splitlines()[1:] if line.startswith("  ")}
    expected = {"depth-gt", "detect2d-train", "detect2d-infer", *(f"{s}/{v}" for s in ("depth-train", "depth-infer") for v in ("baseline", "foresee")),
                *(f"pseudolidar/{c}" for c in ("oracle", "baseline", "foresee")),
                *(f"depth-eval/{c}" for c in ("oracle", "baseline", "foresee")),
                *(f"{s}/fpointnet/{c}" for s in ("detect-train", "detect-infer", "eval")
                  for c in ("lidar", "oracle", "baseline", "foresee"))}
    assert planned == expected
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").rglob("manifest.json"))


@pytest.mark.slow  # 40 s CPU (133 s wall on the loaded 2-core machine)
def test_paper_depth_network_one_step_on_cpu():
    """ResNeXt-101 32x4d encoder, two decoders, the ForeSeE loss, the preset's SGD: two steps on one
    64x96 crop; the second step's loss is below the first (the step descended)."""
    from depth.settings import preset
    from pipeline.gpu_steps import depth_train_steps

    torch.set_num_threads(2)
    settings = preset("paper", "foresee")
    res = depth_train_steps(settings, torch.device("cpu"), steps=2, batch=2, crop_hw=(64, 96))
    assert res["parameters"] > 40_000_000 and not res["amp"]
    assert all(math.isfinite(x) for x in res["losses"]) and res["losses"][1] < res["losses"][0]


@pytest.mark.slow  # about 20 s wall on the loaded 2-core machine
def test_paper_fpointnet_one_step_on_cpu():
    """Full-width F-PointNet v1, 1024 points, Adam at the preset's rate, on 4 random frustums."""
    from detection.frustum_pointnet.settings import preset
    from pipeline.gpu_steps import fpointnet_inference, fpointnet_train_steps

    torch.set_num_threads(2)
    settings = preset("paper")
    res = fpointnet_train_steps(settings, torch.device("cpu"), steps=2, batch=4)
    assert settings.num_points == 1024 and res["parameters"] > 1_000_000
    assert all(math.isfinite(x) for x in res["losses"]) and res["losses"][1] < res["losses"][0]
    assert fpointnet_inference(settings, torch.device("cpu"), batches=1, batch=2)["frustums_per_s"] > 0


def test_gpu_check_without_cuda_says_so_and_exits_0(capsys, monkeypatch):
    from pipeline import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out


@pytest.mark.gpu
def test_gpu_check_runs_on_cuda():
    from pipeline.gpu_check import run_check

    res = run_check(steps=2)
    assert all(math.isfinite(x) for x in res["depth_train_paper"]["losses"] + res["fpointnet_train_paper"]["losses"])
    assert res["fpointnet_train_paper"]["peak_gpu_mib"] > 0
