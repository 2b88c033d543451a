"""``foresee detect train|infer|baseline --detector NAME``: a 3D detector of the registry
(:data:`pipeline.detectors.DETECTORS`: Frustum-PointNet v1, AVOD) through the artifact cache.

The detector's entry gives everything detector-specific: its options (``--epochs``, ``--steps``
...), preset, train / infer / baseline functions, the model file and the one-line summaries; the
keys are those of :mod:`pipeline.keys`, shared with ``foresee run``.

Artifacts: ``detect-train/<key>/model.pt`` (plus ``train_log.jsonl``, ``summary.json``; AVOD also
``planes/``); ``detect-infer/<key>/data/NNNNNN.txt`` (KITTI results; AVOD also ``planes/``) and
``detect-baseline/<key>/data/NNNNNN.txt``. An interrupted training keeps its last checkpoint as
``detect-train/<key>.resume.pt`` and the next identical command resumes from it.
"""

from __future__ import annotations

from pathlib import Path

import click

from kitti.errors import KittiFormatError
from kitti.layout import KittiRoot
from pipeline import keys
from pipeline.resume import resumable
from pipeline.cache import ArtifactCache
from pipeline.commands.cache_cmd import check_same_dataset, workdir_option
from pipeline.detectors import DETECTORS, Detector, get as get_detector, names_help, titles
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


def _resolve_model(cache: ArtifactCache, model: str, model_file: str = "model.pt") -> tuple[Path, str]:
    """(model file, input id) from a file or a detect-train ref (its ``model_file``)."""
    p = Path(model)
    if p.is_file():
        return p, keys.file_id("model-file", p)
    art = cache.resolve(model)
    return art.path / model_file, art.ref


def _boxes2d_input(boxes2d: str) -> str:
    try:
        return keys.boxes2d_id(boxes2d)
    except KittiFormatError:
        raise click.BadParameter(f"{boxes2d}: expected gt, simulated, a file or a folder",
                                 param_hint="--boxes2d") from None


def _detector_options(command: str):
    """The options of every registered detector that ``command`` takes (each one once; its help
    names the detectors that have it)."""
    by_flag: dict[str, list] = {}
    for det in DETECTORS.values():
        for opt in det.options:
            if command in opt.commands:
                by_flag.setdefault(opt.flag, []).append((det, opt))

    def decorate(f):
        for flag, pairs in reversed(by_flag.items()):
            opt = pairs[0][1]
            owners = ", ".join(d.title for d, _ in pairs)
            f = click.option(flag, opt.param, type=opt.type, default=None, help=f"{opt.help} [{owners}]")(f)
        return f

    return decorate


def _settings(det: Detector, command: str, preset_name: str, given: dict):
    """The detector's preset with the given options; an option of another detector -> one line."""
    own = {o.param for o in det.options if command in o.commands}
    for name, value in given.items():
        if value is not None and name not in own and name not in _COMMON_FIELDS:
            owners = [d.title for d in DETECTORS.values() if any(o.param == name for o in d.options)]
            raise click.UsageError(f"--{name.replace('_', '-')} is an option of {' / '.join(owners)} only")
    try:
        return det.settings(preset_name, **given)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


#: options every detector takes (fields of every detector's settings).
_COMMON_FIELDS = ("seed", "device", "num_threads")


def _common(command: str):
    def decorate(f):
        f = _detector_options(command)(f)
        f = click.option("--quiet", is_flag=True, help="No progress bars.")(f)
        f = click.option("--detector", type=click.Choice(list(DETECTORS)), default="fpointnet",
                         show_default=True, help=f"The 3D detector ({names_help()}).")(f)
        f = click.option("--threads", "num_threads", type=int, default=None,
                         help="Torch CPU threads (default: the preset's; 0 = torch's default).")(f)
        f = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                         help="Device (default: the preset's, auto = CUDA when present).")(f)
        f = click.option("--seed", type=int, default=None, help="Seed (default: the preset's).")(f)
        f = click.option("--preset", "preset_name", type=click.Choice(["paper", "cpu-small"]),
                         default="cpu-small", show_default=True, help="Settings preset.")(f)
        f = click.option("--split", default=None, help="Split name (ImageSets/<name>.txt) or file.")(f)
        f = click.option("--points", required=True,
                         help="Clouds: a cache ref (stage/key with velodyne/), a folder of NNNNNN.bin, or lidar "
                              "(the root's own velodyne scans).")(f)
        f = click.option("--data", "data_root", required=True, type=click.Path(path_type=Path, exists=True),
                         help="KITTI-format root (calib, label_2, image_2).")(f)
        return workdir_option(f)

    return decorate


@click.group("detect", help=f"3D detectors ({titles()}): train on clouds, write KITTI results. "
                            f"--detector NAME picks one: {names_help()}.")
def detect_group() -> None:
    pass


@detect_group.command("train")
@_common("train")
@click.option("--resume", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A checkpoint.pt to resume from (automatic after an interrupted run).")
def detect_train(workdir: Path, data_root: Path, points: str, split: str | None, preset_name: str,
                 quiet: bool, detector: str, resume: Path | None, **given) -> None:
    """Train a 3D detector on the clouds of a split (default split: train)."""
    from kitti.dist import env_shard

    det = get_detector(detector)
    if env_shard().count > 1:  # every rank would publish the artifact: torchrun runs the module
        hint = f"run 'python -m {det.torchrun_module}'" if det.torchrun_module else f"{det.title} has no torchrun entry"
        raise click.UsageError(f"under torchrun, {hint} (docs/scaling.md)")
    settings = _settings(det, "train", preset_name, given)
    root = KittiRoot(data_root)
    frame_ids = root.split(split or "train")
    cache = ArtifactCache(workdir)
    points_dir, points_ref = _resolve_points(cache, points, frame_ids, root)
    validate(root, [(frame_ids, ("calib", "label_2", "image_2"))], workdir=workdir, clouds=(points_dir, frame_ids))
    key = keys.detect_train(root, frame_ids, settings, points_ref, detector=det.name)

    def produce(tmp: Path) -> dict:
        return dict(resumable(tmp, lambda start: det.train(data_root, points_dir, frame_ids, settings, tmp,
                                                           progress=not quiet, resume=start), resume=resume))

    art = key.build(cache, produce)
    state = "cached" if art.cached else "built"
    click.echo(f"{art.ref} ({state}): {det.describe_train(art.manifest.get('summary', {}))} "
               f"-> {art.path / det.model_file}")


_BOXES2D_HELP = ("2D boxes (detectors that read them): simulated (from ground truth, seeded; the default), gt, "
                 "an rgb_detection file or a folder of KITTI-format 2D detections.")


def _boxes2d_for(det: Detector, boxes2d: str | None) -> tuple[str | None, str]:
    """(the --boxes2d value, its key id) for ``det``; a value for a detector without 2D boxes -> one line."""
    if not det.uses_boxes2d:
        if boxes2d is not None:
            raise click.UsageError(f"--boxes2d: {det.title} takes no 2D boxes")
        return None, keys.NO_BOXES2D
    boxes2d = boxes2d or "simulated"
    return boxes2d, _boxes2d_input(boxes2d)


@detect_group.command("infer")
@_common("infer")
@click.option("--model", "model_ref", required=True, help="A detect-train ref or a model file path.")
@click.option("--boxes2d", default=None, help=_BOXES2D_HELP)
@shard_option
def detect_infer(workdir: Path, data_root: Path, points: str, split: str | None, preset_name: str,
                 quiet: bool, detector: str, model_ref: str, boxes2d: str | None, shard, **given) -> None:
    """Write one KITTI result file per frame of a split (default split: val)."""
    det = get_detector(detector)
    settings = _settings(det, "infer", preset_name, given)
    boxes2d, boxes_id = _boxes2d_for(det, boxes2d)
    cache = ArtifactCache(workdir)
    root, frame_ids, points_dir, points_id = _results_inputs(cache, data_root, points, split, boxes2d)
    model_path, model_id = _resolve_model(cache, model_ref, det.model_file)
    key = keys.detect_infer(root, frame_ids, settings, points_id, model_id, boxes_id, detector=det.name)
    art, status = key.build_sharded(
        cache, frame_ids=frame_ids, shard=shard,
        produce=lambda tmp, frames: det.infer(data_root, points_dir, frames, model_path, settings, tmp,
                                              boxes2d=boxes2d, progress=not quiet))
    _echo_results(det, art, status)


@detect_group.command("baseline")
@_common("baseline")
@click.option("--boxes2d", default=None, help=_BOXES2D_HELP)
@shard_option
def detect_baseline(workdir: Path, data_root: Path, points: str, split: str | None, preset_name: str,
                    quiet: bool, detector: str, boxes2d: str | None, shard, **given) -> None:
    """A detector's model-free baseline as KITTI results (F-PointNet's: mean size at the frustum
    points' median, heading 0)."""
    det = get_detector(detector)
    if det.baseline is None:
        have = ", ".join(d.name for d in DETECTORS.values() if d.baseline is not None)
        raise click.UsageError(f"{det.title} has no baseline (detectors with one: {have})")
    settings = _settings(det, "baseline", preset_name, given)
    boxes2d, boxes_id = _boxes2d_for(det, boxes2d)
    cache = ArtifactCache(workdir)
    root, frame_ids, points_dir, points_id = _results_inputs(cache, data_root, points, split, boxes2d)
    key = keys.detect_baseline(root, frame_ids, settings, points_id, boxes_id, detector=det.name)
    art, status = key.build_sharded(
        cache, frame_ids=frame_ids, shard=shard,
        produce=lambda tmp, frames: det.baseline(data_root, points_dir, frames, settings, tmp,
                                                 boxes2d=boxes2d, progress=not quiet))
    _echo_results(det, art, status)


def _results_inputs(cache: ArtifactCache, data_root: Path, points: str,
                    split: str | None, boxes2d: str | None) -> tuple[KittiRoot, tuple[str, ...], Path, str]:
    """The root, the frames of the split (default val), the clouds' folder and its input id;
    everything they and the 2D boxes read is validated."""
    root = KittiRoot(data_root)
    frame_ids = root.split(split or "val")
    points_dir, points_id = _resolve_points(cache, points, frame_ids, root)
    derived = ("label_2",) if str(boxes2d) in keys.BOXES2D_DERIVED else ()
    validate(root, [(frame_ids, ("calib", "image_2") + derived)], workdir=cache.workdir,
             clouds=(points_dir, frame_ids), boxes2d=boxes2d, boxes2d_frames=frame_ids)
    return root, frame_ids, points_dir, points_id


def _echo_results(det: Detector, art, status: str = "complete") -> None:
    if art is None:  # a shard of several, not the last one
        click.echo(status)
        return
    s = art.manifest.get("summary", {})
    state = "cached" if art.cached else ("built" if "shards" not in s else f"built, {status}")
    click.echo(f"{art.ref} ({state}): {det.describe_infer(s)} -> {art.path / 'data'}")
