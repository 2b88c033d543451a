"""AVOD in the chain: nodes per detector, keys shared with ``foresee detect --detector avod``,
no 2D boxes in its keys, and its Table-4 rows."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from kitti import KittiRoot
from pipeline import keys
from pipeline.stages import RunConfig, build_chain

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "kitti_sample"


@pytest.fixture()
def root(tmp_path) -> Path:
    r = tmp_path / "kitti"
    shutil.copytree(SAMPLE / "training", r / "training")
    (r / "ImageSets").mkdir()
    (r / "ImageSets" / "train.txt").write_text("".join(f"{i:06d}\n" for i in range(6)))
    (r / "ImageSets" / "val.txt").write_text("".join(f"{i:06d}\n" for i in range(6, 9)))
    return r


def _specs(root: Path, **kw):
    return {s.name: s for s in build_chain(RunConfig(data_root=root, clouds=("lidar",), **kw))}


def _key(spec) -> str:
    from pipeline.cache import make_key

    return make_key(spec.stage, spec.code_version, spec.settings, spec.inputs)


def test_both_detectors_get_their_own_nodes(root):
    specs = _specs(root, detector="fpointnet,avod")
    assert sorted(specs) == ["detect-infer/avod/lidar", "detect-infer/fpointnet/lidar", "detect-train/avod/lidar",
                             "detect-train/fpointnet/lidar", "eval/avod/lidar", "eval/fpointnet/lidar"]
    assert _key(specs["detect-train/avod/lidar"]) != _key(specs["detect-train/fpointnet/lidar"])


def test_avod_keys_equal_the_stage_commands(root):
    from pipeline.cache import ArtifactCache
    from pipeline.commands.avod_cmd import avod_settings
    from pipeline.commands.detect_cmd import _resolve_points

    spec = _specs(root, detector="avod")["detect-train/avod/lidar"]
    kr = KittiRoot(root)
    train = kr.split("train")
    _, pid = _resolve_points(ArtifactCache(root / "work"), str(root / "training/velodyne"), train, kr)
    cmd = keys.detect_train(kr, train, avod_settings("cpu-small", num_threads=1), pid, detector="avod")
    assert cmd.key == _key(spec)


def test_avod_results_do_not_depend_on_2d_boxes_or_val_labels(root, tmp_path):
    before = _specs(root, detector="fpointnet,avod")
    lbl = root / "training" / "label_2" / "000007.txt"
    st = os.stat(lbl)
    text = lbl.read_text()
    i = text.index(" ", 20) - 1
    lbl.write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:])
    os.utime(lbl, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = _specs(root, detector="fpointnet,avod")
    assert _key(after["detect-infer/fpointnet/lidar"]) != _key(before["detect-infer/fpointnet/lidar"])
    assert _key(after["detect-infer/avod/lidar"]) == _key(before["detect-infer/avod/lidar"])
    f = tmp_path / "rgb_detection_val.txt"
    f.write_text("dataset/KITTI/object/training/image_2/000006.png 2 0.9 100 120 300 200\n")
    other = _specs(root, detector="avod", boxes2d=str(f))
    assert _key(other["detect-infer/avod/lidar"]) == _key(after["detect-infer/avod/lidar"])


def test_table4_has_avod_rows(tmp_path):
    from pipeline.report import write_table4

    def ev(bev, ap3d):
        return {"lidar": {"Car": {"bev": {"R11": bev, "R40": bev}, "3d": {"R11": ap3d, "R40": ap3d}}}}

    md = write_table4(ev([60.0, 50.0, 40.0], [30.0, 20.0, 10.0]), tmp_path, title="t",
                      evals_loose=ev([80.0, 70.0, 60.0], [70.0, 60.0, 50.0]),
                      more_detectors={"AVOD": (ev([41.0, 31.5, 21.0], [11.0, 7.25, 3.0]),
                                               ev([61.0, 51.0, 41.0], [51.0, 41.0, 31.0]))})
    assert "| AVOD, LiDAR (ours) | R40 | 41.0 / 11.0 | 31.5 / 7.2 | 21.0 / 3.0 |" in md
    assert "| F-PN, LiDAR (ours) | R40 | 60.0 / 30.0 | 50.0 / 20.0 | 40.0 / 10.0 |" in md
    assert "AVOD, LiDAR (ours)" in (tmp_path / "table4_iou05.md").read_text()
    assert json.loads((tmp_path / "evals.json").read_text())["lidar"]["Car"]["bev"]["R40"] == [60.0, 50.0, 40.0]


def test_avod_never_waits_for_the_2d_detector(root):
    from pipeline.stages import chain_nodes

    alone = {n.name: n for n in chain_nodes(RunConfig(data_root=root, clouds=("lidar",), detector="avod",
                                                      boxes2d="detector"))}
    assert not any(name.startswith("detect2d") for name in alone)
    assert "boxes2d" not in alone["detect-infer/avod/lidar"].deps
    both = {n.name: n for n in chain_nodes(RunConfig(data_root=root, clouds=("lidar",), detector="fpointnet,avod",
                                                     boxes2d="detector"))}
    assert both["detect-infer/fpointnet/lidar"].deps["boxes2d"] == "detect2d-infer"
    assert "boxes2d" not in both["detect-infer/avod/lidar"].deps


@pytest.mark.parametrize("detector", ["avod", "fpointnet,avod"])
def test_avod_keys_build_with_the_2d_detector_default(root, detector):
    """``foresee run --detector avod|both`` with the default ``--boxes2d detector``: AVOD's
    detect-infer key has no 2D-box input and equals its key under ``--boxes2d simulated``."""
    with_detector = _specs(root, detector=detector, boxes2d="detector")
    with_simulated = _specs(root, detector=detector, boxes2d="simulated")
    assert _key(with_detector["detect-infer/avod/lidar"]) == _key(with_simulated["detect-infer/avod/lidar"])
