"""EvalSettings / IouThresholds / presets."""

from __future__ import annotations

import pytest

from kitti_eval import EvalSettings, IouThresholds, preset


def test_preset_paper_is_devkit_protocol():
    s = preset("paper")
    assert s == preset("cpu-small") == EvalSettings()
    assert s.classes == ("Car", "Pedestrian", "Cyclist") and s.recall_points == (11, 40)
    assert [s.iou.for_metric(m, "Car") for m in ("2d", "bev", "3d", "aos")] == [0.7] * 4
    assert s.iou.for_metric("3d", "Pedestrian") == 0.5


def test_preset_loose_changes_only_bev_and_3d():
    iou = preset("loose").iou
    assert iou.image == (0.7, 0.5, 0.5)
    assert iou.bev == iou.box3d == (0.5, 0.25, 0.25)


@pytest.mark.parametrize("kwargs", [{"classes": ("Car", "Van")}, {"metrics": ("iou",)},
                                    {"recall_points": (41,)}, {"classes": ()},
                                    {"metrics": ("bev", "bev")}])
def test_eval_settings_rejects_unknown_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EvalSettings(**kwargs)


def test_iou_thresholds_rejects_bad_values():
    with pytest.raises(ValueError, match="bev"):
        IouThresholds(bev=(0.7, 0.5))
    with pytest.raises(ValueError, match="box3d"):
        IouThresholds(box3d=(1.2, 0.5, 0.5))
    with pytest.raises(ValueError, match="unknown preset"):
        preset("fast")
