"""One cache-key function per stage, shared by ``foresee run`` and the per-stage commands.

An artifact's key (``pipeline.cache.make_key``) hashes the stage, its code version, its settings
and its *inputs*: the ``stage/key`` refs of input artifacts and ids of everything else it reads.
``pipeline.stages`` and ``pipeline/commands/*_cmd.py`` both call the functions below, so the same
work gets the same key whichever way it was asked for (``foresee detect infer --points
pseudolidar/<key> --model detect-train/<key>`` reuses the artifact ``foresee run`` made).

Ids of inputs that are not artifacts:

* ``data:<fp>`` — the dataset files a stage reads (``KittiRoot.fingerprint``: names, sizes,
  mtimes, and the content of text files; see ``kitti.layout.fingerprint_files`` for why).
* ``points-folder:<fp>``, ``depth-dir:<fp>``, ``boxes2d-folder:<fp>`` — a plain folder of
  per-frame files, fingerprinted the same way (without its path: a moved folder keeps its id).
* ``boxes2d-file:<hash>``, ``model-file:<hash>``, ``checkpoint:<hash>`` — a user file, hashed by
  content (blake2b).
* ``boxes2d:simulated`` / ``boxes2d:gt`` — boxes derived from the val labels; the key function
  then adds ``label_2`` of those frames to the data fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kitti import KittiFormatError, KittiRoot
from kitti.layout import fingerprint_files
from pipeline.cache import Artifact, ArtifactCache, file_digest, make_key
from pipeline.detectors import get as get_detector

Frames = Sequence[str]


@dataclass(frozen=True)
class StageKey:
    """Everything that decides one artifact: ``key`` is its cache key."""

    stage: str
    code_version: str
    settings: Any
    inputs: tuple[str, ...]

    @property
    def key(self) -> str:
        return make_key(self.stage, self.code_version, self.settings, self.inputs)

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.key}"

    def build(self, cache: ArtifactCache, produce: Callable[[Path], Mapping[str, Any] | None], *,
              extra_manifest: Mapping[str, Any] | None = None) -> Artifact:
        """``cache.build`` with this key's parts (a hit or a fresh, atomically written build)."""
        return cache.build(self.stage, code_version=self.code_version, settings=self.settings,
                           inputs=self.inputs, produce=produce, extra_manifest=extra_manifest)

    def build_sharded(self, cache: ArtifactCache, produce: Callable[[Path, tuple[str, ...]], Mapping[str, Any] | None],
                      *, frame_ids: Frames, shard: Any = None,
                      extra_manifest: Mapping[str, Any] | None = None) -> tuple[Artifact | None, str]:
        """:func:`pipeline.sharding.build_sharded` with this key's parts: the artifact (or this
        shard's part of it while others are missing) and a one-line status."""
        from pipeline.sharding import build_sharded

        return build_sharded(cache, self.stage, code_version=self.code_version, settings=self.settings,
                             inputs=self.inputs, frame_ids=frame_ids, produce=produce, shard=shard,
                             extra_manifest=extra_manifest)


# ---------------------------------------------------------------- ids of non-artifact inputs
def data_id(root: KittiRoot, frames: Frames, kinds: Sequence[str]) -> str:
    """``data:`` + the fingerprint of ``kinds`` of ``frames`` under ``root``."""
    return "data:" + root.fingerprint(tuple(frames), tuple(kinds))


def folder_id(prefix: str, folder: Path, frames: Frames, suffix: str) -> str:
    """``<prefix>:`` + the fingerprint of ``folder/<frame><suffix>`` for every frame."""
    folder = Path(folder)
    return f"{prefix}:" + fingerprint_files((f"{f}{suffix}", folder / f"{f}{suffix}") for f in frames)


def file_id(prefix: str, path: Path) -> str:
    """``<prefix>:`` + the content hash of a user file."""
    return f"{prefix}:{file_digest(Path(path))}"


BOXES2D_DERIVED = ("simulated", "gt")


def boxes2d_id(boxes2d: str | Path) -> str:
    """Id of a ``--boxes2d`` value: derived from labels, a detection file (hashed) or a folder of
    KITTI-format 2D detections (every file's content hashed)."""
    if str(boxes2d) in BOXES2D_DERIVED:
        return f"boxes2d:{boxes2d}"
    p = Path(boxes2d)
    if p.is_file():
        return file_id("boxes2d-file", p)
    if p.is_dir():
        files = sorted(p.glob("*.txt"))
        return "boxes2d-folder:" + fingerprint_files((q.name, q) for q in files)
    raise KittiFormatError(p, None, "--boxes2d: expected simulated, gt, a detection file or a folder")


# ---------------------------------------------------------------- depth
def depth_train(root: KittiRoot, frames: Frames, settings: Any) -> StageKey:
    """depth-train: images, calib, labels (fg masks) and depth ground truth of the train frames."""
    import depth

    return StageKey("depth-train", depth.CODE_VERSION, settings,
                    (data_id(root, frames, ("image_2", "calib", "label_2", "depth_2")),))


def depth_infer(root: KittiRoot, frames: Frames, checkpoint: str, *, merge: str, variant: str,
                flip: bool = False, dominant: bool = False) -> StageKey:
    """depth-infer: a checkpoint (artifact ref or ``checkpoint:`` id) on the frames' images;
    ``merge="mask"`` also reads the labels. ``flip`` (test-time flip) and ``dominant`` (the
    dominant-bin maps as well) enter the key only when set, so keys without them are those of
    earlier versions."""
    import depth

    kinds = ("image_2", "calib") + (("label_2",) if merge == "mask" else ())
    fields: dict[str, Any] = {"merge": merge, "variant": variant, **({"flip": True} if flip else {}),
                              **({"dominant": True} if dominant else {})}
    return StageKey("depth-infer", depth.CODE_VERSION, fields,
                    (checkpoint, data_id(root, frames, kinds)))


def depth_gt(root: KittiRoot, frames: Frames) -> StageKey:
    """depth-gt: the ground truth (depth_2) as depth artifacts (the oracle's "prediction")."""
    import depth

    return StageKey("depth-gt", depth.CODE_VERSION, {"variant": "oracle"},
                    (data_id(root, frames, ("image_2", "depth_2")),))


def depth_eval(root: KittiRoot, frames: Frames, depth_maps: str) -> StageKey:
    """depth-eval (Table 2): depth maps against depth_2, fg from label_2."""
    import depth

    return StageKey("depth-eval", depth.CODE_VERSION, {"metrics": "table2"},
                    (depth_maps, data_id(root, frames, ("label_2", "depth_2"))))


# ---------------------------------------------------------------- pseudo-LiDAR
def pseudolidar(root: KittiRoot, frames: Frames, settings: Any, depth_maps: str) -> StageKey:
    """pseudolidar: depth maps (artifact ref, ``depth-dir:`` id, or ``gt-depth:`` for depth_2
    read directly) back-projected with the frames' calibration."""
    import pseudolidar as pl

    return StageKey("pseudolidar", pl.CODE_VERSION, settings,
                    (depth_maps, data_id(root, frames, ("calib", "image_2"))))


def gt_depth_id(root: KittiRoot, frames: Frames) -> str:
    """Id of the root's depth_2 maps used directly as pseudo-LiDAR input (``--from-gt-depth``)."""
    return "gt-depth:" + root.fingerprint(tuple(frames), ("depth_2",))


# ---------------------------------------------------------------- detection
def detect_key_settings(settings: Any) -> Any:
    """The detector settings that decide a trained model (the thread count does not)."""
    return settings.with_(num_threads=0) if hasattr(settings, "num_threads") else settings


def infer_key_settings(settings: Any) -> Any:
    """The detector settings that decide results from a given model: the detector's
    ``inference_key()`` when it has one (training-only fields left out), else all of them."""
    return settings.inference_key() if hasattr(settings, "inference_key") else detect_key_settings(settings)


#: The 2D-box input id of a detector that takes none (AVOD).
NO_BOXES2D = "no-boxes2d"


def detect_train(root: KittiRoot, frames: Frames, settings: Any, points: str, *,
                 detector: str = "fpointnet") -> StageKey:
    """detect-train: clouds (artifact ref or ``points-folder:`` id) + the frames' labels; the code
    version is the detector's registry entry's (:mod:`pipeline.detectors`)."""
    return StageKey("detect-train", get_detector(detector).code_version, detect_key_settings(settings),
                    (f"detector:{detector}", points,
                     data_id(root, frames, ("calib", "label_2", "image_2"))))


def _results_inputs(root: KittiRoot, frames: Frames, points: str, boxes2d: str) -> tuple[str, ...]:
    derived = boxes2d.startswith("boxes2d:")  # simulated / gt boxes come from the labels
    kinds = ("calib", "image_2") + (("label_2",) if derived else ())
    return (points, boxes2d, data_id(root, frames, kinds))


def detect_infer(root: KittiRoot, frames: Frames, settings: Any, points: str, model: str,
                 boxes2d: str, *, detector: str = "fpointnet") -> StageKey:
    """detect-infer: a model (artifact ref or ``model-file:``) on clouds with 2D boxes.

    ``boxes2d`` is an id (:func:`boxes2d_id`, or the ref of a 2D-detection artifact); a detector
    that takes no 2D boxes (AVOD: ``uses_boxes2d`` False in its registry entry) always has
    :data:`NO_BOXES2D`."""
    det = get_detector(detector)
    if not det.uses_boxes2d:
        boxes2d = NO_BOXES2D
    p, b, d = _results_inputs(root, frames, points, boxes2d)
    return StageKey("detect-infer", det.code_version, infer_key_settings(settings),
                    (f"detector:{detector}", p, model, b, d))


def detect_baseline(root: KittiRoot, frames: Frames, settings: Any, points: str, boxes2d: str, *,
                    detector: str = "fpointnet") -> StageKey:
    """detect-baseline: a detector's model-free baseline (F-PointNet's trivial one) on the same
    frustums. The detector's name is not an input (the keys of earlier versions stay)."""
    return StageKey("detect-baseline", get_detector(detector).code_version, infer_key_settings(settings),
                    _results_inputs(root, frames, points, boxes2d))


# ---------------------------------------------------------------- 2D detector
def detect2d_train(root: KittiRoot, frames: Frames, settings: Any) -> StageKey:
    """detect2d-train: the frames' images, labels and calibration (its image checks read it)."""
    import detect2d

    return StageKey("detect2d-train", detect2d.CODE_VERSION, settings.training_key(),
                    (data_id(root, frames, ("image_2", "label_2", "calib")),))


def detect2d_infer(root: KittiRoot, frames: Frames, model: str, *, device: str = "auto",
                   score_thresh: float | None = None, evaluate: bool = True,
                   options: dict | None = None) -> StageKey:
    """detect2d-infer: a detect2d-train artifact on the frames' images; with ``evaluate`` the
    artifact also holds AP_2D against the frames' labels. ``options``: inference fields that
    replace the model's (``Detect2DSettings.inference_options``); None keeps the model's."""
    import detect2d

    kinds = ("image_2", "calib") + (("label_2",) if evaluate else ())
    extra = {} if options is None else {"options": {k: list(v) if isinstance(v, tuple) else v
                                                    for k, v in sorted(options.items())}}
    return StageKey("detect2d-infer", detect2d.CODE_VERSION,
                    {"device": device, "score_thresh": score_thresh, "evaluate": evaluate, **extra},
                    (model, data_id(root, frames, kinds)))


# ---------------------------------------------------------------- evaluation
EVAL_SETTINGS = {"classes": ["Car", "Pedestrian", "Cyclist"], "thresholds": ["devkit", "loose"]}


def kitti_eval(root: KittiRoot, frames: Frames, results: str) -> StageKey:
    """eval: KITTI AP of a results artifact against the frames' labels."""
    import kitti_eval as ke

    return StageKey("eval", ke.CODE_VERSION, EVAL_SETTINGS, (results, data_id(root, frames, ("label_2",))))
