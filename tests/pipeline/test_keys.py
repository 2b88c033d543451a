"""Cache keys (pipeline/keys.py, pipeline/stages.py): every input that changes an output is in the
key, the chain and the stage commands compute the same key, and no stage needs data it does not read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kitti import KittiFormatError, KittiRoot
from pipeline import keys
from pipeline.stages import RunConfig, build_chain, chain_nodes, find


def _specs(root: Path, **kw):
    return {s.name: s for s in build_chain(RunConfig(data_root=root, clouds=("lidar",), **kw))}


def _key(spec) -> str:
    from pipeline.cache import make_key

    return make_key(spec.stage, spec.code_version, spec.settings, spec.inputs)


def test_lidar_only_chain_needs_no_depth_2(root):
    specs = _specs(root)
    assert sorted(specs) == ["detect-infer/fpointnet/lidar", "detect-train/fpointnet/lidar", "eval/fpointnet/lidar"]
    with pytest.raises(KittiFormatError, match="depth_2"):
        build_chain(RunConfig(data_root=root, clouds=("lidar", "oracle")))


def test_velodyne_rewritten_with_the_same_size_changes_the_keys(root):
    before = _specs(root)
    scan = root / "training" / "velodyne" / "000002.bin"  # a train frame
    pts = np.fromfile(scan, dtype=np.float32).reshape(-1, 4)
    pts[:, 0] += 5.0  # every point 5 m further: same size, new content
    pts.tofile(scan)
    after = _specs(root)
    for name in ("detect-train/fpointnet/lidar", "detect-infer/fpointnet/lidar", "eval/fpointnet/lidar"):
        assert _key(after[name]) != _key(before[name]), name
    # a val scan: the trained model stays, inference and evaluation re-run
    scan = root / "training" / "velodyne" / "000007.bin"
    pts = np.fromfile(scan, dtype=np.float32).reshape(-1, 4)
    pts[:, 1] -= 5.0
    pts.tofile(scan)
    again = _specs(root)
    assert _key(again["detect-train/fpointnet/lidar"]) == _key(after["detect-train/fpointnet/lidar"])
    assert _key(again["detect-infer/fpointnet/lidar"]) != _key(after["detect-infer/fpointnet/lidar"])


def test_simulated_boxes_are_keyed_on_the_val_labels(root):
    before = _specs(root)
    lbl = root / "training" / "label_2" / "000007.txt"
    text = lbl.read_text()
    # same size: swap one digit of the first line's 2D box; keep the mtime so only content tells
    st = os.stat(lbl)
    i = text.index(" ", 20) - 1
    edited = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:]
    assert len(edited) == len(text) and edited != text
    lbl.write_text(edited)
    os.utime(lbl, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = _specs(root)
    assert _key(after["detect-infer/fpointnet/lidar"]) != _key(before["detect-infer/fpointnet/lidar"])
    assert _key(after["detect-train/fpointnet/lidar"]) == _key(before["detect-train/fpointnet/lidar"])


def test_boxes2d_file_is_keyed_by_content_in_run_and_command(root, tmp_path):
    from pipeline.commands.detect_cmd import _boxes2d_input

    f = tmp_path / "rgb_detection_val.txt"
    f.write_text("dataset/KITTI/object/training/image_2/000006.png 2 0.9 100 120 300 200\n")
    a = _specs(root, boxes2d=str(f))["detect-infer/fpointnet/lidar"]
    assert _boxes2d_input(str(f)) in a.inputs  # the command's id of the same file
    f.write_text("dataset/KITTI/object/training/image_2/000006.png 2 0.9 100 120 300 201\n")
    b = _specs(root, boxes2d=str(f))["detect-infer/fpointnet/lidar"]
    assert _key(a) != _key(b)
    # a user file: the labels are not what the boxes come from
    assert not any(i.startswith("boxes2d:") for i in b.inputs)


def test_points_folder_id_equals_the_chains_lidar_input(root):
    from pipeline.cache import ArtifactCache
    from pipeline.commands.detect_cmd import _resolve_points

    kr = KittiRoot(root)
    val = kr.split("val")
    spec = _specs(root)["detect-infer/fpointnet/lidar"]
    folder, pid = _resolve_points(ArtifactCache(root / "work"), str(root / "training" / "velodyne"), val, kr)
    assert folder == kr.folder("velodyne") and pid in spec.inputs
    # the same folder somewhere else (copied with its mtimes) is the same input
    shutil.copytree(root / "training" / "velodyne", root / "copy", copy_function=shutil.copy2)
    assert _resolve_points(ArtifactCache(root / "work"), str(root / "copy"), val, kr)[1] == pid


def test_node_layout_per_detector_and_cloud(root):
    cfg = RunConfig(data_root=root, clouds=("lidar", "oracle", "foresee"))
    nodes = chain_nodes(cfg)
    names = [n.name for n in nodes]
    assert names.index("depth-train/foresee") < names.index("depth-infer/foresee") < names.index(
        "pseudolidar/foresee") < names.index("detect-train/fpointnet/foresee") < names.index(
        "detect-infer/fpointnet/foresee") < names.index("eval/fpointnet/foresee")
    assert find(nodes, "eval", detector="fpointnet", cloud="oracle").deps == {
        "results": "detect-infer/fpointnet/oracle"}
    assert find(nodes, "pseudolidar", cloud="oracle").deps == {"depth": "depth-gt"}
    assert len(names) == len(set(names))


def test_dry_run_prints_every_node_and_key(root, tmp_path):
    from pipeline.cli import main

    r = CliRunner().invoke(main, ["run", "--data", str(root), "--clouds", "lidar", "--dry-run",
                                  "--workdir", str(tmp_path / "w")])
    assert r.exit_code == 0, r.output
    specs = _specs(root, boxes2d="detector")  # foresee run's default 2D boxes: the detect2d stage
    for name, spec in specs.items():
        assert f"{spec.stage}/{_key(spec)}" in r.output and name in r.output
    assert "5 stages, 0 cached, 5 to run" in r.output


def test_fingerprint_names_the_missing_file(root):
    (root / "training" / "calib" / "000004.txt").unlink()
    with pytest.raises(KittiFormatError, match="000004.txt"):
        keys.data_id(KittiRoot(root), ("000003", "000004"), ("calib",))
