"""The ForeSeE chain of stages for one dataset and preset (what ``foresee run`` executes).

Rows of the final report ("clouds"):

* ``lidar``    — the dataset's own velodyne scans (real LiDAR on KITTI; simulated HDL-64E on the
  embedded benchmark): an upper bound no monocular method has.
* ``oracle``   — pseudo-LiDAR from ground-truth depth (depth_2): the best a depth model could do.
* ``baseline`` — pseudo-LiDAR from the one-decoder baseline depth model.
* ``foresee``  — pseudo-LiDAR from ForeSeE (two decoders, sensitive loss, mask-free merge).
* ``foresee-obj`` — pseudo-LiDAR from the depth variant ``foresee-obj``: ForeSeE's decoders, loss
  and merge with the object surfaces as training foreground (``depth.settings``), an extension
  beyond the paper. **Opt-in**: not in :data:`DEFAULT_CLOUDS` (``RunConfig.clouds`` and ``foresee
  run``'s default), so the default chain, its nodes and their keys are those of every earlier run;
  ``--clouds lidar,oracle,baseline,foresee,foresee-obj`` adds its nodes (depth-train / depth-infer /
  pseudolidar / depth-eval and the detector rows), and every other node keeps its key.

How the chain is declared
-------------------------
The chain is data: :func:`chain_nodes` returns a list of :class:`Node` (name, kind, tags, deps
by role) in topological order, and :data:`KINDS` maps each kind to a :class:`Kind`: the cache
stage, **the one key function** of ``pipeline.keys`` that ``foresee run`` and the per-stage
commands share, a ``produce`` function (module level, no closures) and a size estimate.
:func:`build_chain` turns the nodes into ``pipeline.executor.StageSpec`` with their keys computed
in order (an upstream node's key is known before a downstream one's), so ``--dry-run`` prints
every key before anything runs.

Node names: ``depth-train/<variant>``, ``depth-infer/<variant>``, ``depth-gt``,
``pseudolidar/<cloud>``, ``detect-train/<detector>/<cloud>``, ``detect-infer/<detector>/<cloud>``,
``eval/<detector>/<cloud>``, ``depth-eval/<cloud>``; tags (``variant``, ``cloud``, ``detector``)
say the same in fields, and :func:`find` looks a node up by them.

How to add a node
-----------------
1. Write the stage's key function in ``pipeline/keys.py`` (every input that changes the output:
   upstream refs, ``data_id`` of the raw files it reads, settings) and call it from the stage's
   command too.
2. Write ``_produce_<kind>(ctx, node, out, deps)`` here (deps: role -> upstream ``Artifact``) and
   ``_key_<kind>(ctx, node, ids)`` (ids: role -> upstream ref), and register a ``Kind`` in
   :data:`KINDS`.
3. Emit ``Node``\\ s for it in :func:`chain_nodes`.

The three extensions this layout is made for:

* **another detector** (AVOD beside F-PointNet, one row per (detector, cloud)): add its entry to
  the registry, :data:`pipeline.detectors.DETECTORS` (its settings preset, train and infer
  functions, the artifact file the infer stage loads, whether it reads 2D boxes); ``--detector``
  names it and the detect-train / detect-infer / eval nodes are emitted per detector already.
* **a 2D-box source stage** (done for ``--boxes2d detector``): kinds ``detect2d-train`` /
  ``detect2d-infer`` are emitted in :func:`chain_nodes` when ``cfg.boxes2d == "detector"`` and
  each detect-infer node gets the dep ``{"boxes2d": "detect2d-infer"}``; ``_key_detect_infer``
  keys on that artifact's ref and ``_produce_detect_infer`` passes its ``data/`` folder as the 2D
  boxes.
* **a seed axis** (done for ``--seeds N``): see below.

Seeds (``RunConfig.seeds``)
---------------------------
With ``seeds == 1`` (the default) the chain is exactly the one-seed chain: no node carries a seed,
names and keys are those of every earlier run (``make demo``'s cache stays valid). With
``seeds = N > 1`` the nodes whose output depends on a training seed are emitted once per seed
``s`` in ``0 .. N-1``, named ``.../s<s>`` and tagged ``seed``: ``depth-train`` / ``depth-infer``
(every depth variant of the run), their ``pseudolidar`` and ``depth-eval`` nodes, and ``detect-train`` /
``detect-infer`` / ``eval`` of **every** cloud (the 3D detector is trained with seed ``s`` on the
LiDAR and oracle clouds too). :meth:`Ctx.settings` sets ``seed = s`` in the depth-train and
detect-train settings only (the presets' seed is 0, so seed 0's artifacts are the one-seed run's);
detect-infer keeps the preset's seed, so simulated 2D boxes and inference sampling are the same for
every seed. Shared by all seeds: the render, ``depth-gt``, ``pseudolidar/oracle``,
``depth-eval/oracle``, the dataset's LiDAR and the 2D detector (``detect2d-train`` /
``detect2d-infer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

from kitti import KittiFormatError, KittiRoot
from pipeline import keys
from pipeline.cache import Artifact
from pipeline.detectors import DETECTORS
from pipeline.executor import StageSpec
from pipeline.resume import resumable

#: every cloud (report row) the chain can build.
CLOUDS = ("lidar", "oracle", "baseline", "foresee", "foresee-obj")
#: the clouds of ``RunConfig.clouds`` and ``foresee run --clouds`` by default (the paper's rows).
DEFAULT_CLOUDS = ("lidar", "oracle", "baseline", "foresee")
#: the clouds made by a trained depth model, in the chain's order (``depth-train/<variant>``).
DEPTH_VARIANTS = ("baseline", "foresee", "foresee-obj")


@dataclass(frozen=True)
class RunConfig:
    """What ``foresee run`` was asked to do.

    Attributes:
        data_root: KITTI-format root (training/{image_2,calib,label_2,velodyne[,depth_2]}).
        preset: ``cpu-small`` or ``paper``.
        train_split, val_split: split names or files (ImageSets/<name>.txt, else the 3DOP split).
        detector: comma-separated names of :data:`pipeline.detectors.DETECTORS` (``fpointnet``,
            ``avod``, ``fpointnet,avod``); one row per detector and cloud.
        clouds: which report rows to build (of :data:`CLOUDS`; default :data:`DEFAULT_CLOUDS`).
        boxes2d: 2D boxes for detection at test time: ``detector`` (the detect2d stage, trained on
            the train split; ``foresee run``'s default), ``simulated``, ``gt``, or a detection
            file/folder.
        depth_train_split, depth_val_split: frames with depth ground truth for depth training and
            Table 2 (default: the train / val splits). On KOD (``foresee kod build``):
            ``kod_train`` / ``kod_val``, while detection uses the full 3DOP ``train`` / ``val``.
        overrides: per stage (:data:`OVERRIDABLE`) field -> value, applied to the preset.
        seeds: number of training seeds (``0 .. seeds-1``; see the module docstring). 1: the
            one-seed chain, unchanged.
    """

    data_root: Path
    preset: str = "cpu-small"
    train_split: str = "train"
    val_split: str = "val"
    detector: str = "fpointnet"
    clouds: tuple[str, ...] = DEFAULT_CLOUDS
    boxes2d: str = "simulated"
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    depth_train_split: str | None = None
    depth_val_split: str | None = None
    seeds: int = 1

    @property
    def detectors(self) -> tuple[str, ...]:
        return tuple(d.strip() for d in self.detector.split(",") if d.strip())


#: stage names accepted by ``RunConfig.overrides`` / ``foresee run --set STAGE.FIELD=VALUE``.
#: ``detect`` reaches every 3D detector of the run that has the field (an error when none has it);
#: a detector's own name (``fpointnet``, ``avod``: the keys of :data:`DETECTORS`) reaches that
#: detector only and is applied after.
OVERRIDABLE = ("depth", "pseudolidar", "detect", "detect2d", *DETECTORS)

#: settings that ``--seeds N`` (N > 1) sets per seed: the seed of depth and 3D-detector training.
SEEDED_STAGES = ("depth", "detect")

#: ``RunConfig.boxes2d`` value that adds the 2D detector stage to the chain.
BOXES2D_DETECTOR = "detector"


def setting_names(settings: Any) -> set[str]:
    """The field names of a frozen settings dataclass."""
    return {f.name for f in fields(settings)}


def apply_overrides(settings: Any, overrides: Mapping[str, Any], stage: str) -> Any:
    """``dataclasses.replace`` with a clear error for an unknown field."""
    if not overrides:
        return settings
    names = setting_names(settings)
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown {stage} setting(s) {unknown}; known: {sorted(names)}")
    return replace(settings, **overrides)


# ---------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Node:
    """One node of the declared chain.

    Attributes:
        name: unique, e.g. ``detect-infer/fpointnet/oracle``.
        kind: a key of :data:`KINDS`.
        tags: ``variant`` / ``cloud`` / ``detector`` (/ ``seed``) of this node.
        deps: role -> upstream node name (e.g. ``{"model": "detect-train/fpointnet/lidar"}``).
    """

    name: str
    kind: str
    tags: Mapping[str, str] = field(default_factory=dict)
    deps: Mapping[str, str] = field(default_factory=dict)


def _name(stage: str, *parts: str, seed: int | None = None) -> str:
    return "/".join((stage, *parts)) + (f"/s{seed}" if seed is not None else "")


def depth_source(cloud: str, seed: int | None = None) -> str:
    """The node whose depth maps make a pseudo-LiDAR cloud (ground truth is shared by all seeds)."""
    return "depth-gt" if cloud == "oracle" else _name("depth-infer", cloud, seed=seed)


def chain_seeds(cfg: RunConfig) -> list[int | None]:
    """The seed of each copy of the seeded nodes: ``[None]`` (no seed axis) for one seed."""
    return [None] if cfg.seeds == 1 else list(range(cfg.seeds))


def _seed_tags(seed: int | None) -> dict[str, str]:
    return {} if seed is None else {"seed": str(seed)}


def chain_nodes(cfg: RunConfig) -> list[Node]:
    """The declared chain for ``cfg``, in topological order."""
    nodes: list[Node] = []
    seeds = chain_seeds(cfg)
    pl_clouds = [c for c in cfg.clouds if c != "lidar"]

    def cloud_seeds(c: str) -> list[int | None]:  # the oracle cloud comes from ground truth: one copy
        return [None] if c == "oracle" else seeds

    for s in seeds:
        for v in DEPTH_VARIANTS:
            if v in cfg.clouds:
                tags = {"variant": v, **_seed_tags(s)}
                nodes.append(Node(_name("depth-train", v, seed=s), "depth-train", tags))
                nodes.append(Node(_name("depth-infer", v, seed=s), "depth-infer", tags,
                                  {"checkpoint": _name("depth-train", v, seed=s)}))
    if "oracle" in cfg.clouds:
        nodes.append(Node("depth-gt", "depth-gt", {"variant": "oracle"}))
    for c in pl_clouds:
        for s in cloud_seeds(c):
            nodes.append(Node(_name("pseudolidar", c, seed=s), "pseudolidar", {"cloud": c, **_seed_tags(s)},
                              {"depth": depth_source(c, s)}))
    boxes2d = {}
    if cfg.boxes2d == BOXES2D_DETECTOR and any(DETECTORS[d].uses_boxes2d for d in cfg.detectors if d in DETECTORS):
        nodes.append(Node("detect2d-train", "detect2d-train"))
        nodes.append(Node("detect2d-infer", "detect2d-infer", {}, {"model": "detect2d-train"}))
        boxes2d = {"boxes2d": "detect2d-infer"}
    for s in seeds:
        for det in cfg.detectors:
            for c in cfg.clouds:
                tags = {"cloud": c, "detector": det, **_seed_tags(s)}
                pl_seed = None if c == "oracle" else s
                points = {} if c == "lidar" else {"points": _name("pseudolidar", c, seed=pl_seed)}
                train = _name("detect-train", det, c, seed=s)
                infer = _name("detect-infer", det, c, seed=s)
                nodes.append(Node(train, "detect-train", tags, points))
                uses = boxes2d if det not in DETECTORS or DETECTORS[det].uses_boxes2d else {}
                nodes.append(Node(infer, "detect-infer", tags, {"model": train, **points, **uses}))
                nodes.append(Node(_name("eval", det, c, seed=s), "eval", tags, {"results": infer}))
    for c in pl_clouds:
        for s in cloud_seeds(c):
            nodes.append(Node(_name("depth-eval", c, seed=s), "depth-eval", {"cloud": c, **_seed_tags(s)},
                              {"depth": depth_source(c, s)}))
    return nodes


def seed_view(items, seed: int | None) -> list:
    """The nodes / specs of one seed's chain: those of ``seed`` and the shared ones (no seed)."""
    if seed is None:
        return list(items)
    out = []
    for item in items:
        node = item if isinstance(item, Node) else item.node
        if node.tags.get("seed") in (None, str(seed)):
            out.append(item)
    return out


def base_name(name: str, seed: int | None) -> str:
    """A node's name without its ``/s<seed>`` suffix (the one-seed chain's name)."""
    suffix = f"/s{seed}"
    return name[: -len(suffix)] if seed is not None and name.endswith(suffix) else name


def find(items, kind: str, **tags: str):
    """The first of ``items`` (Nodes, StageSpecs or PlannedStages of the chain) of ``kind`` with
    these tags, or None: ``find(specs, "eval", detector="fpointnet", cloud="lidar")``."""
    for item in items:
        node = item if isinstance(item, Node) else getattr(item, "node", None)
        if node is None and hasattr(item, "spec"):
            node = item.spec.node
        if node is not None and node.kind == kind and all(node.tags.get(k) == v for k, v in tags.items()):
            return item
    return None


# ---------------------------------------------------------------------------- context
@dataclass(frozen=True)
class Ctx:
    """What every key and produce function of one run reads."""

    cfg: RunConfig
    root: KittiRoot
    train: tuple[str, ...]
    val: tuple[str, ...]
    both: tuple[str, ...]
    image_hw: tuple[int, int]
    depth_train: tuple[str, ...]
    depth_val: tuple[str, ...]

    def settings(self, stage: str, node: Node) -> Any:
        """The preset's settings of a node's stage with ``cfg.overrides`` applied."""
        if stage == "depth":
            from depth.settings import preset
            base = preset(self.cfg.preset, variant=node.tags["variant"])
        elif stage == "pseudolidar":
            from pseudolidar.settings import preset
            base = preset(self.cfg.preset)
        elif stage == "detect":
            base = DETECTORS[node.tags["detector"]].preset(self.cfg.preset)
        elif stage == "detect2d":
            from detect2d.settings import preset
            base = preset(self.cfg.preset)
        else:
            raise KeyError(stage)
        if stage == "detect":
            det = node.tags["detector"]
            names = setting_names(base)
            shared = {k: v for k, v in self.cfg.overrides.get("detect", {}).items() if k in names}
            settings = apply_overrides(apply_overrides(base, shared, "detect"),
                                       self.cfg.overrides.get(det, {}), det)
        else:
            settings = apply_overrides(base, self.cfg.overrides.get(stage, {}), stage)
        if "seed" in node.tags and node.kind in ("depth-train", "detect-train"):
            settings = replace(settings, seed=int(node.tags["seed"]))
        return settings

    def points_dir(self, node: Node, deps: Mapping[str, Artifact]) -> Path:
        return deps["points"].path / "velodyne" if "points" in deps else self.root.folder("velodyne")

    def points_id(self, node: Node, ids: Mapping[str, str], frames) -> str:
        """The cloud input's id: the pseudo-LiDAR artifact's ref, or the root's velodyne folder
        fingerprinted as ``foresee detect --points ROOT/training/velodyne`` does."""
        if "points" in ids:
            return ids["points"]
        return keys.folder_id("points-folder", self.root.folder("velodyne"), frames, ".bin")

    def boxes2d(self, deps: Mapping[str, Artifact]) -> str | Path:
        return deps["boxes2d"].path / "data" if "boxes2d" in deps else self.cfg.boxes2d


# ---------------------------------------------------------------------------- kinds
Ids = Mapping[str, str]
Deps = Mapping[str, Artifact]


def _key_depth_train(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.depth_train(ctx.root, ctx.depth_train, ctx.settings("depth", node))


def _produce_depth_train(ctx: Ctx, node: Node, out: Path, deps: Deps):
    from depth.train import train_depth

    settings = ctx.settings("depth", node)
    return resumable(out, lambda start: train_depth(ctx.root.root, ctx.depth_train, settings, out, resume=start),
                     artifact_checkpoint=True)


def _key_depth_infer(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.depth_infer(ctx.root, ctx.both, ids["checkpoint"], merge="max", variant=node.tags["variant"])


def _produce_depth_infer(ctx: Ctx, node: Node, out: Path, deps: Deps):
    from depth.infer import infer_depth

    return infer_depth(ctx.root.root, ctx.both, deps["checkpoint"].path / "checkpoint.pt", out / "depth",
                       merge="max")


def _key_depth_gt(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.depth_gt(ctx.root, ctx.both)


def _produce_depth_gt(ctx: Ctx, node: Node, out: Path, deps: Deps):
    from depth.infer import export_gt_depth

    return export_gt_depth(ctx.root.root, ctx.both, out / "depth")


def _key_pseudolidar(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.pseudolidar(ctx.root, ctx.both, ctx.settings("pseudolidar", node), ids["depth"])


def _produce_pseudolidar(ctx: Ctx, node: Node, out: Path, deps: Deps):
    from pseudolidar.stage import run_pseudolidar

    return run_pseudolidar(deps["depth"].path / "depth", ctx.root.root, ctx.both, out / "velodyne",
                           ctx.settings("pseudolidar", node))


def _key_detect_train(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.detect_train(ctx.root, ctx.train, ctx.settings("detect", node),
                             ctx.points_id(node, ids, ctx.train), detector=node.tags["detector"])


def _produce_detect_train(ctx: Ctx, node: Node, out: Path, deps: Deps):
    det = DETECTORS[node.tags["detector"]]
    points, settings = ctx.points_dir(node, deps), ctx.settings("detect", node)
    return resumable(out, lambda start: det.train(ctx.root.root, points, ctx.train, settings, out, resume=start))


def _key_detect_infer(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    if not DETECTORS[node.tags["detector"]].uses_boxes2d:  # AVOD: no 2D boxes in its key
        boxes = keys.NO_BOXES2D  # (keys.detect_infer enforces it too)
    else:
        boxes = ids["boxes2d"] if "boxes2d" in ids else keys.boxes2d_id(ctx.cfg.boxes2d)
    return keys.detect_infer(ctx.root, ctx.val, ctx.settings("detect", node), ctx.points_id(node, ids, ctx.val),
                             ids["model"], boxes, detector=node.tags["detector"])


def _produce_detect_infer(ctx: Ctx, node: Node, out: Path, deps: Deps):
    det = DETECTORS[node.tags["detector"]]
    return det.infer(ctx.root.root, ctx.points_dir(node, deps), ctx.val, deps["model"].path / det.model_file,
                     ctx.settings("detect", node), out, boxes2d=ctx.boxes2d(deps))


def _key_detect2d_train(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.detect2d_train(ctx.root, ctx.train, ctx.settings("detect2d", node))


def _produce_detect2d_train(ctx: Ctx, node: Node, out: Path, deps: Deps):
    from detect2d.train import train_detector

    settings = ctx.settings("detect2d", node)
    return resumable(out, lambda start: train_detector(ctx.root.root, ctx.train, settings, out, resume=start))


def _key_detect2d_infer(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    options = ctx.settings("detect2d", node).inference_options()
    return keys.detect2d_infer(ctx.root, ctx.val, ids["model"], options=options)


def _produce_detect2d_infer(ctx: Ctx, node: Node, out: Path, deps: Deps):
    settings = ctx.settings("detect2d", node)
    return detect2d_results(ctx.root, ctx.val, deps["model"].path / "model.pt", out,
                            num_threads=settings.num_threads, options=settings.inference_options())


def _key_eval(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.kitti_eval(ctx.root, ctx.val, ids["results"])


def _produce_eval(ctx: Ctx, node: Node, out: Path, deps: Deps):
    return evaluate_results(ctx.root, ctx.val, deps["results"].path / "data", out)


def _key_depth_eval(ctx: Ctx, node: Node, ids: Ids) -> keys.StageKey:
    return keys.depth_eval(ctx.root, ctx.depth_val, ids["depth"])


def _produce_depth_eval(ctx: Ctx, node: Node, out: Path, deps: Deps):
    return evaluate_depth(ctx.root, ctx.depth_val, deps["depth"].path / "depth", out)


@dataclass(frozen=True)
class Kind:
    """A kind of node: its key function, its produce function and a size estimate (bytes)."""

    key: Callable[[Ctx, Node, Ids], keys.StageKey]
    produce: Callable[[Ctx, Node, Path, Deps], Mapping[str, Any] | None]
    est_bytes: Callable[[Ctx], int]


def _maps_bytes(ctx: Ctx) -> int:
    return len(ctx.both) * ctx.image_hw[0] * ctx.image_hw[1] * 4


KINDS: dict[str, Kind] = {
    "depth-train": Kind(_key_depth_train, _produce_depth_train, lambda c: 50_000_000),
    "depth-infer": Kind(_key_depth_infer, _produce_depth_infer, _maps_bytes),
    "depth-gt": Kind(_key_depth_gt, _produce_depth_gt, _maps_bytes),
    "pseudolidar": Kind(_key_pseudolidar, _produce_pseudolidar, lambda c: 2 * _maps_bytes(c)),
    "detect-train": Kind(_key_detect_train, _produce_detect_train, lambda c: 10_000_000),
    "detect-infer": Kind(_key_detect_infer, _produce_detect_infer, lambda c: len(c.val) * 500),
    "detect2d-train": Kind(_key_detect2d_train, _produce_detect2d_train, lambda c: 20_000_000),
    "detect2d-infer": Kind(_key_detect2d_infer, _produce_detect2d_infer, lambda c: len(c.val) * 1_000),
    "eval": Kind(_key_eval, _produce_eval, lambda c: 20_000),
    "depth-eval": Kind(_key_depth_eval, _produce_depth_eval, lambda c: 10_000),
}


# ---------------------------------------------------------------------------- building
def _frames(root: KittiRoot, cfg: RunConfig) -> tuple[tuple[str, ...], ...]:
    """train, val, depth-train and depth-val frames of ``cfg``."""
    train, val = root.split(cfg.train_split), root.split(cfg.val_split)
    depth_train = root.split(cfg.depth_train_split) if cfg.depth_train_split else train
    depth_val = root.split(cfg.depth_val_split) if cfg.depth_val_split else val
    return train, val, depth_train, depth_val


def data_reads(cfg: RunConfig, frames: tuple[tuple[str, ...], ...]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(frames, kinds) of every raw file the chain of ``cfg`` reads. Depth ground truth is read
    only where it is used: depth training and Table 2 (their splits) and the oracle (every frame);
    velodyne only for the LiDAR row."""
    train, val, depth_train, depth_val = frames
    reads = [(train + val, ("image_2", "calib", "label_2") + (("velodyne",) if "lidar" in cfg.clouds else ()))]
    if "oracle" in cfg.clouds:
        reads.append((train + val, ("depth_2",)))
    if any(c in DEPTH_VARIANTS for c in cfg.clouds):
        reads.append((depth_train, ("depth_2", "label_2", "image_2", "calib")))
    if any(c != "lidar" for c in cfg.clouds):
        reads.append((depth_val, ("depth_2", "label_2")))
    return reads


def check_data(cfg: RunConfig, root: KittiRoot | None = None, workdir: Path | None = None) -> tuple[tuple[str, ...], ...]:
    """Fail before any work with one report of every problem in the data the chain reads
    (``pipeline.validate``: split files, missing files, every label and calib line, image and
    depth PNG headers, velodyne sizes, a ``--boxes2d`` file or folder). With ``workdir``, a clean
    result is remembered there by the data's fingerprint."""
    from pipeline.validate import validate

    root = KittiRoot(cfg.data_root) if root is None else root
    if not root.root.is_dir():
        raise KittiFormatError(root.root, None, "data root does not exist")
    train, val, depth_train, depth_val = frames = _frames(root, cfg)
    overlap = set(train) & set(val)
    if overlap:
        raise KittiFormatError(root.root, None, f"train and val splits share {len(overlap)} frames")
    boxes2d = None if cfg.boxes2d == BOXES2D_DETECTOR else cfg.boxes2d
    validate(root, data_reads(cfg, frames), workdir=workdir, boxes2d=boxes2d, boxes2d_frames=val)
    return frames


def _check_config(cfg: RunConfig) -> None:
    unknown = sorted(set(cfg.overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"unknown stage(s) in overrides {unknown}; known: {list(OVERRIDABLE)}")
    bad = [d for d in cfg.detectors if d not in DETECTORS]
    if bad or not cfg.detectors:
        raise ValueError(f"unknown detector(s) {bad}; known: {', '.join(DETECTORS)}")
    unused = sorted(set(cfg.overrides) & set(DETECTORS) - set(cfg.detectors))
    if unused:
        raise ValueError(f"overrides for {unused}, which this run does not use (--detector "
                         f"{'/'.join(cfg.detectors)})")
    if cfg.overrides.get("detect"):
        known = set().union(*(setting_names(DETECTORS[d].preset(cfg.preset)) for d in cfg.detectors))
        unknown = sorted(set(cfg.overrides["detect"]) - known)
        if unknown:
            raise ValueError(f"unknown detect setting(s) {unknown} for {'/'.join(cfg.detectors)}; "
                             f"known: {sorted(known)}")
    bad = [c for c in cfg.clouds if c not in CLOUDS]
    if bad:
        raise ValueError(f"unknown cloud(s) {bad}; known: {list(CLOUDS)}")
    if not isinstance(cfg.seeds, int) or cfg.seeds < 1:
        raise ValueError(f"seeds must be a whole number >= 1, got {cfg.seeds!r}")
    if cfg.seeds > 1:
        fixed = [f"{st}.seed" for st in SEEDED_STAGES + tuple(DETECTORS) if "seed" in cfg.overrides.get(st, {})]
        if fixed:
            raise ValueError(f"--seeds {cfg.seeds} sets the seeds 0..{cfg.seeds - 1} itself; drop --set {', '.join(fixed)}")


def build_chain(cfg: RunConfig, workdir: Path | None = None) -> list[StageSpec]:
    """The stage specs of ``cfg`` in topological order, each with its complete key inputs; the
    data is validated first (:func:`check_data`; remembered in ``workdir`` when given)."""
    _check_config(cfg)
    root = KittiRoot(cfg.data_root, memo={})  # each raw file stat'ed / read once per plan
    train, val, depth_train, depth_val = check_data(cfg, root, workdir)
    ctx = Ctx(cfg, root, train, val, tuple(sorted(set(train) | set(val))), root.image_hw(val[0]),
              depth_train, depth_val)
    refs: dict[str, str] = {}
    specs: list[StageSpec] = []
    for node in chain_nodes(cfg):
        kind = KINDS[node.kind]
        ids = {role: refs[dep] for role, dep in node.deps.items()}
        k = kind.key(ctx, node, ids)
        refs[node.name] = k.ref
        specs.append(StageSpec(node.name, k.stage, k.code_version, k.settings, tuple(node.deps.values()), (),
                               partial(_produce, kind, ctx, node), est_bytes=kind.est_bytes(ctx),
                               inputs=k.inputs, node=node))
    return specs


def _produce(kind: Kind, ctx: Ctx, node: Node, out: Path, deps: Mapping[str, Artifact]):
    by_role = {role: deps[dep] for role, dep in node.deps.items()}
    return kind.produce(ctx, node, out, by_role)


# ---------------------------------------------------------------------------- evaluation stages
def evaluate_results(root: KittiRoot, val: tuple[str, ...], det_dir: Path, out: Path) -> dict:
    """eval.{json,md,csv} at the devkit's thresholds (Car 0.7, the paper's) and eval_loose.* at
    the common loose set (Car BEV/3D 0.5)."""
    from kitti.fileio import atomic_write_text
    from kitti_eval import IouThresholds, evaluate_folders

    for name, thresholds in (("eval", IouThresholds()), ("eval_loose", IouThresholds.loose())):
        result = evaluate_folders(root.folder("label_2"), det_dir, frame_ids=val, thresholds=thresholds)
        atomic_write_text(out / f"{name}.json", result.to_json())
        atomic_write_text(out / f"{name}.md", result.to_markdown())
        atomic_write_text(out / f"{name}.csv", result.to_dataframe().to_csv(index=False))
    return {"frames": len(val)}


def detect2d_results(root: KittiRoot, frames: tuple[str, ...], model_path: Path, out: Path, *,
                     device: str = "auto", num_threads: int = 0, score_thresh: float | None = None,
                     evaluate: bool = True, progress: bool = True, options: dict | None = None) -> dict:
    """The detect2d-infer artifact: ``data/NNNNNN.txt`` (KITTI 2D results) and, with ``evaluate``
    (the frames must have labels), ``ap2d.json`` / ``ap2d.md`` (AP_2D, R11 / R40) with the AP in
    the summary (``ap2d``: class -> R11/R40 -> [easy, moderate, hard])."""
    from detect2d.infer import infer_detector
    from kitti.fileio import atomic_write_text
    from kitti_eval import evaluate_folders

    summary = infer_detector(root.root, frames, model_path, out / "data", device=device,
                             num_threads=num_threads, score_thresh=score_thresh, progress=progress,
                             options=options)
    if evaluate:
        res = evaluate_folders(root.folder("label_2"), out / "data", frames, metrics=("2d",))
        atomic_write_text(out / "ap2d.json", res.to_json() + "\n")
        atomic_write_text(out / "ap2d.md", res.to_markdown())
        summary["ap2d"] = {c: res.ap[c]["2d"] for c in res.ap}
    return summary


def evaluate_depth(root: KittiRoot, val: tuple[str, ...], depth_dir: Path, out: Path) -> dict:
    """depth_metrics.json: Table 2's fg / bg / global metrics of ``depth_dir`` on ``val``."""
    import json

    from depth.metrics import evaluate_depth_dir
    from kitti.fileio import atomic_write_text

    res = evaluate_depth_dir(root.root, val, depth_dir)
    atomic_write_text(out / "depth_metrics.json", json.dumps(res.to_json(), indent=1))
    return {"frames": len(val)}
