"""The detector registry (pipeline/detectors.py): what the help texts, the chain, the keys and the
report take from it, and that a third detector needs nothing but its entry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import detectors, keys
from pipeline.detectors import DETECTORS, get


def test_registry_holds_both_detectors_and_names_them_on_a_typo():
    assert list(DETECTORS) == ["fpointnet", "avod"]
    assert [d.label for d in DETECTORS.values()] == ["F-PN", "AVOD"]
    assert get("avod") is DETECTORS["avod"] and all(d.name == n for n, d in DETECTORS.items())
    with pytest.raises(ValueError, match=r"^unknown detector 'pointpillars'; known: fpointnet, avod$"):
        get("pointpillars")


def test_help_texts_list_every_detector():
    from pipeline.cli import main

    top = CliRunner().invoke(main, ["--help"])
    detect = CliRunner().invoke(main, ["detect", "--help"])
    train = CliRunner().invoke(main, ["detect", "train", "--help"])
    run = CliRunner().invoke(main, ["run", "--help"])
    for det in DETECTORS.values():
        assert det.title in top.output and det.name in top.output
        assert det.title in detect.output and det.name in detect.output
        assert det.name in train.output and det.name in run.output
    assert "[AVOD]" in train.output and "[F-PointNet]" in train.output  # whose option is whose


def test_detect_refuses_another_detectors_option_and_unknown_names(root, tmp_path):
    from pipeline.cli import main

    common = ["--data", str(root), "--points", str(root / "training/velodyne"), "--workdir", str(tmp_path / "w")]
    r = CliRunner().invoke(main, ["detect", "train", *common, "--detector", "fpointnet", "--steps", "3"])
    assert r.exit_code == 2 and "--steps is an option of AVOD only" in r.output
    r = CliRunner().invoke(main, ["detect", "infer", *common, "--detector", "avod", "--model", "x",
                                  "--boxes2d", "gt"])
    assert r.exit_code == 2 and "AVOD takes no 2D boxes" in r.output
    r = CliRunner().invoke(main, ["detect", "baseline", *common, "--detector", "avod"])
    assert r.exit_code == 2 and "AVOD has no baseline" in r.output
    r = CliRunner().invoke(main, ["run", "--data", str(root), "--detector", "fpointnet,nope", "--dry-run"])
    assert r.exit_code == 2 and "unknown detector(s) ['nope']" in r.output


def test_run_detector_all_and_both_name_every_detector(root, tmp_path):
    from pipeline.cli import main

    outs = [CliRunner().invoke(main, ["run", "--data", str(root), "--clouds", "lidar", "--boxes2d", "simulated",
                                      "--dry-run", "--workdir", str(tmp_path / "w"), "--detector", d]).output
            for d in ("all", "both", "fpointnet,avod")]
    assert outs[0] == outs[1] == outs[2]
    assert "eval/avod/lidar" in outs[0] and "eval/fpointnet/lidar" in outs[0]


def test_a_third_detector_is_one_registry_entry(root, tmp_path, monkeypatch):
    """A registered ``toy`` (F-PointNet's functions, its own name, label and code version) gets its
    nodes, its own keys, a ``--set toy.X`` stage and its Table-4 rows, with no other change."""
    from pipeline.report import write_table4
    from pipeline.stages import RunConfig, build_chain

    toy = replace(DETECTORS["fpointnet"], name="toy", title="Toy", label="TOY", code_version="toy-1",
                  uses_boxes2d=False)
    monkeypatch.setitem(DETECTORS, "toy", toy)
    monkeypatch.setattr("pipeline.stages.OVERRIDABLE", ("depth", "pseudolidar", "detect", "detect2d", *DETECTORS))
    cfg = RunConfig(data_root=root, clouds=("lidar",), detector="fpointnet,toy", boxes2d="simulated",
                    overrides={"toy": {"epochs": 3}})
    specs = {s.name: s for s in build_chain(cfg)}
    assert {"detect-train/toy/lidar", "detect-infer/toy/lidar", "eval/toy/lidar"} <= set(specs)
    assert specs["detect-train/toy/lidar"].code_version == "toy-1"
    assert specs["detect-train/toy/lidar"].settings.epochs == 3
    assert keys.NO_BOXES2D in specs["detect-infer/toy/lidar"].inputs
    assert specs["detect-train/toy/lidar"].inputs[1:] == specs["detect-train/fpointnet/lidar"].inputs[1:]
    ev = {"lidar": {"Car": {m: {"R11": [1.0, 2.0, 3.0], "R40": [4.0, 5.0, 6.0]} for m in ("bev", "3d")}}}
    md = write_table4({"toy": ev}, tmp_path, title="t")
    assert "| TOY, LiDAR (ours) | R40 | 4.0 / 4.0 | 5.0 / 5.0 | 6.0 / 6.0 |" in md
    zeros = {m: {r: [0.0, 0.0, 0.0] for r in ("R11", "R40")} for m in ("2d", "bev", "3d", "aos")}
    want = {cloud: {c: by_class.get(c, zeros) for c in ("Car", "Pedestrian", "Cyclist")} for cloud, by_class in ev.items()}
    assert json.loads((tmp_path / "evals.json").read_text()) == {"toy": want}


def test_keys_take_the_code_version_from_the_registry(root, monkeypatch):
    from kitti import KittiRoot

    kr = KittiRoot(root)
    s = get("avod").preset("cpu-small")
    before = keys.detect_train(kr, kr.split("train"), s, "points-folder:x", detector="avod")
    assert before.code_version == "avod-" + __import__("detection.avod").avod.CODE_VERSION
    monkeypatch.setitem(DETECTORS, "avod", replace(DETECTORS["avod"], code_version="avod-999"))
    after = keys.detect_train(kr, kr.split("train"), s, "points-folder:x", detector="avod")
    assert after.code_version == "avod-999" and after.key != before.key
    assert detectors.get("avod").code_version == "avod-999"
