"""The 3D detectors, by name: one frozen :class:`Detector` record each in :data:`DETECTORS`.

Everything outside the detector's own package reads this registry: the chain
(:mod:`pipeline.stages`: its detect-train / detect-infer / eval nodes per detector), the cache keys
(:mod:`pipeline.keys`: code version, whether 2D boxes enter the key), the command line (``foresee
detect train|infer|baseline --detector NAME``, ``foresee run --detector``, their ``--help``), ``make
gpu-check`` (:mod:`pipeline.gpu_check`) and the report (row labels, :mod:`pipeline.run`).

Adding a detector
-----------------
1. Write its stage package under ``detection/`` (frozen settings with the presets ``paper`` and
   ``cpu-small``, a train function that writes ``model.pt`` and an infer function that writes one
   KITTI result file per frame, a ``CODE_VERSION``); it imports only ``kitti/`` and ``backbones/``.
2. Add one :class:`Detector` to :data:`DETECTORS` below: its preset, train and infer adapters (the
   package is imported lazily, inside them, so ``foresee --help`` stays fast), its command-line
   options, one-line summaries of its artifacts, and optionally a ``gpu_check``.

Nothing else changes: ``foresee run --detector NAME`` gets one Table-4 row per cloud labelled
``label``, ``--set NAME.FIELD=VALUE`` reaches its settings, and ``evals.json`` holds its evaluations.

This module imports no stage package at import time except the packages' ``__init__`` (for their
``CODE_VERSION``), and no other ``pipeline`` module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import detection.avod as _avod_pkg
import detection.frustum_pointnet as _fpn_pkg


@dataclass(frozen=True)
class CliOption:
    """One detector-specific option of ``foresee detect`` (a field of the detector's settings).

    Attributes:
        flag: the option, e.g. ``--num-points``; click names the parameter after it (``num_points``).
        field: the settings field it sets.
        type: click type of the value (``int``, ``str``).
        help: help text (the detectors that have the option are appended).
        commands: the ``foresee detect`` sub-commands that take it.
        parse: turns the command-line value into the field's value (e.g. a comma list -> tuple).
    """

    flag: str
    field: str
    type: Any
    help: str
    commands: tuple[str, ...] = ("train", "infer", "baseline")
    parse: Callable[[Any], Any] | None = None

    @property
    def param(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Detector:
    """What the chain, the keys, the command line, gpu-check and the report know of one detector.

    Attributes:
        name: registry key (``foresee run --detector NAME``, node names ``detect-train/NAME/...``).
        title: human name in messages (``F-PointNet``).
        help: one line for ``--help``.
        label: the report's row prefix (``F-PN``, ``AVOD``; the paper's Table 4 names).
        preset: preset name -> frozen settings (``.with_(**changes)``; fields ``seed``, ``device``,
            ``num_threads``).
        train: ``train(data_root, points_dir, frame_ids, settings, out_dir, *, progress, resume)
            -> summary``; writes ``model_file`` (and logs) into ``out_dir``, no optimiser checkpoint
            once it succeeded.
        infer: ``infer(data_root, points_dir, frame_ids, model_path, settings, out_dir, *, boxes2d,
            progress) -> summary``; writes ``out_dir/data/NNNNNN.txt`` (KITTI results), and whatever
            else the artifact holds (AVOD: ``out_dir/planes/``).
        code_version: the code version of its detect-train / detect-infer keys.
        model_file: the file of the detect-train artifact that infer loads.
        uses_boxes2d: infer reads 2D boxes (F-PointNet); otherwise its keys hold
            ``keys.NO_BOXES2D`` and the chain never waits for the 2D detector.
        options: its options of ``foresee detect``.
        describe_train, describe_infer: one line of a detect-train / detect-infer artifact's
            summary (what ``foresee detect`` echoes after the ref).
        baseline: ``foresee detect baseline`` (a model-free baseline; same signature as infer
            without ``model_path``), None when it has none.
        torchrun_module: the module to run under torchrun for multi-process training, if any.
        gpu_check: ``gpu_check(device, steps) -> {"train": {...}, "infer": {...}}`` on the
            ``paper`` preset with synthetic inputs (``make gpu-check``); None: not measured.
    """

    name: str
    title: str
    help: str
    label: str
    preset: Callable[[str], Any]
    train: Callable[..., Mapping[str, Any]]
    infer: Callable[..., Mapping[str, Any]]
    code_version: str
    describe_train: Callable[[Mapping[str, Any]], str]
    describe_infer: Callable[[Mapping[str, Any]], str]
    model_file: str = "model.pt"
    uses_boxes2d: bool = True
    options: tuple[CliOption, ...] = ()
    baseline: Callable[..., Mapping[str, Any]] | None = None
    torchrun_module: str | None = None
    gpu_check: Callable[[Any, int], Mapping[str, Any]] | None = None

    def settings(self, preset_name: str, **given: Any) -> Any:
        """The preset with the command-line values given (None = not given) applied."""
        changes = {k: v for k, v in given.items() if v is not None}
        by_param = {o.param: o for o in self.options}
        for k in list(changes):
            opt = by_param.get(k)
            if opt is not None:
                value = changes.pop(k)
                changes[opt.field] = opt.parse(value) if opt.parse else value
        return self.preset(preset_name).with_(**changes)


def _f(v) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"


def _trained(out: Path, summary: Mapping[str, Any]) -> Mapping[str, Any]:
    """A finished training's summary, its optimiser checkpoint removed (model.pt is the artifact)."""
    (Path(out) / "checkpoint.pt").unlink(missing_ok=True)
    return summary


# ---------------------------------------------------------------------------- F-PointNet
def _fpn_preset(name: str) -> Any:
    from detection.frustum_pointnet.settings import preset

    return preset(name)


def _fpn_train(data_root: Path, points_dir: Path, frames, settings: Any, out: Path, *, progress: bool = True,
               resume: Path | None = None) -> Mapping[str, Any]:
    from detection.frustum_pointnet.train import train_fpointnet

    return _trained(out, train_fpointnet(data_root, points_dir, frames, settings, out, progress=progress,
                                         resume=resume))


def _fpn_infer(data_root: Path, points_dir: Path, frames, model: Path, settings: Any, out: Path, *,
               boxes2d: str | Path = "simulated", progress: bool = True) -> Mapping[str, Any]:
    from detection.frustum_pointnet.infer import infer_fpointnet

    return infer_fpointnet(data_root, points_dir, frames, model, settings, Path(out) / "data", boxes2d=boxes2d,
                           progress=progress)


def _fpn_baseline(data_root: Path, points_dir: Path, frames, settings: Any, out: Path, *,
                  boxes2d: str | Path = "simulated", progress: bool = True) -> Mapping[str, Any]:
    from detection.frustum_pointnet.infer import infer_trivial_baseline

    return infer_trivial_baseline(data_root, points_dir, frames, settings, Path(out) / "data", boxes2d=boxes2d,
                                  progress=progress)


def _fpn_describe_train(s: Mapping[str, Any]) -> str:
    return (f"{s.get('frustums_train')} frustums, held-out seg acc {_f(s.get('holdout_seg_accuracy'))}, IoU3D "
            f"{_f(s.get('holdout_mean_iou_3d'))} (baseline {_f(s.get('holdout_baseline_mean_iou_3d'))}), "
            f"{s.get('seconds')} s")


def _fpn_describe_infer(s: Mapping[str, Any]) -> str:
    return (f"{s.get('frames')} frames, {s.get('boxes_3d')} boxes from {s.get('detections_2d')} 2D boxes "
            f"[{s.get('boxes2d')}]; skipped: {s.get('skipped_no_points')} empty frustums, "
            f"{s.get('skipped_few_points')} with < 5 points, {s.get('skipped_small')} low 2D boxes; "
            f"{s.get('frames_per_s')} frames/s")


def _fpn_gpu_check(device: Any, steps: int) -> Mapping[str, Any]:
    from pipeline.gpu_steps import fpointnet_inference, fpointnet_train_steps

    settings = _fpn_preset("paper")
    return {"train": fpointnet_train_steps(settings, device, steps=steps),
            "infer": fpointnet_inference(settings, device, batches=20)}


def _classes(value: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip())


# ---------------------------------------------------------------------------- AVOD
def _avod_preset(name: str) -> Any:
    from detection.avod.settings import preset

    return preset(name)


def _avod_train(data_root: Path, points_dir: Path, frames, settings: Any, out: Path, *, progress: bool = True,
                resume: Path | None = None) -> Mapping[str, Any]:
    from detection.avod.train import train_avod

    return _trained(out, train_avod(data_root, points_dir, frames, settings, out, progress=progress, resume=resume))


def _avod_infer(data_root: Path, points_dir: Path, frames, model: Path, settings: Any, out: Path, *,
                boxes2d: str | Path | None = None, progress: bool = True) -> Mapping[str, Any]:
    from detection.avod.infer import infer_avod

    del boxes2d  # AVOD finds its objects in the BEV itself
    return infer_avod(data_root, points_dir, frames, model, settings, Path(out) / "data",
                      planes_out=Path(out) / "planes", progress=progress)


def _avod_describe_train(s: Mapping[str, Any]) -> str:
    return (f"{s.get('steps')} steps on {s.get('frames_with_objects')} frames, final loss {s.get('final_total')}, "
            f"{s.get('cpu_seconds')} CPU s / {s.get('seconds')} s")


def _avod_describe_infer(s: Mapping[str, Any]) -> str:
    return (f"{s.get('frames')} frames, {s.get('boxes')} boxes, {s.get('frames_without_boxes')} frames without; "
            f"{s.get('frames_per_s')} frames/s")


# ---------------------------------------------------------------------------- the registry
#: 3D detectors by name, in report order (``foresee run --detector NAME[,NAME]``).
DETECTORS: dict[str, Detector] = {
    "fpointnet": Detector(
        name="fpointnet", title="F-PointNet", label="F-PN",
        help="Frustum-PointNet v1, a 3D box per 2D box from the points of its frustum (needs 2D boxes)",
        preset=_fpn_preset, train=_fpn_train, infer=_fpn_infer, code_version=_fpn_pkg.CODE_VERSION,
        describe_train=_fpn_describe_train, describe_infer=_fpn_describe_infer, baseline=_fpn_baseline,
        torchrun_module="detection.frustum_pointnet.train", gpu_check=_fpn_gpu_check,
        options=(
            CliOption("--classes", "classes", str, "Comma-separated classes (Car,Pedestrian,Cyclist).",
                      parse=_classes),
            CliOption("--num-points", "num_points", int, "Points per frustum."),
            CliOption("--epochs", "epochs", int, "Epochs (default: the preset's).", ("train",)),
            CliOption("--batch-size", "batch_size", int, "Batch size (default: the preset's).", ("train",)),
        )),
    "avod": Detector(
        name="avod", title="AVOD", label="AVOD",
        help="AVOD-FPN, two-stage anchors on the bird's-eye view and the image (no 2D boxes)",
        preset=_avod_preset, train=_avod_train, infer=_avod_infer, code_version="avod-" + _avod_pkg.CODE_VERSION,
        describe_train=_avod_describe_train, describe_infer=_avod_describe_infer, uses_boxes2d=False,
        torchrun_module="detection.avod.train",
        options=(CliOption("--steps", "steps", int, "Optimiser steps (default: the preset's).", ("train",)),)),
}


def get(name: str) -> Detector:
    """The detector called ``name``; a one-line ``ValueError`` naming the known ones otherwise."""
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}") from None


def settings_from_dict(name: str, values: Mapping[str, Any]) -> Any:
    """Detector ``name``'s settings dataclass from its JSON form (a model file's ``settings``)."""
    return type(get(name).preset("cpu-small")).from_dict(values)


def names_help() -> str:
    """``name: help`` of every detector, one clause each (for ``--help`` texts)."""
    return "; ".join(f"{d.name}: {d.help}" for d in DETECTORS.values())


def titles() -> str:
    """The detectors' titles, e.g. ``F-PointNet, AVOD``."""
    return ", ".join(d.title for d in DETECTORS.values())
