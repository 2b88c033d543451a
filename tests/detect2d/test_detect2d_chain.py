"""``foresee run --boxes2d detector``: the 2D detector stage in the declared chain, its boxes fed
to the 3D rows, its AP_2D in the report, and the same key from ``foresee detect2d train``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pipeline.stages import RunConfig, build_chain
from pipeline.run import run_chain

D2D = {"encoder": "test_resnet", "encoder_weights": "none", "max_steps": 2, "batch_size": 2,
       "num_threads": 1}


@pytest.fixture(scope="module")
def tiny_render(tmp_path_factory) -> Path:
    from synth import render_dataset
    from synth.settings import SynthSettings

    root = tmp_path_factory.mktemp("synth") / "tiny"
    render_dataset(root, SynthSettings(frames_train=4, frames_val=2, image_scale=0.5, seed=5),
                   workers=1, progress=False)
    return root


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _cfg(root: Path, boxes2d: str = "detector") -> RunConfig:
    return RunConfig(data_root=root, clouds=("lidar",), boxes2d=boxes2d,
                     overrides={"detect": {"epochs": 1}, "detect2d": D2D})


@pytest.fixture()
def sample_split_root(tmp_path, sample_root) -> Path:
    """The 9 real KITTI sample frames: 6 train, 3 val."""
    import shutil

    r = tmp_path / "kitti"
    shutil.copytree(sample_root / "training", r / "training")
    (r / "ImageSets").mkdir()
    (r / "ImageSets" / "train.txt").write_text("".join(f"{i:06d}\n" for i in range(6)))
    (r / "ImageSets" / "val.txt").write_text("".join(f"{i:06d}\n" for i in range(6, 9)))
    return r


def test_detector_boxes_add_the_2d_stage_and_feed_every_3d_row(sample_split_root):
    tiny_render = sample_split_root
    specs = {s.name: s for s in build_chain(_cfg(tiny_render))}
    assert {"detect2d-train", "detect2d-infer"} <= set(specs)
    from pipeline.cache import make_key

    s = specs["detect2d-infer"]
    d2d_ref = f"{s.stage}/{make_key(s.stage, s.code_version, s.settings, s.inputs)}"
    assert d2d_ref in specs["detect-infer/fpointnet/lidar"].inputs
    simulated = {s.name: s for s in build_chain(_cfg(tiny_render, "simulated"))}
    assert "detect2d-train" not in simulated and "boxes2d:simulated" in simulated["detect-infer/fpointnet/lidar"].inputs


@pytest.mark.slow
def test_run_with_the_detector_reports_its_ap_and_shares_keys_with_the_command(tiny_render, tmp_path):
    work = tmp_path / "work"
    summary = run_chain(_cfg(tiny_render), work)
    d2d = summary["stages"]["detect2d-infer"]
    assert Path(d2d["path"], "ap2d.json").is_file()
    infer3d = json.loads(Path(summary["stages"]["detect-infer/fpointnet/lidar"]["path"], "manifest.json").read_text())
    assert str(Path(d2d["path"]) / "data") in json.dumps(infer3d["summary"])  # the 3D row read these boxes
    report = (work / "report" / "report.md").read_text()
    assert "2D boxes of every row: 2D detector detect2d" in report and "| 2d |" in report

    from pipeline.commands.detect2d_cmd import detect2d_group

    r = CliRunner().invoke(detect2d_group, [
        "train", "--data", str(tiny_render), "--workdir", str(work), "--encoder", "test_resnet",
        "--encoder-weights", "none", "--max-steps", "2", "--batch-size", "2", "--threads", "1", "--quiet"],
        catch_exceptions=False)
    ref = re.search(r"(detect2d-train/[0-9a-f]{16}) \(cached\)", r.output).group(1)
    assert Path(summary["stages"]["detect2d-train"]["path"]).name == ref.split("/")[1]
