"""``foresee detect2d train|infer``: the 2D detector through the artifact cache.

Artifacts: ``detect2d-train/<key>/model.pt`` (plus ``train_log.jsonl``, ``summary.json``);
``detect2d-infer/<key>/data/NNNNNN.txt`` (KITTI 2D results, the folder ``foresee detect infer
--boxes2d`` takes) plus, when the split has labels, ``ap2d.json`` / ``ap2d.md`` (AP_2D from
``kitti_eval``). An interrupted training keeps its last checkpoint as
``detect2d-train/<key>.resume.pt`` and the same command resumes from it.
"""

from __future__ import annotations

from pathlib import Path

import click

from kitti.layout import KittiRoot
from pipeline import keys
from pipeline.resume import resumable
from pipeline.cache import ArtifactCache
from pipeline.validate import validate
from pipeline.commands.cache_cmd import check_same_dataset, dataset_fields, workdir_option


def detect2d_settings(preset_name: str, **overrides):
    """The preset with the given (non-None) overrides; a bad value is a click usage error."""
    from detect2d.settings import preset

    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return preset(preset_name).with_(**changes)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def train_artifact(cache: ArtifactCache, root: KittiRoot, frame_ids: tuple[str, ...], settings, *,
                   progress: bool = True, resume: Path | None = None):
    """Build (or find) the ``detect2d-train`` artifact of these frames and settings (the key of
    ``foresee run``'s detect2d-train node: ``pipeline.keys.detect2d_train``).

    An exception during training moves the last checkpoint to ``<key>.resume.pt``; the next
    build of the same key resumes from it.
    """
    from detect2d.train import train_detector

    k = keys.detect2d_train(root, frame_ids, settings)

    def produce(tmp: Path) -> dict:
        return resumable(tmp, lambda start: train_detector(root.root, frame_ids, settings, tmp, progress=progress,
                                                           resume=start), resume=resume)

    return k.build(cache, produce, extra_manifest=dataset_fields(root))


def infer_artifact(cache: ArtifactCache, root: KittiRoot, frame_ids: tuple[str, ...], model_art, *,
                   device: str = "auto", num_threads: int = 0, score_thresh: float | None = None,
                   evaluate: bool = True, progress: bool = True, options: dict | None = None):
    """Build (or find) the ``detect2d-infer`` artifact (``pipeline.stages.detect2d_results``);
    ``options`` replace the model's inference fields (None keeps them)."""
    from pipeline.stages import detect2d_results

    check_same_dataset(model_art, root, "2D detector")
    evaluate = evaluate and root.has("label_2")
    k = keys.detect2d_infer(root, frame_ids, model_art.ref, device=device, score_thresh=score_thresh,
                            evaluate=evaluate, options=options or None)
    return k.build(cache, lambda tmp: detect2d_results(
        root, frame_ids, model_art.path / "model.pt", tmp, device=device, num_threads=num_threads,
        score_thresh=score_thresh, evaluate=evaluate, progress=progress, options=options or None),
        extra_manifest=dataset_fields(root))


def _common(f):
    f = click.option("--quiet", is_flag=True, help="No progress bars.")(f)
    f = click.option("--threads", "num_threads", type=int, default=None,
                     help="Torch CPU threads (default: the preset's; 0 = torch's default).")(f)
    f = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                     help="Device (default: the preset's, auto = CUDA when present).")(f)
    f = click.option("--data", "data_root", required=True,
                     type=click.Path(path_type=Path, exists=True, file_okay=False),
                     help="KITTI-format root (image_2, calib; label_2 for training / AP).")(f)
    return workdir_option(f)


@click.group("detect2d")
def detect2d_group() -> None:
    """2D detector (torchvision RetinaNet / FCOS on a pretrained encoder): train, infer."""


@detect2d_group.command("train")
@_common
@click.option("--split", default="train", show_default=True, help="Split name (ImageSets/<name>.txt) or file.")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "cpu-small"]), default="cpu-small",
              show_default=True, help="Settings preset; the options below override it.")
@click.option("--architecture", type=click.Choice(["retinanet", "fcos"]), default=None)
@click.option("--encoder", default=None, help="timm encoder name (backbones registry).")
@click.option("--encoder-weights", default=None, help="auto (registry), none (random) or a state-dict file.")
@click.option("--image-scale", type=float, default=None, help="Image resize factor (cpu-small: 0.5).")
@click.option("--max-steps", type=int, default=None, help="Optimiser steps.")
@click.option("--batch-size", type=int, default=None, help="Images per step.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak AdamW learning rate.")
@click.option("--seed", type=int, default=None)
@click.option("--resume", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A checkpoint.pt to resume from (automatic after an interrupted run).")
def train_command(workdir: Path, data_root: Path, split: str, preset_name: str, device: str | None,
                  num_threads: int | None, quiet: bool, resume: Path | None, **overrides) -> None:
    """Train the 2D detector on a split's label_2 boxes (default split: train)."""
    from detect2d.train import CheckpointMismatchError
    from kitti.dist import env_shard

    if env_shard().count > 1:  # every rank would publish the artifact: torchrun runs detect2d.train
        raise click.UsageError("under torchrun, run 'python -m detect2d.train' (docs/scaling.md)")
    settings = detect2d_settings(preset_name, device=device, num_threads=num_threads, **overrides)
    root = KittiRoot(data_root)
    frame_ids = root.split(split)
    validate(root, [(frame_ids, ("image_2", "label_2", "calib"))], workdir=workdir)
    try:
        art = train_artifact(ArtifactCache(workdir), root, frame_ids, settings, progress=not quiet,
                             resume=resume)
    except CheckpointMismatchError as e:
        raise click.ClickException(str(e)) from None
    s = art.manifest.get("summary", {})
    state = "cached" if art.cached else "built"
    click.echo(f"{art.ref} ({state}): {s.get('frames')} frames, {s.get('labels_positive')} boxes, "
               f"{s.get('labels_ignored')} ignore regions, {s.get('labels_unknown_type_skipped')} labels "
               f"of unknown type skipped; {s.get('steps')} steps, final loss {_f(s.get('final_loss'))}, "
               f"{s.get('cpu_seconds')} CPU-s -> {art.path / 'model.pt'}")


@detect2d_group.command("infer")
@_common
@click.option("--model", "model_ref", required=True, help="A detect2d-train artifact (stage/key or key prefix).")
@click.option("--split", default="val", show_default=True, help="Split name (ImageSets/<name>.txt) or file.")
@click.option("--score-thresh", type=float, default=None, help="Score threshold (default: the model's, 0.05).")
@click.option("--test-scale-factors", default=None,
              help="Comma-separated factors of the model's image scale to detect at, merged by NMS "
                   "and box voting (default: the model's, 1 = one scale; e.g. 1,1.5).")
@click.option("--box-vote-iou", type=float, default=None,
              help="Box-voting IoU, 0 = off (default: the model's, 0; e.g. 0.65).")
@click.option("--eval/--no-eval", "evaluate", default=True, show_default=True,
              help="Evaluate AP_2D with kitti_eval when the split has labels.")
def infer_command(workdir: Path, data_root: Path, device: str | None, num_threads: int | None,
                  quiet: bool, model_ref: str, split: str, score_thresh: float | None,
                  test_scale_factors: str | None, box_vote_iou: float | None, evaluate: bool) -> None:
    """Write one KITTI 2D result file per frame of a split (default split: val)."""
    cache = ArtifactCache(workdir)
    root = KittiRoot(data_root)
    frame_ids = root.split(split)
    validate(root, [(frame_ids, ("image_2", "calib") + (("label_2",) if evaluate and root.has("label_2") else ()))], workdir=workdir)
    model_art = cache.resolve(model_ref)
    if not (model_art.path / "model.pt").is_file():
        raise click.BadParameter(f"{model_art.path}: not a detect2d-train artifact (no model.pt)",
                                 param_hint="--model")
    options = {}
    if test_scale_factors is not None:
        try:
            options["test_scale_factors"] = tuple(float(v) for v in test_scale_factors.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"{test_scale_factors!r}: expected numbers separated by commas",
                                     param_hint="--test-scale-factors") from None
    if box_vote_iou is not None:
        options["box_vote_iou"] = box_vote_iou
    detect2d_settings("paper", **options)  # a bad value: one usage-error line
    art = infer_artifact(cache, root, frame_ids, model_art, device=device or "auto",
                         num_threads=num_threads if num_threads is not None else 2,
                         score_thresh=score_thresh, evaluate=evaluate, progress=not quiet,
                         options=options)
    s = art.manifest.get("summary", {})
    state = "cached" if art.cached else "built"
    ap = s.get("ap2d", {})
    ap_text = "; ".join(f"{c} AP_2D R40 {'/'.join(f'{float(v):.1f}' for v in ap[c]['R40'])}"
                        for c in ap if "R40" in ap[c])
    click.echo(f"{art.ref} ({state}): {s.get('frames')} frames, {s.get('detections')} detections, "
               f"{s.get('frames_per_s')} frames/s{'; ' + ap_text if ap_text else ''} -> {art.path / 'data'}")


def _f(v) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"
