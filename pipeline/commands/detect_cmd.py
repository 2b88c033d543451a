"""``foresee detect train|infer|baseline``: Frustum-PointNet v1 (or, with ``--detector avod``,
AVOD: :mod:`pipeline.commands.avod_cmd`) through the artifact cache.

Artifacts: ``detect-train/<key>/model.pt`` (plus ``train_log.jsonl``, ``summary.json``);
``detect-infer/<key>/data/NNNNNN.txt`` and ``detect-baseline/<key>/data/NNNNNN.txt`` (KITTI
results). An interrupted training keeps its last checkpoint as ``detect-train/<key>.resume.pt``
and the next identical command resumes from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from kitti.errors import KittiFormatError
from kitti.layout import KittiRoot
from pipeline import keys
from pipeline.cache import ArtifactCache
from pipeline.commands.cache_cmd import check_same_dataset, workdir_option
from pipeline.sharding import shard_option
from pipeline.validate import validate



def _resolve_points(cache: ArtifactCache, points: str, frame_ids: tuple[str, ...],
                    root: KittiRoot) -> tuple[Path, str]:
    """(folder of NNNNNN.bin, input id) from a cache ref or a plain folder."""
    p = Path(points)
    if points == "lidar":  # the root's own scans, as in `foresee show` and the chain's lidar row
        p = root.folder("velodyne")
    if p.is_dir() and not (p / "manifest.json").is_file():
        folder = p / "velodyne" if (p / "velodyne").is_dir() else p
        return folder, keys.folder_id("points-folder", folder, frame_ids, ".bin")
    art = cache.resolve(points)
    check_same_dataset(art, root, "point-cloud artifact")
    folder = art.path / "velodyne"
    if not folder.is_dir():
        raise KittiFormatError(art.path, None, "artifact has no velodyne/ folder of clouds")
    return folder, art.ref


def _resolve_model(cache: ArtifactCache, model: str) -> tuple[Path, str]:
    p = Path(model)
    if p.is_file():
        return p, keys.file_id("model-file", p)
    art = cache.resolve(model)
    return art.path / "model.pt", art.ref


def _boxes2d_input(boxes2d: str) -> str:
    try:
        return keys.boxes2d_id(boxes2d)
    except KittiFormatError:
        raise click.BadParameter(f"{boxes2d}: expected gt, simulated, a file or a folder",
                                 param_hint="--boxes2d") from None


def _settings(preset_name: str, **overrides):
    from detection.frustum_pointnet.settings import preset

    changes = {k: v for k, v in overrides.items() if v is not None}
    if "classes" in changes:
        changes["classes"] = tuple(c.strip() for c in changes["classes"].split(",") if c.strip())
    return preset(preset_name).with_(**changes)


def _common(f):
    f = click.option("--quiet", is_flag=True, help="No progress bars.")(f)
    f = click.option("--detector", type=click.Choice(["fpointnet", "avod"]), default="fpointnet",
                     show_default=True, help="Frustum-PointNet v1 (needs 2D boxes) or AVOD (does not).")(f)
    f = click.option("--threads", "num_threads", type=int, default=None,
                     help="Torch CPU threads (default: the preset's; 0 = torch's default).")(f)
    f = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                     help="Device (default: the preset's, auto = CUDA when present).")(f)
    f = click.option("--seed", type=int, default=None, help="Seed (default: the preset's).")(f)
    f = click.option("--num-points", type=int, default=None, help="Points per frustum.")(f)
    f = click.option("--classes", default=None, help="Comma-separated classes (Car,Pedestrian,Cyclist).")(f)
    f = click.option("--preset", "preset_name", type=click.Choice(["paper", "cpu-small"]),
                     default="cpu-small", show_default=True, help="Settings preset.")(f)
    f = click.option("--split", default=None, help="Split name (ImageSets/<name>.txt) or file.")(f)
    f = click.option("--points", required=True,
                     help="Clouds: a cache ref (stage/key with velodyne/), a folder of NNNNNN.bin, or lidar "
                          "(the root's own velodyne scans).")(f)
    f = click.option("--data", "data_root", required=True, type=click.Path(path_type=Path, exists=True),
                     help="KITTI-format root (calib, label_2, image_2).")(f)
    return workdir_option(f)


@click.group("detect")
def detect_group() -> None:
    """Frustum-PointNet v1: train on clouds, detect 3D boxes from 2D boxes."""


@detect_group.command("train")
@_common
@click.option("--epochs", type=int, default=None, help="Epochs (default: the preset's; F-PointNet).")
@click.option("--steps", type=int, default=None, help="Optimiser steps (default: the preset's; AVOD).")
@click.option("--batch-size", type=int, default=None, help="Batch size (default: the preset's).")
@click.option("--resume", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A checkpoint.pt to resume from (automatic after an interrupted run).")
def detect_train(workdir: Path, data_root: Path, points: str, split: str | None, preset_name: str,
                 classes: str | None, num_points: int | None, seed: int | None, device: str | None,
                 num_threads: int | None, quiet: bool, detector: str, epochs: int | None, steps: int | None,
                 batch_size: int | None, resume: Path | None) -> None:
    """Train F-PointNet v1 or AVOD on the clouds of a split (default split: train)."""
    from kitti.dist import env_shard

    if env_shard().count > 1:  # every rank would publish the artifact: torchrun runs the module
        raise click.UsageError("under torchrun, run 'python -m detection.frustum_pointnet.train' "
                               "(docs/scaling.md)")
    if detector == "avod":
        from pipeline.commands.avod_cmd import avod_settings, avod_train

        _reject_options("F-PointNet", classes=classes, num_points=num_points, epochs=epochs,
                        batch_size=batch_size)
        settings = avod_settings(preset_name, seed=seed, device=device, num_threads=num_threads, steps=steps)
        return avod_train(workdir, data_root, points, split, settings, quiet, resume)
    _reject_options("AVOD", steps=steps)
    from detection.frustum_pointnet.train import train_fpointnet

    settings = _settings(preset_name, classes=classes, num_points=num_points, seed=seed,
                         device=device, num_threads=num_threads, epochs=epochs, batch_size=batch_size)
    root = KittiRoot(data_root)
    frame_ids = root.split(split or "train")
    cache = ArtifactCache(workdir)
    points_dir, points_ref = _resolve_points(cache, points, frame_ids, root)
    validate(root, [(frame_ids, ("calib", "label_2", "image_2"))], workdir=workdir, clouds=(points_dir, frame_ids))
    key = keys.detect_train(root, frame_ids, settings, points_ref)
    resume_file = cache.workdir / key.stage / f"{key.key}.resume.pt"

    def produce(tmp: Path) -> dict:
        start = resume or (resume_file if resume_file.is_file() else None)
        try:
            summary = train_fpointnet(data_root, points_dir, frame_ids, settings, tmp,
                                      progress=not quiet, resume=start)
        except BaseException:
            ck = tmp / "checkpoint.pt"
            if ck.is_file():
                resume_file.parent.mkdir(parents=True, exist_ok=True)
                os.replace(ck, resume_file)
            raise
        (tmp / "checkpoint.pt").unlink(missing_ok=True)
        resume_file.unlink(missing_ok=True)
        return summary

    art = key.build(cache, produce)
    s = art.manifest.get("summary", {})
    state = "cached" if art.cached else "built"
    click.echo(f"{art.ref} ({state}): {s.get('frustums_train')} frustums, held-out seg acc "
               f"{_f(s.get('holdout_seg_accuracy'))}, IoU3D {_f(s.get('holdout_mean_iou_3d'))} "
               f"(baseline {_f(s.get('holdout_baseline_mean_iou_3d'))}), {s.get('seconds')} s "
               f"-> {art.path / 'model.pt'}")


def _reject_options(owner: str, **given) -> None:
    """Options of the other detector that were given -> one clear line (exit 2)."""
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        raise click.UsageError(f"--{bad[0].replace('_', '-')} is an option of {owner} only")


def _f(v) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"


@detect_group.command("infer")
@_common
@click.option("--model", "model_ref", required=True, help="A detect-train ref or a model.pt path.")
@click.option("--boxes2d", default="simulated", show_default=True,
              help="2D boxes: simulated (from ground truth, seeded), gt, an rgb_detection file or a "
                   "folder of KITTI-format 2D detections.")
@shard_option
def detect_infer(workdir: Path, data_root: Path, points: str, split: str | None, preset_name: str,
                 classes: str | None, num_points: int | None, seed: int | None, device: str | None,
                 num_threads: int | None, quiet: bool, detector: str, model_ref: str, boxes2d: str,
                 shard) -> None:
    """Write one KITTI result file per frame of a split (default split: val)."""
    if detector == "avod":
        from pipeline.commands.avod_cmd import avod_infer, avod_settings

        _reject_options("F-PointNet", classes=classes, num_points=num_points)
        settings = avod_settings(preset_name, seed=seed, device=device, num_threads=num_threads)
        return avod_infer(workdir, data_root, points, split, settings, quiet, model_ref, shard)
    from detection.frustum_pointnet.infer import infer_fpointnet

    settings = _settings(preset_name, classes=classes, num_points=num_points, seed=seed, device=device,
                         num_threads=num_threads)
    cache = ArtifactCache(workdir)
    root, frame_ids, points_dir, points_id = _results_inputs(cache, data_root, points, split, boxes2d)
    model_path, model_id = _resolve_model(cache, model_ref)
    key = keys.detect_infer(root, frame_ids, settings, points_id, model_id, _boxes2d_input(boxes2d))
    art, status = key.build_sharded(
        cache, frame_ids=frame_ids, shard=shard,
        produce=lambda tmp, frames: infer_fpointnet(data_root, points_dir, frames, model_path, settings,
                                                    tmp / "data", boxes2d=boxes2d, progress=not quiet))
    _echo_results(art, status)


@detect_group.command("baseline")
@_common
@click.option("--boxes2d", default="simulated", show_default=True,
              help="2D boxes: simulated, gt, an rgb_detection file or a KITTI 2D detection folder.")
@shard_option
def detect_baseline(workdir: Path, data_root: Path, points: str, split: str | None, preset_name: str,
                    classes: str | None, num_points: int | None, seed: int | None, device: str | None,
                    num_threads: int | None, quiet: bool, detector: str, boxes2d: str, shard) -> None:
    """The trivial baseline (mean size at the frustum points' median, heading 0) as KITTI results."""
    if detector != "fpointnet":
        raise click.UsageError("detect baseline is F-PointNet's trivial baseline (no --detector avod)")
    from detection.frustum_pointnet.infer import infer_trivial_baseline

    settings = _settings(preset_name, classes=classes, num_points=num_points, seed=seed, device=device,
                         num_threads=num_threads)
    cache = ArtifactCache(workdir)
    root, frame_ids, points_dir, points_id = _results_inputs(cache, data_root, points, split, boxes2d)
    key = keys.detect_baseline(root, frame_ids, settings, points_id, _boxes2d_input(boxes2d))
    art, status = key.build_sharded(
        cache, frame_ids=frame_ids, shard=shard,
        produce=lambda tmp, frames: infer_trivial_baseline(data_root, points_dir, frames, settings,
                                                           tmp / "data", boxes2d=boxes2d, progress=not quiet))
    _echo_results(art, status)


def _results_inputs(cache: ArtifactCache, data_root: Path, points: str,
                    split: str | None, boxes2d: str) -> tuple[KittiRoot, tuple[str, ...], Path, str]:
    """The root, the frames of the split (default val), the clouds' folder and its input id;
    everything they and the 2D boxes read is validated."""
    root = KittiRoot(data_root)
    frame_ids = root.split(split or "val")
    points_dir, points_id = _resolve_points(cache, points, frame_ids, root)
    derived = ("label_2",) if str(boxes2d) in keys.BOXES2D_DERIVED else ()
    validate(root, [(frame_ids, ("calib", "image_2") + derived)], workdir=cache.workdir,
             clouds=(points_dir, frame_ids), boxes2d=boxes2d, boxes2d_frames=frame_ids)
    return root, frame_ids, points_dir, points_id


def _echo_results(art, status: str = "complete") -> None:
    if art is None:  # a shard of several, not the last one
        click.echo(status)
        return
    s = art.manifest.get("summary", {})
    state = "cached" if art.cached else ("built" if "shards" not in s else f"built, {status}")
    click.echo(f"{art.ref} ({state}): {s.get('frames')} frames, {s.get('boxes_3d')} boxes from "
               f"{s.get('detections_2d')} 2D boxes [{s.get('boxes2d')}]; skipped: "
               f"{s.get('skipped_no_points')} empty frustums, {s.get('skipped_few_points')} with < 5 "
               f"points, {s.get('skipped_small')} low 2D boxes; {s.get('frames_per_s')} frames/s "
               f"-> {art.path / 'data'}")
