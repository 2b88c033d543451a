"""The one-seed report's depth section: beside Table 2, the object-surface region and the
per-object table of every depth model (what the boxes are built from; docs/depth-power.md)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def _depth_eval_artifact(root: Path, folder: Path, factor: float) -> SimpleNamespace:
    """A depth-eval artifact of a model that predicts the ground truth x ``factor``."""
    from depth.metrics import evaluate_depth_dir
    from kitti import KittiRoot, write_depth_npz

    kr = KittiRoot(root)
    ids = kr.split("val")
    for fid in ids:
        write_depth_npz(folder / "maps" / f"{fid}.npz", (kr.depth(fid).astype(np.float64) * factor).astype(np.float32))
    res = evaluate_depth_dir(root, ids, folder / "maps")
    (folder / "depth_metrics.json").write_text(json.dumps(res.to_json()))
    return SimpleNamespace(path=folder)


def test_report_lists_each_models_objects_with_their_own_error(tiny_root, tmp_path):
    from pipeline.run import _table2

    root = tiny_root
    arts = {"depth-eval/baseline": _depth_eval_artifact(root, tmp_path / "b", 1.10),
            "depth-eval/foresee-obj": _depth_eval_artifact(root, tmp_path / "o", 0.95)}
    md = _table2(SimpleNamespace(), arts, tmp_path / "report")
    objects = (tmp_path / "report" / "objects.md").read_text()
    assert objects in md and md.index("| baseline (measured) |") < md.index("#### The objects")
    lines = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")[3:-1]
             for line in objects.splitlines() if line.startswith("| baseline |") or line.startswith("| foresee-obj |")}
    # every pixel is off by the factor, so every object's median relative error is |factor - 1|
    # and the surface region's absRel too
    assert int(lines[("baseline", "all")][0]) == int(lines[("foresee-obj", "all")][0]) > 0
    for name, f in (("baseline", 1.10), ("foresee-obj", 0.95)):
        n, mean_rel, median_rel = lines[(name, "all")][:3]
        assert float(mean_rel) == pytest.approx(abs(f - 1), abs=1e-3)
        assert float(median_rel) == pytest.approx(abs(f - 1), abs=1e-3)
        surface = [line for line in objects.splitlines() if line.startswith(f"| {name} | ") and " / " in line][0]
        assert float(surface.split("|")[2].split("/")[0]) == pytest.approx(abs(f - 1), abs=1e-3)
    signed = float(lines[("foresee-obj", "all")][-1])
    assert signed < 0 < float(lines[("baseline", "all")][-1])  # 0.95 places objects too near
    assert "diagnosis" not in objects  # no dominant-bin maps were inferred


def test_report_without_per_object_figures_has_table_2_only(tiny_root, tmp_path):
    from pipeline.run import _table2

    root = tiny_root
    art = _depth_eval_artifact(root, tmp_path / "b", 1.10)
    d = json.loads((art.path / "depth_metrics.json").read_text())
    d.pop("objects"), d.pop("surface", None)
    (art.path / "depth_metrics.json").write_text(json.dumps(d))
    md = _table2(SimpleNamespace(), {"depth-eval/baseline": art}, tmp_path / "report")
    assert "| baseline (measured) | 0.100 / " in md
    assert "objects" not in md and not (tmp_path / "report" / "objects.md").exists()
