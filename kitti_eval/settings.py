"""Settings of the KITTI evaluation: classes, metrics, recall settings and IoU thresholds.

The defaults are the official devkit's (evaluate_object.cpp): Car 0.7, Pedestrian 0.5, Cyclist 0.5
for 2D, BEV and 3D; AP over 11 (with recall 0) and 40 (1/40 ... 1) recall positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from kitti.classes import EVAL_CLASSES

#: Metrics the evaluator computes: image 2D boxes, bird's-eye view, 3D, orientation similarity.
METRICS: tuple[str, ...] = ("2d", "bev", "3d", "aos")
#: Recall settings: 11 points (pre 8 Oct 2019 KITTI server) and 40 points (after).
RECALL_POINTS: tuple[int, ...] = (11, 40)


@dataclass(frozen=True)
class IouThresholds:
    """Minimum overlap per metric, one value per class in ``kitti.EVAL_CLASSES`` order
    (Car, Pedestrian, Cyclist). A detection matches only with overlap **strictly above** it.
    AOS uses the 2D thresholds.
    """

    image: tuple[float, float, float] = (0.7, 0.5, 0.5)
    bev: tuple[float, float, float] = (0.7, 0.5, 0.5)
    box3d: tuple[float, float, float] = (0.7, 0.5, 0.5)

    def __post_init__(self) -> None:
        for name in ("image", "bev", "box3d"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != len(EVAL_CLASSES) or not all(0.0 <= v < 1.0 for v in values):
                raise ValueError(f"IouThresholds.{name}: expected {len(EVAL_CLASSES)} values in "
                                 f"[0, 1), got {getattr(self, name)!r}")
            object.__setattr__(self, name, values)

    @classmethod
    def loose(cls) -> "IouThresholds":
        """The common second set: 2D unchanged, BEV and 3D at 0.5 / 0.25 / 0.25."""
        return cls(bev=(0.5, 0.25, 0.25), box3d=(0.5, 0.25, 0.25))

    def for_metric(self, metric: str, class_name: str) -> float:
        """The threshold of one metric (``2d``, ``aos``, ``bev``, ``3d``) and class."""
        values = {"2d": self.image, "aos": self.image, "bev": self.bev, "3d": self.box3d}[metric]
        return values[EVAL_CLASSES.index(class_name)]


@dataclass(frozen=True)
class EvalSettings:
    """What to evaluate. ``classes`` from ``kitti.EVAL_CLASSES``, ``metrics`` from :data:`METRICS`,
    ``recall_points`` from :data:`RECALL_POINTS`."""

    classes: tuple[str, ...] = EVAL_CLASSES
    metrics: tuple[str, ...] = METRICS
    recall_points: tuple[int, ...] = RECALL_POINTS
    iou: IouThresholds = IouThresholds()

    def __post_init__(self) -> None:
        for name, allowed in (("classes", EVAL_CLASSES), ("metrics", METRICS),
                              ("recall_points", RECALL_POINTS)):
            values = tuple(getattr(self, name))
            unknown = [v for v in values if v not in allowed]
            if unknown or not values or len(set(values)) != len(values):
                raise ValueError(f"EvalSettings.{name}: expected distinct values from {allowed}, "
                                 f"got {values!r}")
            object.__setattr__(self, name, values)


def preset(name: str) -> EvalSettings:
    """``paper``: the devkit protocol (the paper reports Car BEV/3D at IoU 0.7). ``cpu-small``:
    the same (evaluation is cheap on a CPU). ``loose``: BEV/3D at 0.5/0.25/0.25."""
    if name in ("paper", "cpu-small"):
        return EvalSettings()
    if name == "loose":
        return EvalSettings(iou=IouThresholds.loose())
    raise ValueError(f"unknown preset {name!r} (paper, cpu-small, loose)")
