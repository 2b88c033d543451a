"""The opt-in ``foresee-obj`` cloud of the chain (object-surface foreground; docs/pipeline.md).

Fast: its nodes and their deps; every node the chain had without it keeps its key (the cache of a
run without it stays valid when it is added); the seed tables of known depth maps through the
chain's depth evaluation: the per-object columns of Table 2 and the differences ForeSeE-obj −
baseline / − ForeSeE. Slow: a tiny ``foresee run --seeds 2`` with it, whose depth models are
trained for one step and whose depth inference is replaced by the ground truth scaled by a known
factor per (variant, seed), so that every per-object figure is known by hand (a depth ``f · g`` is
off by ``f − 1`` relative on every pixel and every object); ``foresee export --depth foresee-obj``
and ``foresee predict`` with its bundle."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from pipeline.cache import ArtifactCache
from pipeline.executor import plan
from pipeline.stages import CLOUDS, DEFAULT_CLOUDS, RunConfig, build_chain

WITH_OBJ = ("lidar", "oracle", "baseline", "foresee", "foresee-obj")
#: the seven nodes a (seed of a) run gains with the cloud, by kind -> deps (role -> node), seed suffix ``{s}``
OBJ_NODES = {
    "depth-train/foresee-obj{s}": {},
    "depth-infer/foresee-obj{s}": {"checkpoint": "depth-train/foresee-obj{s}"},
    "pseudolidar/foresee-obj{s}": {"depth": "depth-infer/foresee-obj{s}"},
    "depth-eval/foresee-obj{s}": {"depth": "depth-infer/foresee-obj{s}"},
    "detect-train/fpointnet/foresee-obj{s}": {"points": "pseudolidar/foresee-obj{s}"},
    "detect-infer/fpointnet/foresee-obj{s}": {"model": "detect-train/fpointnet/foresee-obj{s}",
                                              "points": "pseudolidar/foresee-obj{s}", "boxes2d": "detect2d-infer"},
    "eval/fpointnet/foresee-obj{s}": {"results": "detect-infer/fpointnet/foresee-obj{s}"},
}


def _keys(specs) -> dict[str, str]:
    return {p.spec.name: f"{p.spec.stage}/{p.key}" for p in plan(specs, ArtifactCache(Path("/nonexistent-obj")))}


def test_foresee_obj_is_opt_in():
    assert "foresee-obj" in CLOUDS and "foresee-obj" not in DEFAULT_CLOUDS
    assert DEFAULT_CLOUDS == ("lidar", "oracle", "baseline", "foresee")
    assert RunConfig(data_root=Path(".")).clouds == DEFAULT_CLOUDS


@pytest.mark.parametrize("seeds", [1, 2])
def test_foresee_obj_nodes_and_their_deps(tiny_root, seeds):
    cfg = RunConfig(data_root=tiny_root, clouds=WITH_OBJ, boxes2d="detector", seeds=seeds)
    specs = build_chain(cfg)
    without = {s.name for s in build_chain(RunConfig(data_root=tiny_root, boxes2d="detector", seeds=seeds))}
    by = {s.name: s for s in specs}
    suffixes = [""] if seeds == 1 else [f"/s{s}" for s in range(seeds)]
    expected = {name.format(s=sfx): {r: d.format(s=sfx) for r, d in deps.items()}
                for sfx in suffixes for name, deps in OBJ_NODES.items()}
    assert set(by) - without == set(expected)
    assert without <= set(by)
    for name, deps in expected.items():
        assert dict(by[name].node.deps) == deps, name
    order = [s.name for s in specs]  # topological: every dep before its node
    for s in specs:
        assert all(order.index(d) < order.index(s.name) for d in s.node.deps.values()), s.name
    for k, sfx in enumerate(suffixes):
        train = by[f"depth-train/foresee-obj{sfx}"].settings
        assert train.variant == "foresee-obj" and train.fg_source == "objects" and train.n_decoders == 2
        assert train.seed == (0 if seeds == 1 else k)
        assert by[f"depth-infer/foresee-obj{sfx}"].settings == {"merge": "max", "variant": "foresee-obj"}
        assert by[f"detect-train/fpointnet/foresee-obj{sfx}"].node.tags == {
            "cloud": "foresee-obj", "detector": "fpointnet", **({"seed": str(k)} if seeds > 1 else {})}


@pytest.mark.parametrize("seeds,boxes2d,detector,overrides", [
    (1, "detector", "fpointnet", {}),                                                  # make demo
    (3, "detector", "fpointnet", {"depth": {"max_steps": 1500}, "detect2d": {"max_steps": 1200}}),  # reproduce
    (2, "simulated", "fpointnet,avod", {"depth": {"max_steps": 3}}),
])
def test_adding_foresee_obj_keeps_every_other_key(tiny_root, seeds, boxes2d, detector, overrides):
    """The cache of a run without the cloud is a hit for every node of the run with it."""
    common = dict(data_root=tiny_root, boxes2d=boxes2d, detector=detector, overrides=overrides, seeds=seeds)
    before = _keys(build_chain(RunConfig(**common)))
    after = _keys(build_chain(RunConfig(**common, clouds=WITH_OBJ)))
    assert {n: after[n] for n in before} == before
    new = set(after) - set(before)
    assert new and all("foresee-obj" in n for n in new)
    assert len(set(after.values())) == len(after)  # foresee-obj's artifacts are its own


def test_cli_clouds_default_and_foresee_obj(tiny_root, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    args = ["run", "--data", str(tiny_root), "--workdir", str(tmp_path / "w"), "--boxes2d", "simulated", "--dry-run"]
    default = CliRunner().invoke(main, args)
    assert default.exit_code == 0 and "foresee-obj" not in default.output
    listed = CliRunner().invoke(main, args + ["--clouds", ",".join(DEFAULT_CLOUDS)])
    assert listed.output == default.output
    obj = CliRunner().invoke(main, args + ["--clouds", ",".join(WITH_OBJ)])
    assert obj.exit_code == 0, obj.output
    lines = {ln.split()[0]: ln.split()[1] for ln in obj.output.splitlines()[1:]}
    assert {ln.split()[0]: ln.split()[1] for ln in default.output.splitlines()[1:]}.items() <= lines.items()
    assert {n for n in lines if "foresee-obj" in n} == {n.format(s="") for n in OBJ_NODES
                                                       if "boxes2d" not in n}
    bad = CliRunner().invoke(main, args + ["--clouds", "lidar,foresee-objects"])
    assert bad.exit_code == 2 and "foresee-objects" in bad.output


# ---------------------------------------------------------------------------- the seed tables
#: depth = ground truth x factor, per (variant, seed) (the fake inference below).
FACTOR = {("baseline", 0): 1.10, ("baseline", 1): 1.12, ("foresee", 0): 1.06, ("foresee", 1): 1.09,
          ("foresee-obj", 0): 1.02, ("foresee-obj", 1): 1.04}
VARIANTS = ("baseline", "foresee", "foresee-obj")
PAIRS = {"foresee-baseline": ("foresee", "baseline"), "foresee-obj-baseline": ("foresee-obj", "baseline"),
         "foresee-obj-foresee": ("foresee-obj", "foresee")}


def _write_scaled_ground_truth(root: Path, frame_ids, out_dir: Path, f: float) -> None:
    from kitti import KittiRoot, write_depth_npz

    kr = KittiRoot(root)
    for fid in frame_ids:
        write_depth_npz(Path(out_dir) / f"{fid}.npz", (kr.depth(fid).astype(np.float64) * f).astype(np.float32))


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _check_object_columns(table2: dict, depth_json, seeds=(0, 1)) -> None:
    """``table2``: (variant, metric) -> seeds.csv row; ``depth_json(variant, seed)``: the
    depth_metrics.json of that depth model. Each per-object column equals the figure recomputed
    here from the per-object medians the json lists, and the hand value of the factor."""
    for v in VARIANTS:
        for s in seeds:
            j = depth_json(v, s)
            o = j["objects"]["objects"]
            gt, pred, dist = (np.asarray(o[k], dtype=np.float64) for k in ("gt_median_m", "pred_median_m", "distance_m"))
            rel_all = float(np.mean(np.abs(pred - gt) / gt))
            far = (dist >= 30.0) & (dist < 40.0)
            assert far.sum() >= 2 and len(gt) >= 10  # the tiny render has objects at 30-40 m
            signed_far = float(np.mean(pred[far] - gt[far]))
            f = FACTOR[(v, s)]
            # the factor's figures, by hand: f·g is off by f − 1 on every pixel and every object
            assert rel_all == pytest.approx(f - 1, abs=1e-5)
            assert signed_far == pytest.approx((f - 1) * float(np.mean(gt[far])), rel=1e-4)
            assert j["surface"]["absrel"] == pytest.approx(f - 1, abs=1e-5)
            for metric, want in (("object-surface absRel", j["surface"]["absrel"]),
                                 ("per-object mean rel. error (all)", rel_all),
                                 ("per-object mean signed error 30-40 m (m)", signed_far)):
                assert float(table2[(v, metric)][f"seed{s}"]) == pytest.approx(want, rel=1e-5), (v, s, metric)
        mean_rel = [FACTOR[(v, s)] - 1 for s in seeds]
        row = table2[(v, "per-object mean rel. error (all)")]
        assert float(row["mean"]) == pytest.approx(statistics.mean(mean_rel), abs=1e-5)
        assert float(row["std"]) == pytest.approx(statistics.stdev(mean_rel), abs=1e-5)


def _check_object_differences(diffs: list[dict], seeds=(0, 1)) -> None:
    """The per-object error's paired differences of every pair: (f_a − 1) − (f_b − 1) per seed."""
    by = {(d["row"], d["table"], d["metric"]): d for d in diffs}
    for name, (a, b) in PAIRS.items():
        d = by[(name, "Table 2", "per-object mean rel. error (all)")]
        want = [FACTOR[(a, s)] - FACTOR[(b, s)] for s in seeds]
        assert [float(d[f"diff_seed{s}"]) for s in seeds] == pytest.approx(want, abs=1e-5)
        assert float(d["mean"]) == pytest.approx(statistics.mean(want), abs=1e-5)
        bound = 2 * statistics.stdev(want) / len(seeds) ** 0.5
        assert float(d["two_sem"]) == pytest.approx(bound, abs=1e-5)
        assert d["verdict"] == ("exceeds the spread" if abs(statistics.mean(want)) > bound else "within the spread")


def test_seed_tables_of_foresee_obj_from_the_chains_depth_evaluation(tiny_root, tmp_path):
    """The chain's depth-eval (``pipeline.stages.evaluate_depth``) of known depth maps, through the
    seed tables: the per-object columns of every variant, and the three paired differences."""
    from kitti import KittiRoot
    from pipeline.report import table2_seed_rows, table4_seed_rows, write_seeds
    from pipeline.stages import evaluate_depth

    kr = KittiRoot(tiny_root)
    val = kr.split("val")
    depth = {}
    for v in VARIANTS:
        for s in (0, 1):
            maps, out = tmp_path / v / str(s) / "maps", tmp_path / v / str(s) / "eval"
            _write_scaled_ground_truth(tiny_root, val, maps, FACTOR[(v, s)])
            evaluate_depth(kr, val, maps, out)
            depth[(v, s)] = json.loads((out / "depth_metrics.json").read_text())
    # AP_3D R40 moderate 10 + 5·(f − 1)·100 per cloud and seed, every other AP 0
    ap = {k: 10.0 + 500.0 * (f - 1) for k, f in FACTOR.items()}
    rows = table2_seed_rows({v: [depth[(v, s)] for s in (0, 1)] for v in VARIANTS})
    for v in VARIANTS:
        rows += table4_seed_rows("F-PN", v, "0.7", [{"Car": {"3d": {"R40": [0.0, ap[(v, s)], 0.0]}}} for s in (0, 1)])
    md = write_seeds(rows, [0, 1], tmp_path, title="t")
    table = _csv(tmp_path / "seeds.csv")
    assert [t["metric"] for t in table if t["table"] == "Table 2" and t["row"] == "foresee-obj"] == [
        "fg absRel", "fg SILog", "bg absRel", "bg SILog", "global absRel", "global SILog",
        "object-surface absRel", "per-object mean rel. error (all)", "per-object mean signed error 30-40 m (m)"]
    _check_object_columns({(t["row"], t["metric"]): t for t in table if t["table"] == "Table 2"},
                          lambda v, s: depth[(v, s)])
    diffs = _csv(tmp_path / "seeds_diff.csv")
    assert [d["row"] for d in diffs] == [p for p in PAIRS for _ in range(9 + 12)]
    _check_object_differences(diffs)
    by = {(d["row"], d["metric"]): d for d in diffs}
    for name, (a, b) in PAIRS.items():
        d = by[(name, "AP_3D IoU 0.7 R40 moderate")]
        assert [float(d["diff_seed0"]), float(d["diff_seed1"])] == pytest.approx(
            [500.0 * (FACTOR[(a, s)] - FACTOR[(b, s)]) for s in (0, 1)], abs=1e-6)
    for heading in ("ForeSeE − baseline", "ForeSeE-obj − baseline", "ForeSeE-obj − ForeSeE"):
        assert f"#### {heading} against the seed spread" in md
    assert md.count("Rule: ") == 1
    assert md.count("\n| Table") == len(rows) + len(diffs)


# ---------------------------------------------------------------------------- a tiny run with it
def _scaled_ground_truth(data_root, frame_ids, checkpoint, out_dir, *, merge="max", **_):
    """Stands in for depth.infer.infer_depth: the ground truth x FACTOR of the checkpoint's model."""
    from depth.model import read_checkpoint

    settings = read_checkpoint(Path(checkpoint))["settings"]
    _write_scaled_ground_truth(Path(data_root), frame_ids, Path(out_dir), FACTOR[(settings.variant, settings.seed)])
    return {"frames": len(frame_ids), "variant": settings.variant, "merge": merge}


@pytest.fixture(scope="module")
def obj_run(tiny_root, tmp_path_factory):
    from click.testing import CliRunner

    import depth.infer
    from pipeline.cli import main

    work = tmp_path_factory.mktemp("obj") / "work"
    mp = pytest.MonkeyPatch()
    mp.setattr(depth.infer, "infer_depth", _scaled_ground_truth)
    try:
        res = CliRunner().invoke(main, ["run", "--data", str(tiny_root), "--workdir", str(work), "--seeds", "2",
                                        "--clouds", ",".join(VARIANTS), "--boxes2d", "simulated",
                                        "--set", "depth.max_steps=1", "--set", "depth.batch_size=1",
                                        "--set", "depth.crop_hw=[32,64]", "--set", "depth.encoder_weights=none",
                                        "--set", "detect.epochs=1"])
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    return work / "report"


def _art(report: Path, name: str, file: str) -> dict:
    stages = json.loads((report / "run_summary.json").read_text())["stages"]
    return json.loads((Path(stages[name]["path"]) / file).read_text())


@pytest.mark.slow
def test_tiny_run_writes_foresee_obj_rows_everywhere(obj_run):
    from pipeline.figures import CLOUD_RGB
    from pseudolidar.html_view import figure_from_html

    label = "F-PN, ForeSeE-obj-PL (extension, not in the paper)"
    for s in (0, 1):
        seed = obj_run / f"s{s}"
        assert f"| {label} | R40 |" in (seed / "table4.md").read_text()
        assert f"| {label} | R40 |" in (seed / "table4_iou05.md").read_text()
        rows = [r for r in _csv(seed / "table4.csv") if r["cloud"] == "foresee-obj"]
        assert [r["recall"] for r in rows] == ["R11", "R40"] and rows[0]["method"] == label
        ev = _art(obj_run, f"eval/fpointnet/foresee-obj/s{s}", "eval.json")
        assert float(rows[1]["3d_moderate"]) == pytest.approx(ev["Car"]["3d"]["R40"][1], abs=1e-4)
        assert json.loads((seed / "evals.json").read_text())["fpointnet"]["foresee-obj"]["Car"] == ev["Car"]
        assert "foresee-obj" in json.loads((seed / "evals_iou05.json").read_text())["fpointnet"]
        # Table 2: ground truth x 1.02 (seed 0) / 1.04 (seed 1) is off by 0.02 / 0.04 on every pixel
        f = FACTOR[("foresee-obj", s)]
        assert f"| foresee-obj (measured) | {f - 1:.3f} / " in (seed / "table2.md").read_text()
        assert "foresee-obj" in (seed / "pr_car.csv").read_text()
        # the pictures: a Fig. 6 panel and a 3D-page layer in its own colour
        pages = sorted(seed.glob("view3d_*.html"))
        assert pages and len(list(seed.glob("fig6_*.png"))) == len(pages)
        fig = figure_from_html(pages[0].read_text())
        layers = {t["meta"]["layer"]: t for t in fig["data"] if t["meta"]["kind"] == "cloud"}
        assert list(layers) == ["lidar", "baseline", "foresee", "foresee-obj"]
        r, g, b = CLOUD_RGB["foresee-obj"]
        assert layers["foresee-obj"]["marker"]["color"] == f"rgb({r},{g},{b})"
        assert len({CLOUD_RGB[c] for c in ("lidar", "oracle", "baseline", "foresee", "foresee-obj")}) == 5
        assert "fpointnet on foresee-obj" in {t["meta"]["layer"] for t in fig["data"] if t["meta"]["kind"] == "boxes"}
    md = (obj_run / "seeds.md").read_text()
    for heading in ("ForeSeE − baseline", "ForeSeE-obj − baseline", "ForeSeE-obj − ForeSeE"):
        assert f"#### {heading} against the seed spread" in md
    assert md.count("Rule: ") == 1


@pytest.mark.slow
def test_tiny_run_per_object_columns_and_differences(obj_run):
    """seeds.csv / seeds_diff.csv of the run: each variant's per-object columns are its own
    depth_metrics.json's figures; the three differences pair each seed's evaluations."""
    table2 = {(t["row"], t["metric"]): t for t in _csv(obj_run / "seeds.csv") if t["table"] == "Table 2"}
    _check_object_columns(table2, lambda v, s: _art(obj_run, f"depth-eval/{v}/s{s}", "depth_metrics.json"))
    diffs = _csv(obj_run / "seeds_diff.csv")
    assert [d["row"] for d in diffs] == [p for p in PAIRS for _ in range(9 + 2 * 12)]
    _check_object_differences(diffs)
    by = {(d["row"], d["table"], d["metric"]): d for d in diffs}
    for name, (a, b) in PAIRS.items():  # a Table 4 line: the two clouds' own evaluations, seed by seed
        d = by[(name, "Table 4", "AP_3D IoU 0.5 R40 moderate")]
        want = [_art(obj_run, f"eval/fpointnet/{a}/s{s}", "eval_loose.json")["Car"]["3d"]["R40"][1]
                - _art(obj_run, f"eval/fpointnet/{b}/s{s}", "eval_loose.json")["Car"]["3d"]["R40"][1] for s in (0, 1)]
        assert [float(d["diff_seed0"]), float(d["diff_seed1"])] == pytest.approx(want, abs=1e-4)


# ---------------------------------------------------------------------------- export and predict
@pytest.mark.slow
def test_export_and_predict_with_foresee_obj(tmp_path):
    """``foresee export --depth foresee-obj``: the bundle holds the run's foresee-obj depth model and
    the 3D detector trained on its cloud; ``foresee predict`` with it gives the run's detections."""
    import torch
    from click.testing import CliRunner

    from pipeline.bundle import load_bundle
    from pipeline.cli import main
    from pipeline.run import run_chain
    from synth import render_dataset
    from synth.settings import SynthSettings

    root = tmp_path / "tiny"  # the render, settings and depth range of tests/pipeline/test_predict.py
    render_dataset(root, SynthSettings(frames_train=12, frames_val=3, image_scale=0.5, seed=7), workers=1,
                   progress=False)
    d2d = {"encoder": "test_resnet", "encoder_weights": "none", "max_steps": 2, "batch_size": 2, "num_threads": 1,
           "score_thresh": 0.01, "detections_per_img": 20}
    cfg = RunConfig(data_root=root, clouds=("foresee-obj",), boxes2d="detector",
                    overrides={"detect": {"epochs": 1, "min_box_height_px": 0.0, "min_points_detection": 1},
                               "detect2d": d2d, "depth": {"max_steps": 2, "depth_max_m": 212.0}})
    before = torch.get_num_threads()
    stages = run_chain(cfg, tmp_path / "work")["stages"]
    torch.set_num_threads(before)
    out = tmp_path / "obj.foresee"
    res = CliRunner().invoke(main, ["export", "--workdir", str(tmp_path / "work"), "--out", str(out),
                                    "--depth", "foresee-obj"])
    assert res.exit_code == 0, res.output
    b = load_bundle(out)
    assert b.variant == "foresee-obj" and b.detector == "fpointnet"
    ck = torch.load(Path(stages["depth-train/foresee-obj"]["path"]) / "checkpoint.pt", weights_only=False)
    assert set(b.weights["depth"]) == set(ck["model"])
    assert all(torch.equal(b.weights["depth"][k], v) for k, v in ck["model"].items())
    ids = tmp_path / "ids.txt"
    ids.write_text((root / "ImageSets" / "val.txt").read_text())
    res = CliRunner().invoke(main, ["predict", "--models", str(out), "--data", str(root), "--ids", str(ids),
                                    "--out", str(tmp_path / "pred"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "pred" / "summary.json").read_text())["variant"] == "foresee-obj"
    run_dir = Path(stages["detect-infer/fpointnet/foresee-obj"]["path"]) / "data"
    files = sorted(run_dir.glob("*.txt"))
    assert files and any(f.read_text() for f in files)
    for f in files:
        assert (tmp_path / "pred" / "data" / f.name).read_text() == f.read_text(), f.name
