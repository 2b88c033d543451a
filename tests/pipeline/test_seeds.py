"""``foresee run --seeds N``: the seed axis of the chain and the spread report.

The one-seed plan is compared with the chain as it was declared before the seed axis (a frozen
copy of that node list, built through the same ``build_chain``), and the seed tables with values
computed here independently (``statistics``) from constructed eval / depth JSONs."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

import pytest

from pipeline import stages as chain_mod
from pipeline.stages import Node, RunConfig, build_chain
from pipeline.report import (SeedRow, seed_diffs, seeds_markdown, spread_verdict, table2_seed_rows,
                             table4_seed_rows, write_seeds)


def _legacy_chain_nodes(cfg: RunConfig) -> list[Node]:
    """The node list of ``chain_nodes`` before ``--seeds`` (frozen copy, the reference)."""
    name = chain_mod._name
    nodes: list[Node] = []
    pl_clouds = [c for c in cfg.clouds if c != "lidar"]

    def source(c):
        return "depth-gt" if c == "oracle" else name("depth-infer", c)

    for v in ("baseline", "foresee"):
        if v in cfg.clouds:
            nodes.append(Node(name("depth-train", v), "depth-train", {"variant": v}))
            nodes.append(Node(name("depth-infer", v), "depth-infer", {"variant": v},
                              {"checkpoint": name("depth-train", v)}))
    if "oracle" in cfg.clouds:
        nodes.append(Node("depth-gt", "depth-gt", {"variant": "oracle"}))
    for c in pl_clouds:
        nodes.append(Node(name("pseudolidar", c), "pseudolidar", {"cloud": c}, {"depth": source(c)}))
    boxes2d = {}
    if cfg.boxes2d == "detector" and any(chain_mod.DETECTORS[d].uses_boxes2d for d in cfg.detectors):
        nodes.append(Node("detect2d-train", "detect2d-train"))
        nodes.append(Node("detect2d-infer", "detect2d-infer", {}, {"model": "detect2d-train"}))
        boxes2d = {"boxes2d": "detect2d-infer"}
    for det in cfg.detectors:
        for c in cfg.clouds:
            tags = {"cloud": c, "detector": det}
            points = {} if c == "lidar" else {"points": name("pseudolidar", c)}
            train, infer = name("detect-train", det, c), name("detect-infer", det, c)
            nodes.append(Node(train, "detect-train", tags, points))
            uses = boxes2d if chain_mod.DETECTORS[det].uses_boxes2d else {}
            nodes.append(Node(infer, "detect-infer", tags, {"model": train, **points, **uses}))
            nodes.append(Node(name("eval", det, c), "eval", tags, {"results": infer}))
    for c in pl_clouds:
        nodes.append(Node(name("depth-eval", c), "depth-eval", {"cloud": c}, {"depth": source(c)}))
    return nodes


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from synth import SynthSettings, render_dataset

    r = tmp_path_factory.mktemp("seeds") / "tiny"
    render_dataset(r, SynthSettings(frames_train=2, frames_val=1, seed=7, image_scale=0.5, frames_per_drive=1,
                                    lidar_azimuth_step_deg=0.18, min_box_height_px=8.0, min_visible_px=10),
                   workers=1, progress=False)
    return r


def _plan(specs) -> list[tuple]:
    return [(s.name, s.stage, s.key if hasattr(s, "key") else None, s.node.deps, dict(s.node.tags)) for s in specs]


def _keys(specs) -> dict[str, str]:
    from pipeline.executor import plan
    from pipeline.cache import ArtifactCache

    return {p.spec.name: f"{p.spec.stage}/{p.key}" for p in plan(specs, ArtifactCache(Path("/nonexistent-seeds")))}


@pytest.mark.parametrize("boxes2d,detector", [("simulated", "fpointnet"), ("simulated", "fpointnet,avod"), ("detector", "fpointnet")])
def test_one_seed_plan_is_the_chain_before_the_seed_axis(root, monkeypatch, boxes2d, detector):
    cfg = RunConfig(data_root=root, boxes2d=boxes2d, detector=detector,
                    overrides={"depth": {"max_steps": 3}, "pseudolidar": {"max_height_m": 1.5}})
    assert cfg.seeds == 1
    new = build_chain(cfg)
    with monkeypatch.context() as m:
        m.setattr(chain_mod, "chain_nodes", _legacy_chain_nodes)
        old = build_chain(cfg)
    assert [s.name for s in new] == [s.name for s in old]
    assert [(s.node.deps, dict(s.node.tags)) for s in new] == [(s.node.deps, dict(s.node.tags)) for s in old]
    assert _keys(new) == _keys(old)
    assert len(_keys(new)) == len(new)


def test_two_seeds_share_ground_truth_and_2d_boxes_and_seed_training_only(root):
    base = RunConfig(data_root=root, boxes2d="detector")
    one = {s.name: s for s in build_chain(base)}
    two = build_chain(RunConfig(data_root=root, boxes2d="detector", seeds=2))
    names = [s.name for s in two]
    assert len(names) == len(set(names))
    shared = {"depth-gt", "pseudolidar/oracle", "depth-eval/oracle", "detect2d-train", "detect2d-infer"}
    assert shared <= set(names)
    per_seed = [n for n in one if n not in shared]
    for s in (0, 1):
        assert {f"{n}/s{s}" for n in per_seed} <= set(names)
    assert len(names) == len(shared) + 2 * len(per_seed)
    k1, k2 = _keys(list(one.values())), _keys(two)
    # seed 0 is the presets' seed: every seed-0 artifact is the one-seed run's
    for n in one:
        assert k2[n if n in shared else f"{n}/s0"] == k1[n]
    # seed 1: a new artifact everywhere downstream of training, the shared ones untouched
    for n in per_seed:
        assert k2[f"{n}/s1"] != k1[n], n
    by = {s.name: s for s in two}
    assert by["detect-infer/fpointnet/oracle/s1"].node.deps["points"] == "pseudolidar/oracle"
    assert by["detect-infer/fpointnet/baseline/s1"].node.deps["points"] == "pseudolidar/baseline/s1"
    assert by["pseudolidar/foresee/s1"].node.deps["depth"] == "depth-infer/foresee/s1"
    assert by["detect-infer/fpointnet/lidar/s1"].node.deps["boxes2d"] == "detect2d-infer"
    # the seed is set in training settings only (inference, incl. simulated boxes, keeps the preset's)
    assert by["depth-train/foresee/s1"].settings.seed == 1
    assert by["detect-train/fpointnet/lidar/s1"].settings.seed == 1
    assert by["detect-infer/fpointnet/lidar/s1"].settings["seed"] == by["detect-infer/fpointnet/lidar/s0"].settings["seed"] == 0


def test_seeds_refuse_a_fixed_seed_and_a_count_below_one(root):
    with pytest.raises(ValueError, match="drop --set depth.seed"):
        build_chain(RunConfig(data_root=root, seeds=3, overrides={"depth": {"seed": 4}}))
    with pytest.raises(ValueError, match="seeds must be"):
        build_chain(RunConfig(data_root=root, seeds=0))


def test_cli_seeds_option(root, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    args = ["run", "--data", str(root), "--workdir", str(tmp_path / "w"), "--boxes2d", "simulated", "--dry-run"]
    r = CliRunner().invoke(main, args + ["--seeds", "2"])
    assert r.exit_code == 0, r.output
    assert "detect-train/fpointnet/lidar/s1" in r.output and "depth-gt/s" not in r.output
    one = CliRunner().invoke(main, args)
    assert one.exit_code == 0 and "/s0" not in one.output
    assert CliRunner().invoke(main, args + ["--seeds", "1"]).output == one.output
    bad = CliRunner().invoke(main, args + ["--seeds", "0"])
    assert bad.exit_code == 2 and "--seeds" in bad.output
    fixed = CliRunner().invoke(main, args + ["--seeds", "2", "--set", "detect.seed=3"])
    assert fixed.exit_code == 2 and "drop --set detect.seed" in fixed.output


def test_detect_overrides_reach_the_detectors_that_have_the_field(root):
    """``detect.X`` reaches every detector with field X; ``avod.X`` / ``fpointnet.X`` one detector."""
    cfg = RunConfig(data_root=root, boxes2d="simulated", detector="fpointnet,avod", clouds=("lidar",),
                    overrides={"detect": {"epochs": 1, "learning_rate": 0.25},
                               "avod": {"steps": 7, "learning_rate": 0.5}})
    got = {s.name: s.settings for s in build_chain(cfg) if s.stage == "detect-train"}
    fpn, avod = got["detect-train/fpointnet/lidar"], got["detect-train/avod/lidar"]
    assert (fpn.epochs, fpn.learning_rate) == (1, 0.25)   # F-PointNet only field, shared field
    assert (avod.steps, avod.learning_rate) == (7, 0.5)   # AVOD's own override applied after detect.X
    with pytest.raises(ValueError, match=r"unknown detect setting\(s\) \['no_such'\]"):
        build_chain(RunConfig(data_root=root, boxes2d="simulated", overrides={"detect": {"no_such": 1}}))
    with pytest.raises(ValueError, match=r"overrides for \['avod'\], which this run does not use"):
        build_chain(RunConfig(data_root=root, boxes2d="simulated", overrides={"avod": {"steps": 1}}))
    with pytest.raises(ValueError, match="unknown avod setting"):
        build_chain(RunConfig(data_root=root, boxes2d="simulated", detector="avod", overrides={"avod": {"epochs": 1}}))


# ---------------------------------------------------------------------------- the spread report
def _depth_json(fg_abs, bg_abs, gl_abs, fg_si, bg_si, gl_si) -> dict:
    """A depth_metrics.json; its per-object figures (surface absRel fg + 0.01, per-object error of
    all objects bg + 0.02, signed error at 30-40 m fg SILog / 10) are taken from the pooled ones."""
    pooled = {"fg": {"absrel": fg_abs, "silog": fg_si}, "bg": {"absrel": bg_abs, "silog": bg_si},
              "global": {"absrel": gl_abs, "silog": gl_si}}
    objects = {"by_distance": [{"bin_m": "20-30", "mean_rel": 9.0, "mean_signed_m": 9.0},
                               {"bin_m": "30-40", "mean_rel": 9.0, "mean_signed_m": fg_si / 10},
                               {"bin_m": "all", "mean_rel": bg_abs + 0.02, "mean_signed_m": 9.0}]}
    return {"pooled": pooled, "per_image": pooled, "pixels": {"fg": 1, "bg": 1, "global": 2}, "frames": 1,
            "surface": {"absrel": fg_abs + 0.01, "silog": 9.0, "pixels": 5}, "objects": objects}


def _eval_json(bev11, bev40, ap3d11, ap3d40) -> dict:
    return {"Car": {"bev": {"R11": bev11, "R40": bev40}, "3d": {"R11": ap3d11, "R40": ap3d40}},
            "Pedestrian": {"bev": {"R11": [99.0] * 3, "R40": [99.0] * 3}}}


DEPTH = {"baseline": [_depth_json(0.30, 0.20, 0.22, 30.0, 20.0, 22.0), _depth_json(0.34, 0.21, 0.23, 31.0, 21.0, 23.0),
                      _depth_json(0.32, 0.19, 0.21, 29.0, 19.0, 21.0)],
         "foresee": [_depth_json(0.25, 0.21, 0.22, 26.0, 21.5, 22.5), _depth_json(0.27, 0.22, 0.24, 27.0, 20.0, 23.5),
                     _depth_json(0.26, 0.20, 0.20, 25.0, 19.5, 20.0)]}
EVALS = {"baseline": [_eval_json([10.0, 8.0, 7.0], [9.0, 6.0, 5.0], [5.0, 4.0, 3.0], [4.0, 3.0, 2.0]),
                      _eval_json([12.0, 9.0, 8.0], [10.0, 7.0, 6.0], [6.0, 4.5, 4.0], [5.0, 3.5, 2.5]),
                      _eval_json([11.0, 7.0, 6.0], [8.0, 5.0, 4.0], [4.0, 3.5, 2.0], [3.0, 2.5, 1.5])],
         "foresee": [_eval_json([11.0, 8.5, 7.0], [9.5, 6.0, 5.5], [5.0, 4.0, 3.0], [4.0, 3.0, 2.0]),
                     _eval_json([13.0, 9.0, 8.5], [10.5, 7.0, 6.1], [6.0, 4.5, 4.0], [5.0, 3.5, 2.5]),
                     _eval_json([12.0, 7.0, 6.5], [8.5, 5.0, 4.5], [4.0, 3.5, 2.0], [3.0, 2.5, 1.5])]}


def _rows() -> list[SeedRow]:
    rows = table2_seed_rows(DEPTH)
    for c in ("baseline", "foresee"):
        rows += table4_seed_rows("F-PN", c, "0.7", EVALS[c])
    return rows


def test_seed_rows_carry_every_seeds_value():
    rows = {(r.table, r.subject, r.metric): r.values for r in _rows()}
    assert rows[("Table 2", "baseline", "fg absRel")] == (0.30, 0.34, 0.32)
    assert rows[("Table 2", "foresee", "global SILog")] == (22.5, 23.5, 20.0)
    assert rows[("Table 4", "baseline", "AP_BEV IoU 0.7 R40 moderate")] == (6.0, 7.0, 5.0)
    assert rows[("Table 4", "foresee", "AP_3D IoU 0.7 R11 hard")] == (3.0, 4.0, 2.0)
    assert rows[("Table 2", "baseline", "object-surface absRel")] == pytest.approx((0.31, 0.35, 0.33))
    assert rows[("Table 2", "foresee", "per-object mean rel. error (all)")] == pytest.approx((0.23, 0.24, 0.22))
    assert rows[("Table 2", "foresee", "per-object mean signed error 30-40 m (m)")] == pytest.approx((2.6, 2.7, 2.5))
    # 6 Table-2 metrics + 3 per-object columns per variant; 2 kinds x 2 recalls x 3 difficulties
    # per cloud; Car only
    assert len(rows) == 2 * 9 + 2 * 12


def test_per_object_columns_are_nan_without_them():
    """A depth_metrics.json without per-object figures (no labelled object) gives NaN, not a number."""
    j = _depth_json(0.3, 0.2, 0.2, 30.0, 20.0, 20.0)
    del j["surface"], j["objects"]["by_distance"][1]
    rows = {r.metric: r.values for r in table2_seed_rows({"foresee": [j]})}
    assert math.isnan(rows["object-surface absRel"][0]) and math.isnan(rows["per-object mean signed error 30-40 m (m)"][0])
    assert rows["per-object mean rel. error (all)"] == pytest.approx((0.22,))


@pytest.mark.parametrize("table,metric,verdict", [
    ("Table 2", "fg absRel", "exceeds the spread"),          # -0.05, -0.07, -0.06
    ("Table 2", "global absRel", "within the spread"),       # 0, +0.01, -0.01
    ("Table 4", "AP_BEV IoU 0.7 R11 easy", "exceeds the spread"),  # +1 on every seed: std 0
    ("Table 4", "AP_BEV IoU 0.7 R40 hard", "exceeds the spread"),  # 0.5, 0.1, 0.5
    ("Table 4", "AP_3D IoU 0.7 R40 moderate", "within the spread"),  # 0, 0, 0
])
def test_foresee_minus_baseline_against_the_spread_by_hand(table, metric, verdict):
    diffs = {(r.table, r.metric): (r, v) for r, v in seed_diffs(_rows())}
    row, (mean, std, bound, got) = diffs[(table, metric)]
    key = "depth" if table == "Table 2" else "F-PN"
    assert row.method == key
    if table == "Table 2":
        region, name = metric.split()
        m = {"absRel": "absrel", "SILog": "silog"}[name]
        d = [f["pooled"][region][m] - b["pooled"][region][m] for f, b in zip(DEPTH["foresee"], DEPTH["baseline"])]
    else:
        kind = "bev" if metric.startswith("AP_BEV") else "3d"
        recall, diff = metric.split()[-2:]
        i = ("easy", "moderate", "hard").index(diff)
        d = [f["Car"][kind][recall][i] - b["Car"][kind][recall][i] for f, b in zip(EVALS["foresee"], EVALS["baseline"])]
    assert row.values == pytest.approx(d)
    assert mean == pytest.approx(statistics.mean(d))
    assert std == pytest.approx(statistics.stdev(d))
    assert bound == pytest.approx(2 * statistics.stdev(d) / math.sqrt(3))
    assert got == verdict
    assert (abs(statistics.mean(d)) > 2 * statistics.stdev(d) / math.sqrt(3)) == (verdict == "exceeds the spread")


def test_spread_verdict_edge_cases():
    assert spread_verdict([0.2, 0.2])[3] == "exceeds the spread"
    assert spread_verdict([1.0, -1.0])[3] == "within the spread"
    # |mean| = 1, std = sqrt(2), 2*std/sqrt(2) = 2 -> within
    assert spread_verdict([0.0, 2.0])[:3] == pytest.approx((1.0, math.sqrt(2), 2.0))
    assert spread_verdict([float("nan"), 1.0])[3].startswith("undefined")


def test_seed_tables_markdown_and_csv(tmp_path):
    rows = _rows()
    md = write_seeds(rows, [0, 1, 2], tmp_path, title="Seeds — test")
    assert (tmp_path / "seeds.md").read_text() == md
    assert "| Table 2 | depth | baseline | fg absRel | 0.300 | 0.340 | 0.320 | 0.320 ± 0.020 |" in md
    assert "2·std/√N" in md and "ddof=1" in md
    assert "| Table 2 | depth | fg absRel | -0.050 | -0.070 | -0.060 | -0.060 ± 0.010 | 0.012 | exceeds the spread |" in md
    table = list(csv.DictReader(io.StringIO((tmp_path / "seeds.csv").read_text())))
    assert len(table) == len(rows)
    r = next(t for t in table if t["row"] == "foresee" and t["metric"] == "AP_BEV IoU 0.7 R11 moderate")
    vals = [8.5, 9.0, 7.0]
    assert [float(r[f"seed{s}"]) for s in range(3)] == vals
    assert float(r["mean"]) == pytest.approx(statistics.mean(vals), rel=1e-5)
    assert float(r["std"]) == pytest.approx(statistics.stdev(vals), rel=1e-5)
    diff = list(csv.DictReader(io.StringIO((tmp_path / "seeds_diff.csv").read_text())))
    assert len(diff) == 9 + 12 and {d["row"] for d in diff} == {"foresee-baseline"}
    assert {d["verdict"] for d in diff} == {"exceeds the spread", "within the spread"}
    assert seeds_markdown(rows, [0, 1, 2], title="x").count("\n| Table") == len(rows) + len(diff)


# ---------------------------------------------------------------------------- end to end (tiny)
@pytest.mark.slow
def test_two_seeds_end_to_end_on_a_tiny_render(tmp_path):
    """12 frames, ``--seeds 2``, simulated 2D boxes, 5 depth steps, one detector epoch: the seed
    tables hold each seed's own evaluation and their mean ± std; every seed has its report."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from synth import SynthSettings, render_dataset

    root = tmp_path / "tiny"
    render_dataset(root, SynthSettings(frames_train=8, frames_val=4, image_scale=0.5, seed=3),
                   workers=1, progress=False)
    work = tmp_path / "work"
    res = CliRunner().invoke(main, ["run", "--data", str(root), "--workdir", str(work), "--seeds", "2",
                                    "--boxes2d", "simulated", "--set", "depth.max_steps=5",
                                    "--set", "detect.epochs=1"])
    assert res.exit_code == 0, res.output
    report = work / "report"
    stages = json.loads((report / "run_summary.json").read_text())["stages"]
    assert "depth-train/foresee/s1" in stages and "depth-gt" in stages and "depth-gt/s0" not in stages
    for s in (0, 1):
        for name in ("report.md", "table4.md", "table4_iou05.md", "table2.md"):
            assert (report / f"s{s}" / name).is_file(), (s, name)
        assert f"seed {s}" in (report / f"s{s}" / "table4.md").read_text()
    assert "(s1/report.md)" in (report / "report.md").read_text()
    table = list(csv.DictReader(io.StringIO((report / "seeds.csv").read_text())))
    got = {(t["table"], t["method"], t["row"], t["metric"]): t for t in table}
    assert len(got) == len(table) == 2 * 9 + 4 * 2 * 12  # Table 2: 2 variants; Table 4: 4 clouds x 2 IoU sets

    def check(key, per_seed):
        t = got[key]
        assert [float(t["seed0"]), float(t["seed1"])] == pytest.approx(per_seed, rel=1e-5, abs=1e-9)
        assert float(t["mean"]) == pytest.approx(statistics.mean(per_seed), rel=1e-5, abs=1e-9)
        assert float(t["std"]) == pytest.approx(statistics.stdev(per_seed), rel=1e-5, abs=1e-9)

    def art(name: str, file: str) -> dict:
        return json.loads((Path(stages[name]["path"]) / file).read_text())

    for v in ("baseline", "foresee"):
        for region in ("fg", "bg", "global"):
            check(("Table 2", "depth", v, f"{region} absRel"),
                  [art(f"depth-eval/{v}/s{s}", "depth_metrics.json")["pooled"][region]["absrel"] for s in (0, 1)])
    for c in ("lidar", "oracle", "baseline", "foresee"):
        for iou, file in (("0.7", "eval.json"), ("0.5", "eval_loose.json")):
            check(("Table 4", "F-PN", c, f"AP_3D IoU {iou} R40 moderate"),
                  [art(f"eval/fpointnet/{c}/s{s}", file)["Car"]["3d"]["R40"][1] for s in (0, 1)])
    diffs = list(csv.DictReader(io.StringIO((report / "seeds_diff.csv").read_text())))
    assert len(diffs) == 9 + 2 * 12
    for d in diffs:
        vals = [float(d["diff_seed0"]), float(d["diff_seed1"])]
        if any(math.isnan(v) for v in vals):  # a per-object column of a render without objects in its bin
            assert d["verdict"].startswith("undefined") and d["metric"].startswith(("per-object", "object-surface"))
            continue
        bound = 2 * statistics.stdev(vals) / math.sqrt(2)
        assert d["verdict"] == ("exceeds the spread" if abs(statistics.mean(vals)) > bound else "within the spread")
