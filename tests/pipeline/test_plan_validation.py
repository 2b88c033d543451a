"""Plan-time validation: bad data anywhere a run reads stops ``foresee run`` before any stage,
with every problem in one report and exit code 2; a clean result is remembered by fingerprint."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kitti import KittiRoot
from kitti.validate import DataProblems
from pipeline.stages import RunConfig, build_chain
from pipeline.validate import VALIDATED, validate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def root(tiny_root, tmp_path) -> Path:
    dst = tmp_path / "root"
    shutil.copytree(tiny_root, dst)
    return dst


def _foresee(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def _break(root: Path) -> list[str]:
    """Plant one problem in each kind of file a run reads; the names the report must give."""
    r = KittiRoot(root)
    train, val = r.split("train"), r.split("val")
    lab = r.path("label_2", train[1])
    lab.write_text(lab.read_text() + "Car 0 0 oops 1 2 3 4 1.5 1.6 3.9 1 1 10 0\n")
    vel = r.path("velodyne", val[0])
    vel.write_bytes(vel.read_bytes() + b"\0" * 7)
    calib = r.path("calib", train[0])
    calib.write_text("\n".join(line for line in calib.read_text().splitlines() if not line.startswith("R0")))
    return [f"label_2/{train[1]}.txt", f"velodyne/{val[0]}.bin", f"calib/{train[0]}.txt"]


def test_run_reports_every_problem_before_any_stage(root, tmp_path):
    names = _break(root)
    work = tmp_path / "work"
    res = _foresee("run", "--data", str(root), "--workdir", str(work), "--boxes2d", "simulated")
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""  # not even the plan: nothing ran
    lines = res.stderr.strip().splitlines()
    assert lines[0].endswith("3 problems in the data this command reads:"), lines
    assert len(lines) == 4 and "Traceback" not in res.stderr
    for name in names:
        assert sum(name in line for line in lines[1:]) == 1, (name, lines)
    assert "field 'alpha' is not a number" in res.stderr and "missing calibration keys: R0_rect" in res.stderr
    assert not (work / VALIDATED).exists()  # a failed check is never remembered


def test_garbage_boxes2d_and_empty_split_are_one_line_exit_2(root, tmp_path):
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("this is not a detection file\n")
    res = _foresee("run", "--data", str(root), "--workdir", str(tmp_path / "w"), "--boxes2d", str(boxes),
                   "--dry-run")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert f"{boxes}:1: expected 7 fields" in res.stderr
    (root / "ImageSets" / "val.txt").write_text("\n")
    work = ("--workdir", str(tmp_path / "w"))
    for args in (("run", "--data", str(root), "--dry-run", "--boxes2d", "simulated", *work),
                 ("eval", "--gt", str(root), "--det", str(tmp_path), "--split", "val"),
                 ("pseudolidar", "--data", str(root), "--from-gt-depth", *work),
                 ("depth", "infer", "--data", str(root), "--from-gt", *work)):
        res = _foresee(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr == f"error: {root / 'ImageSets' / 'val.txt'}: split file is empty (no frame ids)\n", args


def test_clean_result_is_remembered_by_fingerprint(root, tmp_path, monkeypatch):
    import kitti.validate as kv
    import pipeline.validate as pv

    calls = []
    real = kv.check_contents
    monkeypatch.setattr(pv, "check_contents", lambda *a: calls.append(a) or real(*a))
    work = tmp_path / "work"
    cfg = RunConfig(data_root=root, boxes2d="simulated")
    build_chain(cfg, work)
    n = len(calls)
    assert n > 0 and len(list((work / VALIDATED).iterdir())) == 1
    build_chain(cfg, work)
    assert len(calls) == n  # same data: not checked again
    r = KittiRoot(root)
    lab = r.path("label_2", r.split("val")[0])
    lab.write_text(lab.read_text() + "Car 0 0 0 1 2 3\n")  # edited: checked again, and found
    with pytest.raises(DataProblems, match=r"label_2/.*\.txt:\d+: expected 15 or 16 fields"):
        build_chain(cfg, work)
    assert len(calls) > n


def test_validate_checks_a_clouds_folder_and_boxes2d_folder(root, tmp_path):
    r = KittiRoot(root)
    val = r.split("val")
    clouds = tmp_path / "clouds"
    shutil.copytree(r.folder("velodyne"), clouds)
    (clouds / f"{val[1]}.bin").write_bytes(b"\0" * 17)
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    for f in val:
        (boxes / f"{f}.txt").write_text("Car -1 -1 -10 10 20 5 60 -1 -1 -1 -1000 -1000 -1000 -10 0.9\n")
    with pytest.raises(DataProblems) as e:
        validate(r, [(val, ("calib",))], clouds=(clouds, val), boxes2d=boxes, boxes2d_frames=val)
    msg = str(e.value)
    assert f"{val[1]}.bin: size 17 bytes" in msg and "expected x1 <= x2" in msg and "4 problems" in msg  # 1 cloud + 3 box files


def _fabricate_kitti(root: Path, n: int, sample_root: Path) -> None:
    """A KITTI-sized root made cheaply: every frame's files are hard links of one sample frame's
    (labels and calib copied so their content is hashed like KITTI's), depth_2 a real 16-bit PNG."""
    from kitti.depth_io import write_depth_png

    src = KittiRoot(sample_root)
    ids = [f"{i:06d}" for i in range(n)]
    h, w = src.image_hw("000000")
    one_depth = root / "one_depth.png"
    root.mkdir(parents=True)
    write_depth_png(one_depth, np.full((h, w), 20.0, np.float32))
    sources = {"image_2": src.path("image_2", "000000"), "velodyne": src.path("velodyne", "000000"),
               "depth_2": one_depth, "calib": src.path("calib", "000000"), "label_2": src.path("label_2", "000000")}
    dst = KittiRoot(root)
    for kind, s in sources.items():
        dst.folder(kind).mkdir(parents=True)
        if kind in ("calib", "label_2"):
            text = s.read_text()
            for f in ids:
                dst.path(kind, f).write_text(text)
        else:
            local = root / f"one{s.suffix}.{kind}"
            shutil.copy(s, local)
            for f in ids:
                os.link(local, dst.path(kind, f))
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "train.txt").write_text("\n".join(ids[: n // 2]) + "\n")
    (root / "ImageSets" / "val.txt").write_text("\n".join(ids[n // 2:]) + "\n")


@pytest.mark.slow
def test_kitti_scale_validation_takes_seconds_and_is_remembered(tmp_path, sample_root):
    root = tmp_path / "kitti"
    _fabricate_kitti(root, 7481, sample_root)
    cfg = RunConfig(data_root=root, boxes2d="simulated")
    work = tmp_path / "work"

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0 = cpu()
    build_chain(cfg, work)  # validation + fingerprints + keys
    first = cpu() - t0
    t0 = cpu()
    build_chain(cfg, work)  # remembered: fingerprints + keys only
    second = cpu() - t0
    print(f"7481 frames: plan with validation {first:.1f} CPU s, remembered {second:.1f} CPU s")
    assert first < 30 and second < first


def test_stage_commands_validate_what_they_read(root, tmp_path):
    r = KittiRoot(root)
    val = r.split("val")
    calib = r.path("calib", val[0])
    calib.write_text(calib.read_text().replace("P2:", "P2: x", 1))
    depth = r.path("depth_2", val[1])
    depth.write_bytes(b"not a png")
    work = tmp_path / "work"
    res = _foresee("pseudolidar", "--data", str(root), "--from-gt-depth", "--workdir", str(work), "--quiet")
    assert res.returncode == 2, res.stderr
    assert "2 problems" in res.stderr and f"calib/{val[0]}.txt:3" in res.stderr and f"depth_2/{val[1]}.png" in res.stderr
    assert not (work / "pseudolidar").exists()
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    (boxes / f"{val[0]}.txt").write_text("Car 0 0\n")
    res = _foresee("detect", "infer", "--data", str(root), "--points", str(r.folder("velodyne")),
                   "--model", str(tmp_path / "no-model.pt"), "--boxes2d", str(boxes), "--workdir", str(work))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].endswith("4 problems in the data this command reads:"), lines  # calib, 3 box files
    assert f"{boxes / val[0]}.txt:1: expected 16 fields" in res.stderr
    assert sum("2D detection file of this frame not found" in line for line in lines) == 2
