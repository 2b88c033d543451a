"""``foresee detect train|infer --detector avod``: AVOD through the artifact cache.

Artifacts: ``avod-train/<key>/model.pt`` (plus ``train_log.jsonl``, ``summary.json``, ``planes/``);
``avod-infer/<key>/data/NNNNNN.txt`` (KITTI results) and ``planes/``. An interrupted training keeps
its last checkpoint as ``avod-train/<key>.resume.pt``; the next identical command resumes from it.
AVOD needs no 2D boxes. The option parsing lives in :mod:`pipeline.commands.detect_cmd`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from kitti.layout import KittiRoot
from pipeline.cache import ArtifactCache, make_key

TRAIN_STAGE = "avod-train"
INFER_STAGE = "avod-infer"


def avod_settings(preset_name: str, **overrides):
    """The preset with the options given on the command line."""
    from detection.avod.settings import preset

    return preset(preset_name).with_(**{k: v for k, v in overrides.items() if v is not None})


def _key_settings(settings):
    return settings.with_(num_threads=0)


def avod_train(workdir: Path, data_root: Path, points: str, split: str | None, settings,
               quiet: bool, resume: Path | None) -> None:
    """Train AVOD on the clouds of a split (default train) and echo one line."""
    from detection.avod import CODE_VERSION
    from detection.avod.train import train_avod
    from pipeline.commands.detect_cmd import _resolve_points as resolve_points

    root = KittiRoot(data_root)
    frame_ids = root.split(split or "train")
    cache = ArtifactCache(workdir)
    points_dir, points_ref = resolve_points(cache, points, frame_ids, root)
    inputs = [points_ref, "data:" + root.fingerprint(frame_ids, ("calib", "label_2", "image_2"))]
    key = make_key(TRAIN_STAGE, CODE_VERSION, _key_settings(settings), inputs)
    resume_file = cache.workdir / TRAIN_STAGE / f"{key}.resume.pt"

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

    art = cache.build(TRAIN_STAGE, code_version=CODE_VERSION, settings=_key_settings(settings), inputs=inputs,
                      produce=produce)
    s = art.manifest.get("summary", {})
    click.echo(f"{art.ref} ({'cached' if art.cached else 'built'}): {s.get('steps')} steps on "
               f"{s.get('frames_with_objects')} frames, final loss {s.get('final_total')}, "
               f"{s.get('cpu_seconds')} CPU s / {s.get('seconds')} s -> {art.path / 'model.pt'}")


def avod_infer(workdir: Path, data_root: Path, points: str, split: str | None, settings, quiet: bool,
               model_ref: str) -> None:
    """Write one KITTI result file per frame of a split (default val) and echo one line."""
    from detection.avod import CODE_VERSION
    from detection.avod.infer import infer_avod
    from pipeline.commands.detect_cmd import _resolve_model as resolve_model, _resolve_points as resolve_points

    root = KittiRoot(data_root)
    frame_ids = root.split(split or "val")
    cache = ArtifactCache(workdir)
    points_dir, points_ref = resolve_points(cache, points, frame_ids, root)
    model_path, model_id = resolve_model(cache, model_ref)
    inputs = [points_ref, model_id, "data:" + root.fingerprint(frame_ids, ("calib", "image_2"))]
    art = cache.build(INFER_STAGE, code_version=CODE_VERSION, settings=_key_settings(settings), inputs=inputs,
                      produce=lambda tmp: infer_avod(data_root, points_dir, frame_ids, model_path, settings,
                                                     tmp / "data", planes_out=tmp / "planes", progress=not quiet))
    s = art.manifest.get("summary", {})
    click.echo(f"{art.ref} ({'cached' if art.cached else 'built'}): {s.get('frames')} frames, {s.get('boxes')} "
               f"boxes, {s.get('frames_without_boxes')} frames without; {s.get('frames_per_s')} frames/s "
               f"-> {art.path / 'data'}")
