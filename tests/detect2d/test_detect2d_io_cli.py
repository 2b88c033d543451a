"""Result files round-trip through the kitti reader, the evaluator's reader and F-PointNet's 2D-box
reader; ``foresee detect2d train|infer`` through the cache, and its bad-input lines."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings as hsettings, strategies as st

from detect2d.infer import detection_object
from detection.frustum_pointnet.boxes2d import read_kitti_2d_folder
from kitti.labels import read_label_file, write_label_file
from kitti_eval.loading import read_label_folder

from d2d_fixtures import write_root

CLASSES = ("Car", "Pedestrian", "Cyclist")


@st.composite
def detections(draw):
    out = []
    for _ in range(draw(st.integers(0, 6))):
        x1 = draw(st.floats(0, 1200, allow_nan=False))
        y1 = draw(st.floats(0, 360, allow_nan=False))
        x2 = x1 + draw(st.floats(0, 40, allow_nan=False))
        y2 = y1 + draw(st.floats(0, 14, allow_nan=False))
        out.append((draw(st.sampled_from(CLASSES)), (x1, y1, x2, y2), draw(st.floats(0.0001, 1.0))))
    return out


@hsettings(max_examples=40, deadline=None)
@given(dets=detections())
def test_result_file_round_trip_through_three_readers(tmp_path_factory, dets):
    folder = tmp_path_factory.mktemp("res")
    write_label_file(folder / "000042.txt", [detection_object(k, b, s) for k, b, s in dets])
    objs = read_label_file(folder / "000042.txt", require_score=True)
    boxes2d = read_kitti_2d_folder(folder, ["000042"], CLASSES)["000042"]
    labels = read_label_folder(folder, ["000042"], detections=True)
    assert len(objs) == len(boxes2d) == len(dets) == len(labels.types)
    for o, b, (kind, box, score) in zip(objs, boxes2d, dets):
        assert (o.type, b.type) == (kind, kind)
        assert (o.truncated, o.occluded, o.alpha) == (-1.0, -1, -10.0)
        assert (o.h, o.w, o.l, o.x, o.y, o.z, o.ry) == (-1, -1, -1, -1000, -1000, -1000, -10)
        for got in (o.bbox, b.box):
            assert got == pytest.approx([float(f"{v:.2f}") for v in box], abs=1e-9)
        assert o.score == b.score == float(f"{score:.4f}")
    text = (folder / "000042.txt").read_text()
    if dets:
        assert re.fullmatch(r"\w+ -1\.00 -1 -10\.00( \d+\.\d\d){4} -1\.00 -1\.00 -1\.00 "
                            r"-1000\.00 -1000\.00 -1000\.00 -10\.00 \d\.\d{4}", text.splitlines()[0])


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


TRAIN = ["--encoder", "test_resnet", "--encoder-weights", "none", "--image-scale", "1.0",
         "--max-steps", "2", "--batch-size", "2", "--threads", "1", "--quiet"]


def test_cli_train_infer_cached_with_ap(tiny_root, tmp_path):
    from pipeline.commands.detect2d_cmd import detect2d_group

    work = ["--workdir", str(tmp_path / "w"), "--data", str(tiny_root)]
    runner = CliRunner()
    r = runner.invoke(detect2d_group, ["train", *work, *TRAIN], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ref = re.search(r"(detect2d-train/[0-9a-f]{16}) \(built\): 4 frames, 8 boxes", r.output).group(1)
    again = runner.invoke(detect2d_group, ["train", *work, *TRAIN], catch_exceptions=False)
    assert f"{ref} (cached)" in again.output
    r = runner.invoke(detect2d_group, ["infer", *work, "--model", ref, "--threads", "1", "--quiet"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = re.search(r"(detect2d-infer/[0-9a-f]{16}) \(built\): 4 frames", r.output).group(1)
    art = tmp_path / "w" / out
    assert sorted(p.name for p in (art / "data").glob("*.txt")) == [f"00000{i}.txt" for i in range(4)]
    manifest = json.loads((art / "manifest.json").read_text())
    ap = json.loads((art / "ap2d.json").read_text())
    for cls, table in manifest["summary"]["ap2d"].items():  # the manifest carries the evaluator's AP
        assert [float(v) for v in table["R40"]] == ap[cls]["2d"]["R40"]


def _run_cli(monkeypatch, capsys, args):
    from pipeline.cli import cli_entry

    monkeypatch.setattr("sys.argv", ["foresee", *args])
    with pytest.raises(SystemExit) as e:
        cli_entry()
    return e.value.code, capsys.readouterr().err.strip()


def test_cli_image_of_another_size_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    root = write_root(tmp_path / "root", sizes={"000001": (100, 384)})
    code, err = _run_cli(monkeypatch, capsys, ["detect2d", "train", "--data", str(root), "--workdir",
                                               str(tmp_path / "w"), *TRAIN])
    assert code == 2
    assert err == (f"error: {root}/training/image_2/000001.png: image is 384x100 (WxH), the dataset's "
                   "images are 384x128 (tolerance 5%): refused")


def test_cli_missing_encoder_weights_exit_2_with_one_line(tiny_root, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "lite0.pth"
    args = ["detect2d", "train", "--data", str(tiny_root), "--workdir", str(tmp_path / "w"),
            "--encoder-weights", str(missing), "--max-steps", "1", "--quiet"]
    code, err = _run_cli(monkeypatch, capsys, args)
    assert code == 2 and err.count("\n") == 0 and str(missing) in err


def test_only_the_exact_no_3d_size_is_accepted(tmp_path):
    from kitti.errors import KittiFormatError

    line = "Car -1 -1 -10 10.00 20.00 30.00 40.00 {} -1000 -1000 -1000 -10 0.5000\n"
    (tmp_path / "000000.txt").write_text(line.format("-1 -1 -1"))
    assert read_label_file(tmp_path / "000000.txt")[0].h == -1.0
    (tmp_path / "000000.txt").write_text(line.format("-1 -1 -2"))
    for read in (lambda: read_label_file(tmp_path / "000000.txt"),
                 lambda: read_label_folder(tmp_path, ["000000"], detections=True)):
        with pytest.raises(KittiFormatError, match=r"000000\.txt:1: negative box size"):
            read()
