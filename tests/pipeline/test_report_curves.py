"""The run report links each training artifact's loss curve and per-step log."""

from __future__ import annotations

from pipeline.cache import Artifact
from pipeline.run import _training_curves_md


def test_report_links_the_training_curves_that_exist(tmp_path):
    work = tmp_path / "work"
    arts = {}
    for name, stage, has_curve in (("depth-train-foresee", "depth-train", True),
                                   ("detect-train-fpointnet-lidar", "detect-train", True),
                                   ("depth-infer-foresee", "depth-infer", False),
                                   ("detect2d-train", "detect2d-train", False)):  # an artifact without one
        path = work / stage / "k"
        path.mkdir(parents=True, exist_ok=True)
        if has_curve:
            (path / "train_loss.png").write_bytes(b"png")
        arts[name] = Artifact(stage, "k", path, {}, cached=True)
    md = _training_curves_md(arts, work / "report")
    assert md.splitlines()[2:] == [
        "- depth-train-foresee: [loss curve](../depth-train/k/train_loss.png), [per-step log](../depth-train/k/train_log.csv)",
        "- detect-train-fpointnet-lidar: [loss curve](../detect-train/k/train_loss.png), "
        "[per-step log](../detect-train/k/train_log.csv)"]
    assert _training_curves_md({}, work / "report") == ""
