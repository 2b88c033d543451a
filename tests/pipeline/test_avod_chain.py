"""AVOD in the chain: nodes per detector, keys shared with ``foresee detect --detector avod``,
no 2D boxes in its keys, and its Table-4 rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kitti import KittiRoot
from pipeline import keys
from pipeline.stages import RunConfig, build_chain


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
    from pipeline.commands.detect_cmd import _resolve_points
    from pipeline.detectors import get

    spec = _specs(root, detector="avod")["detect-train/avod/lidar"]
    kr = KittiRoot(root)
    train = kr.split("train")
    _, pid = _resolve_points(ArtifactCache(root / "work"), str(root / "training/velodyne"), train, kr)
    cmd = keys.detect_train(kr, train, get("avod").settings("cpu-small", num_threads=1), pid, detector="avod")
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


def _eval(seed: float) -> dict:
    """An eval.json whose every Car value is distinct: bev/3d x R11/R40 x easy/moderate/hard."""
    return {"Car": {m: {r: [seed + 10 * i + 1 * j + 0.25 * k for k in range(3)]
                        for j, r in enumerate(("R11", "R40"))}
                    for i, m in enumerate(("bev", "3d"))},
            "Pedestrian": {"bev": {"R11": [99.0] * 3, "R40": [98.0] * 3}}}


def _check_table4_rows(md: str, csv_text: str, evals: dict) -> None:
    """Every (detector, cloud, recall) row of the markdown and the csv holds that eval's values."""
    import csv
    import io

    from pipeline.report import CLOUD_LABELS

    labels = {"fpointnet": "F-PN", "avod": "AVOD"}
    rows = {(r["detector"], r["cloud"], r["recall"]): r for r in csv.DictReader(io.StringIO(csv_text))
            if r["source"] == "measured"}
    assert len(rows) == sum(2 * len(ev) for ev in evals.values())
    for det, by_cloud in evals.items():
        for cloud, ev in by_cloud.items():
            for recall in ("R11", "R40"):
                bev, ap3d = ev["Car"]["bev"][recall], ev["Car"]["3d"][recall]
                row = rows[(det, cloud, recall)]
                assert row["method"] == f"{labels[det]}, {CLOUD_LABELS[cloud]}"
                assert [float(row[f"bev_{d}"]) for d in ("easy", "moderate", "hard")] == bev
                assert [float(row[f"3d_{d}"]) for d in ("easy", "moderate", "hard")] == ap3d
                cells = " | ".join(f"{b:.1f} / {a:.1f}" for b, a in zip(bev, ap3d))
                assert f"| {labels[det]}, {CLOUD_LABELS[cloud]} | {recall} | {cells} |" in md


_ZERO_CLASS = {m: {r: [0.0, 0.0, 0.0] for r in ("R11", "R40")} for m in ("2d", "bev", "3d", "aos")}


def _with_zero_classes(evals: dict) -> dict:
    """What the report's JSON holds: every evaluated class of every (detector, cloud), a class
    nothing was detected as with AP 0 in every metric (the devkit leaves it out)."""
    return {det: {cloud: {c: ev.get(c, _ZERO_CLASS) for c in ("Car", "Pedestrian", "Cyclist")}
                  for cloud, ev in by_cloud.items()} for det, by_cloud in evals.items()}


def test_table4_rows_hold_each_detectors_r11_and_r40_values(tmp_path):
    """Two detectors, two clouds, R11 and R40 and every difficulty distinct: each cell of
    table4.md / table4.csv (and the loose ones) is its own value (none read from another recall)."""
    from pipeline.report import write_table4

    evals = {"fpointnet": {"lidar": _eval(60.0), "oracle": _eval(40.0)},
             "avod": {"lidar": _eval(50.0), "oracle": _eval(30.0)}}
    loose = {"fpointnet": {"lidar": _eval(80.0), "oracle": _eval(70.0)},
             "avod": {"lidar": _eval(75.0), "oracle": _eval(65.0)}}
    md = write_table4(evals, tmp_path, title="t", evals_loose=loose)
    _check_table4_rows(md, (tmp_path / "table4.csv").read_text(), evals)
    _check_table4_rows((tmp_path / "table4_iou05.md").read_text(), (tmp_path / "table4_iou05.csv").read_text(), loose)
    assert json.loads((tmp_path / "evals.json").read_text()) == _with_zero_classes(evals)
    assert json.loads((tmp_path / "evals_iou05.json").read_text()) == _with_zero_classes(loose)


@pytest.mark.parametrize("detector", ["fpointnet,avod", "avod"])
def test_run_report_files_hold_every_detectors_evaluations(root, tmp_path, monkeypatch, detector):
    """A fabricated finished run (eval artifacts of both detectors): evals.json / evals_iou05.json
    map detector -> cloud -> that node's eval.json / eval_loose.json, and the csv has every row;
    an AVOD-only run's evals.json is AVOD's (it was ``{}``)."""
    from types import SimpleNamespace

    import pipeline.figures
    from pipeline.run import _write_one

    monkeypatch.setattr(pipeline.figures, "make_figures", lambda cfg, arts, out: [])
    cfg = RunConfig(data_root=root, clouds=("lidar",), detector=detector, boxes2d="simulated")
    specs = build_chain(cfg)
    arts, want, want_loose = {}, {}, {}
    for k, spec in enumerate(s for s in specs if s.node.kind == "eval"):
        det, cloud = spec.node.tags["detector"], spec.node.tags["cloud"]
        folder = tmp_path / "arts" / spec.name.replace("/", "_")
        folder.mkdir(parents=True)
        want.setdefault(det, {})[cloud] = _eval(20.0 * k + 1)
        want_loose.setdefault(det, {})[cloud] = _eval(20.0 * k + 5)
        (folder / "eval.json").write_text(json.dumps(want[det][cloud]))
        (folder / "eval_loose.json").write_text(json.dumps(want_loose[det][cloud]))
        arts[spec.name] = SimpleNamespace(path=folder)
    assert list(want) == detector.split(",")
    out = tmp_path / "report"
    report = _write_one(cfg, specs, arts, out, None)
    assert json.loads((out / "evals.json").read_text()) == _with_zero_classes(want)
    assert json.loads((out / "evals_iou05.json").read_text()) == _with_zero_classes(want_loose)
    _check_table4_rows(report, (out / "table4.csv").read_text(), want)
    _check_table4_rows((out / "table4_iou05.md").read_text(), (out / "table4_iou05.csv").read_text(), want_loose)
    assert "AVOD uses no 2D boxes" in report


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
