"""``foresee detect train|infer --detector avod``: AVOD through the artifact cache.

Artifacts (the keys of :mod:`pipeline.keys`, shared with ``foresee run --detector avod``):
``detect-train/<key>/model.pt`` (plus ``train_log.jsonl``, ``summary.json``, ``planes/``);
``detect-infer/<key>/data/NNNNNN.txt`` (KITTI results). An interrupted training keeps its last
checkpoint as ``detect-train/<key>.resume.pt``; the next identical command resumes from it.
AVOD needs no 2D boxes. The option parsing lives in :mod:`pipeline.commands.detect_cmd`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from kitti.layout import KittiRoot
from pipeline import keys
from pipeline.cache import ArtifactCache
from pipeline.validate import validate


def avod_settings(preset_name: str, **overrides):
    """The preset with the options given on the command line."""
    from detection.avod.settings import preset

    return preset(preset_name).with_(**{k: v for k, v in overrides.items() if v is not None})


def avod_train(workdir: Path, data_root: Path, points: str, split: str | None, settings,
               quiet: bool, resume: Path | None) -> None:
    """Train AVOD on the clouds of a split (default train) and echo one line."""
    from detection.avod.train import train_avod
    from pipeline.commands.detect_cmd import _resolve_points as resolve_points

    root = KittiRoot(data_root)
    frame_ids = root.split(split or "train")
    cache = ArtifactCache(workdir)
    points_dir, points_ref = resolve_points(cache, points, frame_ids, root)
    validate(root, [(frame_ids, ("calib", "label_2", "image_2"))], workdir=workdir, clouds=(points_dir, frame_ids))
    key = keys.detect_train(root, frame_ids, settings, points_ref, detector="avod")
    resume_file = cache.workdir / key.stage / f"{key.key}.resume.pt"

    def produce(tmp: Path) -> dict:
        start = resume or (resume_file if resume_file.is_file() else None)
        try:
            summary = train_avod(data_root, points_dir, frame_ids, settings, tmp, progress=not quiet, resume=start)
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
    click.echo(f"{art.ref} ({'cached' if art.cached else 'built'}): {s.get('steps')} steps on "
               f"{s.get('frames_with_objects')} frames, final loss {s.get('final_total')}, "
               f"{s.get('cpu_seconds')} CPU s / {s.get('seconds')} s -> {art.path / 'model.pt'}")


def avod_infer(workdir: Path, data_root: Path, points: str, split: str | None, settings, quiet: bool,
               model_ref: str, shard) -> None:
    """Write one KITTI result file per frame of a split (default val) and echo one line."""
    from detection.avod.infer import infer_avod
    from pipeline.commands.detect_cmd import _resolve_model as resolve_model, _resolve_points as resolve_points

    root = KittiRoot(data_root)
    frame_ids = root.split(split or "val")
    cache = ArtifactCache(workdir)
    points_dir, points_ref = resolve_points(cache, points, frame_ids, root)
    validate(root, [(frame_ids, ("calib", "image_2"))], workdir=workdir, clouds=(points_dir, frame_ids))
    model_path, model_id = resolve_model(cache, model_ref)
    key = keys.detect_infer(root, frame_ids, settings, points_ref, model_id, keys.NO_BOXES2D, detector="avod")
    art, status = key.build_sharded(
        cache, frame_ids=frame_ids, shard=shard,
        produce=lambda tmp, frames: infer_avod(data_root, points_dir, frames, model_path, settings, tmp / "data",
                                               planes_out=tmp / "planes", progress=not quiet))
    if art is None:  # this shard's part is written, others are missing
        click.echo(status)
        return
    s = art.manifest.get("summary", {})
    click.echo(f"{art.ref} ({'cached' if art.cached else 'built'}): {s.get('frames')} frames, {s.get('boxes')} "
               f"boxes, {s.get('frames_without_boxes')} frames without; {s.get('frames_per_s')} frames/s "
               f"-> {art.path / 'data'}")
