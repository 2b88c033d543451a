"""The ForeSeE chain of stages for one dataset and preset (what ``foresee run`` executes).

Rows of the final report ("clouds"):

* ``lidar``    — the dataset's own velodyne scans (real LiDAR on KITTI; simulated HDL-64E on the
  embedded benchmark): an upper bound no monocular method has.
* ``oracle``   — pseudo-LiDAR from ground-truth depth (depth_2): the best a depth model could do.
* ``baseline`` — pseudo-LiDAR from the one-decoder baseline depth model.
* ``foresee``  — pseudo-LiDAR from ForeSeE (two decoders, sensitive loss, mask-free merge).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from kitti import KittiFormatError, KittiRoot
from pipeline.cache import Artifact
from pipeline.stages import StageSpec

CLOUDS = ("lidar", "oracle", "baseline", "foresee")
DEPTH_VARIANTS = ("baseline", "foresee")


@dataclass(frozen=True)
class RunConfig:
    """What ``foresee run`` was asked to do.

    Attributes:
        data_root: KITTI-format root (training/{image_2,calib,label_2,velodyne[,depth_2]}).
        preset: ``cpu-small`` or ``paper``.
        train_split, val_split: split names or files (ImageSets/<name>.txt, else the 3DOP split).
        detector: ``fpointnet``.
        clouds: which report rows to build.
        boxes2d: 2D boxes for detection at test time: ``simulated`` or a detection file/folder.
    """

    data_root: Path
    preset: str = "cpu-small"
    train_split: str = "train"
    val_split: str = "val"
    detector: str = "fpointnet"
    clouds: tuple[str, ...] = CLOUDS
    boxes2d: str = "simulated"
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


#: stage names accepted by ``RunConfig.overrides`` / ``foresee run --set STAGE.FIELD=VALUE``.
OVERRIDABLE = ("depth", "pseudolidar", "detect")


def apply_overrides(settings: Any, overrides: Mapping[str, Any], stage: str) -> Any:
    """``dataclasses.replace`` with a clear error for an unknown field."""
    if not overrides:
        return settings
    names = {f.name for f in fields(settings)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown {stage} setting(s) {unknown}; known: {sorted(names)}")
    return replace(settings, **overrides)


def _frames(root: KittiRoot, cfg: RunConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return root.split(cfg.train_split), root.split(cfg.val_split)


def check_data(cfg: RunConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Fail before any work, with one line naming what is missing where."""
    root = KittiRoot(cfg.data_root)
    if not root.root.is_dir():
        raise KittiFormatError(root.root, None, "data root does not exist")
    train, val = _frames(root, cfg)
    need = ["image_2", "calib", "label_2", "velodyne"]
    if "oracle" in cfg.clouds or any(c in cfg.clouds for c in DEPTH_VARIANTS):
        need.append("depth_2")
    root.check(train + val, tuple(need))
    overlap = set(train) & set(val)
    if overlap:
        raise KittiFormatError(root.root, None, f"train and val splits share {len(overlap)} frames")
    return train, val


def build_chain(cfg: RunConfig) -> list[StageSpec]:
    """The stage nodes in topological order (keys are computed by ``pipeline.stages.plan``)."""
    import depth
    import detection
    import kitti_eval
    import pseudolidar
    from depth.settings import preset as depth_preset
    from detection.frustum_pointnet.settings import preset as det_preset
    from pseudolidar.settings import preset as pl_preset

    root = KittiRoot(cfg.data_root)
    train, val = check_data(cfg)
    both = tuple(sorted(set(train) | set(val)))
    fp_train = "data:" + root.fingerprint(train, ("image_2", "calib", "label_2", "depth_2"))
    fp_all_img = "data:" + root.fingerprint(both, ("image_2", "calib"))
    fp_all_depth = "data:" + root.fingerprint(both, ("calib", "depth_2"))
    fp_all_velo = "data:" + root.fingerprint(both, ("calib", "label_2", "velodyne"))
    fp_val_labels = "data:" + root.fingerprint(val, ("label_2",))
    h, w = root.image_hw(val[0])
    n_all = len(both)

    specs: list[StageSpec] = []
    unknown = sorted(set(cfg.overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"unknown stage(s) in overrides {unknown}; known: {list(OVERRIDABLE)}")
    pl_settings = apply_overrides(pl_preset(cfg.preset), cfg.overrides.get("pseudolidar", {}), "pseudolidar")
    det_settings = apply_overrides(det_preset(cfg.preset), cfg.overrides.get("detect", {}), "detect")

    # ---------------------------------------------------------------- depth
    def depth_train(variant: str, settings: Any) -> StageSpec:
        def produce(out: Path, deps: Mapping[str, Artifact]):
            from depth.train import train_depth
            return train_depth(root.root, train, settings, out)
        return StageSpec(f"depth-train/{variant}", "depth-train", depth.CODE_VERSION, settings,
                         (), (fp_train,), produce, est_bytes=50_000_000)

    def depth_infer(variant: str) -> StageSpec:
        def produce(out: Path, deps: Mapping[str, Artifact]):
            from depth.infer import infer_depth
            ckpt = deps[f"depth-train/{variant}"].path / "checkpoint.pt"
            return infer_depth(root.root, both, ckpt, out / "depth", merge="max")
        return StageSpec(f"depth-infer/{variant}", "depth-infer", depth.CODE_VERSION,
                         {"frames": "train+val", "merge": "max"}, (f"depth-train/{variant}",),
                         (fp_all_img,), produce, est_bytes=n_all * h * w * 4)

    def depth_gt() -> StageSpec:
        def produce(out: Path, deps: Mapping[str, Artifact]):
            from depth.infer import export_gt_depth
            return export_gt_depth(root.root, both, out / "depth")
        return StageSpec("depth-gt", "depth-gt", depth.CODE_VERSION, {"frames": "train+val"}, (),
                         (fp_all_depth,), produce, est_bytes=n_all * h * w * 4)

    depth_nodes: dict[str, str] = {}
    for variant in DEPTH_VARIANTS:
        if variant in cfg.clouds:
            settings = apply_overrides(depth_preset(cfg.preset, variant=variant),
                                       cfg.overrides.get("depth", {}), "depth")
            specs.append(depth_train(variant, settings))
            specs.append(depth_infer(variant))
            depth_nodes[variant] = f"depth-infer/{variant}"
    if "oracle" in cfg.clouds:
        specs.append(depth_gt())
        depth_nodes["oracle"] = "depth-gt"

    # ---------------------------------------------------------------- pseudo-LiDAR
    def pl_node(cloud: str, depth_node: str) -> StageSpec:
        def produce(out: Path, deps: Mapping[str, Artifact]):
            from pseudolidar.stage import run_pseudolidar
            return run_pseudolidar(deps[depth_node].path / "depth", root.root, both,
                                   out / "velodyne", pl_settings)
        return StageSpec(f"pseudolidar/{cloud}", "pseudolidar", pseudolidar.CODE_VERSION,
                         pl_settings, (depth_node,), (fp_all_img,), produce,
                         est_bytes=n_all * h * w * 16 // 2)

    for cloud, node in depth_nodes.items():
        specs.append(pl_node(cloud, node))

    # ---------------------------------------------------------------- detection + eval
    def points_dir(cloud: str, deps: Mapping[str, Artifact]) -> Path:
        if cloud == "lidar":
            return root.folder("velodyne")
        return deps[f"pseudolidar/{cloud}"].path / "velodyne"

    for cloud in cfg.clouds:
        up = () if cloud == "lidar" else (f"pseudolidar/{cloud}",)
        raw = (fp_all_velo,) if cloud == "lidar" else (fp_train,)

        def train_produce(out: Path, deps: Mapping[str, Artifact], _c=cloud):
            from detection.frustum_pointnet.train import train_fpointnet
            summary = train_fpointnet(root.root, points_dir(_c, deps), train, det_settings, out)
            (out / "checkpoint.pt").unlink(missing_ok=True)  # optimiser state: model.pt is the artifact
            return summary

        def infer_produce(out: Path, deps: Mapping[str, Artifact], _c=cloud):
            from detection.frustum_pointnet.infer import infer_fpointnet
            model = deps[f"detect-train/{_c}"].path / "model.pt"
            return infer_fpointnet(root.root, points_dir(_c, deps), val, model, det_settings,
                                   out / "data", boxes2d=cfg.boxes2d)

        def eval_produce(out: Path, deps: Mapping[str, Artifact], _c=cloud):
            return _evaluate(root, val, deps[f"detect-infer/{_c}"].path / "data", out)

        specs.append(StageSpec(f"detect-train/{cloud}", "detect-train", detection.CODE_VERSION,
                               det_settings, up, raw, train_produce, est_bytes=10_000_000))
        specs.append(StageSpec(f"detect-infer/{cloud}", "detect-infer", detection.CODE_VERSION,
                               {"boxes2d": cfg.boxes2d}, (f"detect-train/{cloud}",) + up, raw,
                               infer_produce, est_bytes=len(val) * 500))
        specs.append(StageSpec(f"eval/{cloud}", "eval", kitti_eval.CODE_VERSION,
                               {"classes": ["Car", "Pedestrian", "Cyclist"],
                                "thresholds": ["devkit", "loose"]},
                               (f"detect-infer/{cloud}",), (fp_val_labels,), eval_produce,
                               est_bytes=20_000))

    # ---------------------------------------------------------------- depth metrics (Table 2)
    for cloud, node in depth_nodes.items():
        def deval_produce(out: Path, deps: Mapping[str, Artifact], _n=node):
            return _evaluate_depth(root, val, deps[_n].path / "depth", out)
        specs.append(StageSpec(f"depth-eval/{cloud}", "depth-eval", depth.CODE_VERSION,
                               {"split": "val"}, (node,), (fp_val_labels,), deval_produce,
                               est_bytes=10_000))
    return specs


def _evaluate(root: KittiRoot, val: tuple[str, ...], det_dir: Path, out: Path) -> dict:
    import json

    from kitti.fileio import atomic_write_text
    from kitti_eval import evaluate_folders

    from kitti_eval import IouThresholds

    # the devkit's thresholds (Car 0.7) as in the paper, and the common loose set (Car BEV/3D 0.5)
    for name, thresholds in (("eval", IouThresholds()), ("eval_loose", IouThresholds.loose())):
        result = evaluate_folders(root.folder("label_2"), det_dir, frame_ids=val, thresholds=thresholds)
        atomic_write_text(out / f"{name}.json", result.to_json())
        atomic_write_text(out / f"{name}.md", result.to_markdown())
        result.to_dataframe().to_csv(out / f"{name}.csv", index=False)
    return {"frames": len(val)}


def _evaluate_depth(root: KittiRoot, val: tuple[str, ...], depth_dir: Path, out: Path) -> dict:
    import json

    from depth.metrics import evaluate_depth_dir
    from kitti.fileio import atomic_write_text

    res = evaluate_depth_dir(root.root, val, depth_dir)
    atomic_write_text(out / "depth_metrics.json", json.dumps(res.to_json(), indent=1))
    return {"frames": len(val)}
