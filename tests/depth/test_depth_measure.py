"""depth.measure: the accuracy-per-CPU-second measurements (cost part; the accuracy part is train +
infer + evaluate, each tested on its own)."""

from __future__ import annotations

import json

from depth.model import DepthNet, count_parameters
from depth.measure import _settings, main


def test_power_step_writes_one_json_line_per_case_for_the_settings_network(tmp_path, capsys):
    tiny = {"encoder": "test_resnet", "neck_channels": 16, "lateral_channels": [8, 8, 8, 8],
            "decoder_channels": [16, 8, 8, 8, 8], "crop_hw": [32, 64], "resize_factor": 0.1, "batch_size": 2}
    out = tmp_path / "step.jsonl"
    main(["step", "--jsonl", str(out), "--case", "a", "baseline", json.dumps(tiny),
          "--case", "b", "foresee", json.dumps(tiny)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["tag"], r["variant"]) for r in rows] == [("a", "baseline"), ("b", "foresee")]
    for row in rows:
        net = DepthNet(_settings("cpu-small", row["variant"], row["overrides"]))
        assert row["params"] == count_parameters(net)
        assert row["cpu_s_per_step"] > 0 and row["cpu_s_per_infer_frame"] > 0
    assert rows[0]["overrides"]["encoder_weights"] == "none"
    assert capsys.readouterr().out.count("\n") == 2


def test_power_floor_of_a_round_trip_through_a_smaller_size(tmp_path, capsys):
    """The floor is what resizing alone costs: nothing at the full size, nothing on a map that is
    constant, and on a step edge exactly the pixels that the 1/2-size map blurs."""
    import numpy as np

    from depth.measure import resolution_floor
    from kitti import KittiRoot
    from kitti.depth_io import write_depth_png
    from depth_fixtures import write_synthetic_root

    write_synthetic_root(tmp_path / "d", n_frames=4)
    root = KittiRoot(tmp_path / "d")
    ids = root.split("val")
    zero = resolution_floor(tmp_path / "d", 1.0)["absrel"]
    assert zero == {"fg": 0.0, "bg": 0.0, "global": 0.0}
    h, w = root.depth(ids[0]).shape
    for fid in ids:  # constant 20 m: exact through any size
        write_depth_png(root.root / "training" / "depth_2" / f"{fid}.png", np.full((h, w), 20.0, np.float32))
    assert resolution_floor(tmp_path / "d", 0.5)["absrel"]["global"] == 0.0
    # a vertical step 10 m | 40 m at an even column: the 1/2-size map keeps the two values, and the
    # log-bilinear upsampling mixes them on the one column either side of the step:
    # 10·4^(1/4) and 40·4^(-1/4), relative errors 4^(1/4) − 1 and 1 − 4^(-1/4)
    step = np.full((h, w), 10.0, np.float32)
    c = (w // 4) * 2
    step[:, c:] = 40.0
    for fid in ids:
        write_depth_png(root.root / "training" / "depth_2" / f"{fid}.png", step)
    want = ((4 ** 0.25 - 1) + (1 - 4 ** -0.25)) / w  # the two columns' errors averaged over the row
    assert resolution_floor(tmp_path / "d", 0.5)["absrel"]["global"] == round(want, 4)  # reported to 4 places
    main(["floor", "--data", str(tmp_path / "d"), "--factors", "1.0"])
    assert json.loads(capsys.readouterr().out)["absrel"]["global"] == 0.0


def test_accuracy_reuse_evaluates_a_finished_training_again_and_refuses_another(synthetic_root, tmp_path, capsys):
    import pytest

    tiny = {"encoder": "test_resnet", "encoder_weights": "none", "neck_channels": 16,
            "lateral_channels": [8, 8, 8, 8], "decoder_channels": [16, 8, 8, 8, 8], "crop_hw": [32, 64],
            "resize_factor": 1.0, "scales": [1.0], "batch_size": 2, "max_steps": 1}
    args = ["accuracy", "--data", str(synthetic_root), "--work", str(tmp_path / "w")]
    main(args + ["--case", "t", "foresee-obj", json.dumps(tiny)])
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    main(args + ["--reuse", "--case", "t", "foresee-obj", json.dumps(tiny)])
    again = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert not first["reused"] and first["train_cpu_s"] > 0 and (tmp_path / "w" / "t" / "dominant").is_dir()
    assert again["reused"] and again["train_cpu_s"] is None and again["absrel"] == first["absrel"]
    with pytest.raises(SystemExit) as e:
        main(args + ["--reuse", "--case", "t", "foresee-obj", json.dumps({**tiny, "max_steps": 2})])
    assert e.value.code == 2 and "not a training of case 't' (other settings)" in capsys.readouterr().err


def test_accuracy_snapshots_and_resume_give_the_uninterrupted_training(synthetic_root, tmp_path, capsys):
    """``--snapshots``: the checkpoint kept after step 2 of a 4-step training is that training's whole
    state at step 2 (resuming from it ends on the same weights, bit for bit), and its row is the
    evaluation of that checkpoint. ``--reuse`` on an unfinished checkpoint resumes it to the same
    weights as the uninterrupted run."""
    import shutil

    import torch

    from depth.infer import infer_depth
    from depth.metrics import evaluate_depth_dir
    from depth.model import read_checkpoint
    from depth.train import snapshot_path
    from kitti import KittiRoot

    tiny = {"encoder": "test_resnet", "encoder_weights": "none", "neck_channels": 16,
            "lateral_channels": [8, 8, 8, 8], "decoder_channels": [16, 8, 8, 8, 8], "crop_hw": [32, 64],
            "resize_factor": 1.0, "scales": [1.0], "batch_size": 2, "max_steps": 4, "checkpoint_every": 1}
    args = ["accuracy", "--data", str(synthetic_root), "--work", str(tmp_path / "w")]
    main(args + ["--snapshots", "2", "--case", "t", "foresee", json.dumps(tiny)])
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    train = tmp_path / "w" / "t" / "train"
    snap = read_checkpoint(snapshot_path(train, 2))
    final = read_checkpoint(train / "checkpoint.pt")
    assert snap["step"] == 2 and final["step"] == 4 and row["steps"] == 4 and row["resumed_from"] is None
    assert [s["steps"] for s in row["snapshots"]] == [2]

    val = KittiRoot(synthetic_root).split("val")
    infer_depth(synthetic_root, val, snapshot_path(train, 2), tmp_path / "ref", progress=False)
    ref = evaluate_depth_dir(synthetic_root, val, tmp_path / "ref")
    assert row["snapshots"][0]["absrel"]["fg"] == round(ref.pooled["fg"]["absrel"], 4)
    assert row["snapshots"][0]["absrel"] != row["absrel"]

    # a training stopped after step 2 (its checkpoint is the step-2 state) resumes to the same end
    (tmp_path / "w2" / "t" / "train").mkdir(parents=True)
    shutil.copy(snapshot_path(train, 2), tmp_path / "w2" / "t" / "train" / "checkpoint.pt")
    main(["accuracy", "--data", str(synthetic_root), "--work", str(tmp_path / "w2"), "--reuse",
          "--case", "t", "foresee", json.dumps(tiny)])
    resumed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert resumed["resumed_from"] == 2 and not resumed["reused"] and resumed["absrel"] == row["absrel"]
    again = read_checkpoint(tmp_path / "w2" / "t" / "train" / "checkpoint.pt")
    assert again["step"] == 4
    for k, v in final["model"].items():
        assert torch.equal(v, again["model"][k]), k


def _curve_row(tag, variant, max_steps, points):
    """An ``accuracy`` row whose final model and snapshots carry the figures ``points[steps]`` =
    (fg, surface, bg, global, mean_rel, signed_all, signed_30_40, share_true); decoy bins around
    30-40 m and around "all" so that a wrong bin read gives another number."""
    def model(steps):
        fg, surf, bg, glob, rel, signed, s3040, share = points[steps]
        objects = [{"bin_m": "20-30", "objects": 3, "mean_rel": 9.0, "mean_signed_m": -99.0},
                   {"bin_m": "30-40", "objects": 2, "mean_rel": 8.0, "mean_signed_m": s3040},
                   {"bin_m": "40+", "objects": 1, "mean_rel": 7.0, "mean_signed_m": 77.0},
                   {"bin_m": "all", "objects": 6, "mean_rel": rel, "mean_signed_m": signed}]
        diagnosis = [{"bin_m": "30-40", "share_true": 0.99}, {"bin_m": "all", "share_true": share}]
        return {"steps": steps, "absrel": {"fg": fg, "bg": bg, "global": glob}, "absrel_surface": surf,
                "objects": objects, "diagnosis": diagnosis}
    *snaps, last = sorted(points)
    return {"tag": tag, "variant": variant, "overrides": {"max_steps": max_steps}, **model(last),
            "snapshots": [model(s) for s in snaps]}


def test_curve_points_table_and_figure_from_accuracy_rows(tmp_path, capsys):
    import cv2

    from depth.measure import CurvePoint, curve_points

    rows = [_curve_row("b", "baseline", 3000, {3000: (0.2, 0.21, 0.15, 0.16, 0.19, 5.04, 7.75, 0.3),
                                               500: (0.3, 0.31, 0.2, 0.21, 0.25, 1.0, 2.0, 0.2)}),
            _curve_row("o", "foresee-obj", 3000, {500: (0.18, 0.16, 0.19, 0.19, 0.193, -7.1, -5.6, 0.268),
                                                  3000: (0.12, 0.11, 0.15, 0.146, 0.114, 1.2, 2.7, 0.499)})]
    points = curve_points(rows)
    assert points[0] == CurvePoint("b", "baseline", 500, 3000, 0.3, 0.31, 0.2, 0.21, 0.25, 1.0, 2.0, 0.2)
    assert [(q.tag, q.steps) for q in points] == [("b", 500), ("b", 3000), ("o", 500), ("o", 3000)]
    assert points[1].signed_30_40_m == 7.75 and points[1].object_signed_m == 5.04 and points[1].share_true == 0.3
    f = tmp_path / "curve.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["curve", "--rows", str(f), "--png", str(tmp_path / "c.png")])
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "| baseline (b), 500 (mid-schedule) | 0.300 | 0.310 | 0.200 | 0.210 | 0.250 / +1.0 | +2.0 | 0.200 |"
    assert out[3] == "| baseline (b), 3000 | 0.200 | 0.210 | 0.150 | 0.160 | 0.190 / +5.0 | +7.8 | 0.300 |"
    assert out[4].startswith("| foresee-obj (o), 500 (mid-schedule) | 0.180 |") and len(out) == 6
    img = cv2.imread(str(tmp_path / "c.png"))
    assert img is not None and img.shape[1] > 2 * img.shape[0]
    assert not list(tmp_path.glob("*.tmp*"))


def test_curve_names_the_line_and_the_missing_bin(tmp_path, capsys):
    import pytest

    row = _curve_row("b", "baseline", 3000, {3000: (0.2, 0.21, 0.15, 0.16, 0.19, 5.0, 7.7, 0.3)})
    row["objects"] = [x for x in row["objects"] if x["bin_m"] != "30-40"]
    f = tmp_path / "curve.jsonl"
    f.write_text("\n" + json.dumps(row) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["curve", "--rows", str(f)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: {f}: case 'b', 3000 steps: no '30-40' distance bin in its rows\n"
    f.write_text(json.dumps(row)[:-1] + "\n")
    with pytest.raises(SystemExit):
        main(["curve", "--rows", str(f)])
    assert capsys.readouterr().err.startswith(f"error: {f}:1: not a JSON line")


def test_curve_figure_tells_two_cases_of_one_variant_apart(tmp_path, monkeypatch):
    import depth.stats
    from depth.measure import curve_points, plot_curve

    figs = []
    monkeypatch.setattr(depth.stats, "write_figure", lambda fig, png, dpi: figs.append(fig))
    pts = {500: (0.3, 0.31, 0.2, 0.21, 0.25, 1.0, 2.0, 0.2), 3000: (0.2, 0.21, 0.15, 0.16, 0.19, 5.0, 7.7, 0.3)}
    rows = [_curve_row("b6", "baseline", 6000, {**pts, 6000: pts[3000]}), _curve_row("b3", "baseline", 3000, pts),
            _curve_row("o", "foresee-obj", 3000, pts)]
    plot_curve(curve_points(rows), tmp_path / "c.png")
    lines = figs[0].axes[0].get_lines()
    assert [(ln.get_label(), ln.get_linestyle(), len(ln.get_xdata())) for ln in lines] == [
        ("baseline (b6)", "-", 3), ("baseline (b3)", "--", 2), ("foresee-obj", "-", 2)]
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()


def test_docs_curve_tables_are_the_rows_kept_beside_the_figure():
    """docs/depth-power.md's curve tables are the values of docs/img/depth_power_curve.jsonl (the rows
    that draw the figure): each table line's numbers, read back, equal the rows' points rounded."""
    import re
    from pathlib import Path

    from depth.measure import curve_points

    repo = Path(__file__).resolve().parents[2]
    rows = [json.loads(line) for line in (repo / "docs/img/depth_power_curve.jsonl").read_text().splitlines()]
    points = curve_points(rows)
    assert [(q.tag, q.steps) for q in points if q.tag.endswith("c6000")] == [
        (t, s) for t in ("base_c6000", "fsee_c6000", "fobj_c6000") for s in (500, 1500, 3000, 6000)]
    names = {"baseline": "baseline", "foresee": "ForeSeE", "foresee-obj": "`foresee-obj`"}
    doc = (repo / "docs/depth-power.md").read_text()
    sections = {"c3000": doc.split("### The depth-power curve")[1].split("![the depth-power curve]")[0],
                "c6000": doc.split("#### 6000 steps: the curve's last point")[1].split("From 3000 to 6000")[0]}
    for q in points:
        text = sections[q.tag.split("_")[1]]
        mid = " (mid-schedule)" if q.steps < q.max_steps else ""
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {names[q.variant]}, {q.steps}{mid} |"))
        numbers = [float(x.replace("−", "-")) for x in re.findall(r"[−+-]?\d+\.\d+", line)]
        want = [q.fg_absrel, q.surface_absrel, q.bg_absrel, q.global_absrel, q.object_mean_rel,
                q.object_signed_m, q.signed_30_40_m, q.share_true]
        assert numbers == [round(v, 3 if i not in (5, 6) else 1) for i, v in enumerate(want)], line
