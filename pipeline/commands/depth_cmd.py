"""``foresee depth train|infer|eval|stats`` and ``foresee kod build``: thin wrappers over depth/.

Artifacts (through the cache under --workdir):

* ``depth-train/<key>/``: ``checkpoint.pt`` (weights + settings + bins), ``train_log.csv``;
* ``depth-infer/<key>/depth/NNNNNN.npz`` and ``depth-gt/<key>/depth/NNNNNN.npz`` (``--from-gt``):
  float32 metres at full image resolution; with ``--dominant`` also
  ``depth-infer/<key>/dominant/NNNNNN.npz``, each pixel's dominant-bin depth (its own key).
"""

from __future__ import annotations

from pathlib import Path

import click

from depth.settings import VARIANTS as _VARIANTS
from pipeline import keys
from pipeline.resume import resumable
from pipeline.commands.cache_cmd import dataset_fields, echo_artifact, echo_sharded, not_found, workdir_option
from pipeline.sharding import shard_option
from pipeline.validate import validate

_PRESETS = ("paper", "cpu-small")
_MERGES = ("max", "mask", "fg", "bg")


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _artifact_folder(ref: str, workdir: Path, *, option: str) -> tuple[Path, str]:
    """(folder, cache input id) of an artifact ref (stage/key, key prefix) or an existing folder."""
    from pipeline.cache import MANIFEST, ArtifactCache, CacheError

    p = Path(ref)
    if p.is_dir() and not (p / MANIFEST).is_file():
        return p, f"dir:{p.resolve()}"
    try:
        art = ArtifactCache(workdir).resolve(ref)
    except CacheError:
        raise not_found(ref, workdir, option) from None
    return art.path, art.ref


@click.group("depth")
def depth_group() -> None:
    """ForeSeE depth: train, infer, eval, stats."""


@depth_group.command("train")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="KITTI-format root with depth_2 ground truth.")
@click.option("--split", default="train", show_default=True, help="ImageSets/<name>.txt, a file, or the 3DOP split.")
@click.option("--variant", type=click.Choice(_VARIANTS), default="foresee", show_default=True)
@click.option("--preset", type=click.Choice(_PRESETS), default="paper", show_default=True,
              help="Settings preset; the options below override it.")
@click.option("--epochs", type=int, default=None)
@click.option("--max-steps", type=int, default=None, help="Cap on optimiser steps (0 = none).")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None)
@click.option("--so-lambda", type=float, default=None, help="fg weight λ of the 'so' variant [0.7].")
@click.option("--own-weight", type=float, default=None, help="foresee: weight of a decoder's own region [0.8].")
@click.option("--other-weight", type=float, default=None, help="foresee: weight of the other region [0.2].")
@click.option("--encoder", default=None, help="timm encoder name.")
@click.option("--encoder-weights", default=None,
              help="auto (installed package / timm cache), none (random init) or a state-dict file.")
@click.option("--seed", type=int, default=None)
@click.option("--resume", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="checkpoint.pt of the same settings to continue from.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@workdir_option
def train_command(data_root: Path, split: str, variant: str, preset: str, resume: Path | None,
                  threads: int | None, quiet: bool, workdir: Path, **overrides) -> None:
    """Train one depth variant; the checkpoint is a cached artifact."""
    from kitti.dist import env_shard

    if env_shard().count > 1:  # every rank would publish the artifact: torchrun runs depth.train
        raise click.UsageError("under torchrun, run 'python -m depth.train' (docs/scaling.md)")
    from depth.settings import preset as make_preset
    from kitti import KittiRoot
    from pipeline.cache import ArtifactCache

    _threads(threads)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = make_preset(preset, variant, **given)
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e)) from None
    root = KittiRoot(data_root)
    ids = root.split(split)
    validate(root, [(ids, ("image_2", "calib", "label_2", "depth_2"))], workdir=workdir)
    key = keys.depth_train(root, ids, settings)

    def produce(tmp: Path):
        from depth.train import train_depth

        return resumable(tmp, lambda start: train_depth(root.root, ids, settings, tmp, progress=not quiet,
                                                        resume=start), resume=resume, artifact_checkpoint=True)

    from depth.model import CheckpointMismatchError
    from depth.train import TrainingError

    try:
        art = key.build(ArtifactCache(workdir), produce, extra_manifest={"split": split})
    except (CheckpointMismatchError, TrainingError) as e:
        raise click.ClickException(str(e)) from None
    echo_artifact(art, lambda s: f"{variant}: {s['steps']} steps, final loss {float(s['final_loss']):.4f}, "
                                 f"{float(s['seconds']):.0f} s on {s['device']}")


@depth_group.command("infer")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--split", default="val", show_default=True)
@click.option("--checkpoint", "checkpoint_ref", default=None,
              help="depth-train artifact (stage/key, key prefix, folder) or a checkpoint.pt file.")
@click.option("--merge", type=click.Choice(_MERGES), default="max", show_default=True,
              help="max: mask-free (paper); mask: fg decoder inside label boxes; fg/bg: one decoder.")
@click.option("--flip", is_flag=True,
              help="Test-time flip: average each decoder's logits with the mirrored image's (~1.4x the time).")
@click.option("--dominant", is_flag=True,
              help="Also write each pixel's dominant-bin depth (dominant/), read by 'depth eval's diagnosis.")
@click.option("--from-gt", is_flag=True, help="Write the ground truth (depth_2) as the artifact (oracle).")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--quiet", is_flag=True)
@shard_option
@workdir_option
def infer_command(data_root: Path, split: str, checkpoint_ref: str | None, merge: str, flip: bool, dominant: bool,
                  from_gt: bool, threads: int | None, quiet: bool, shard, workdir: Path) -> None:
    """Depth maps (float32 metres, full resolution) for a split, as a cached artifact."""
    from kitti import KittiRoot
    from pipeline.cache import ArtifactCache

    if (checkpoint_ref is None) == (not from_gt):
        raise click.UsageError("give exactly one of --checkpoint and --from-gt")
    for name, given in (("--flip", flip), ("--dominant", dominant)):
        if given and from_gt:
            raise click.UsageError(f"{name} applies to a network's inference, not to --from-gt")
    _threads(threads)
    root = KittiRoot(data_root)
    ids = root.split(split)
    reads = ("image_2", "depth_2") if from_gt else ("image_2", "calib") + (("label_2",) if merge == "mask" else ())
    validate(root, [(ids, reads)], workdir=workdir)
    cache = ArtifactCache(workdir)
    if from_gt:
        key = keys.depth_gt(root, ids)

        def produce(tmp: Path, frames: tuple[str, ...]):
            from depth.infer import export_gt_depth

            return export_gt_depth(root.root, frames, tmp / "depth")
    else:
        p = Path(checkpoint_ref)
        if p.is_file():
            ckpt, ref = p, keys.file_id("checkpoint", p)
        else:
            folder, ref = _artifact_folder(checkpoint_ref, workdir, option="--checkpoint")
            ckpt = folder / "checkpoint.pt"
        from depth.model import CheckpointMismatchError, read_checkpoint

        try:
            variant = read_checkpoint(ckpt)["settings"].variant
        except CheckpointMismatchError as e:
            raise click.ClickException(str(e)) from None
        if merge in ("mask", "bg") and variant in ("baseline", "so"):
            raise click.BadParameter(f"merge={merge!r} needs a two-decoder model, {ckpt} is {variant!r}",
                                     param_hint="--merge")
        key = keys.depth_infer(root, ids, ref, merge=merge, variant=variant, flip=flip, dominant=dominant)

        def produce(tmp: Path, frames: tuple[str, ...]):
            from depth.infer import infer_depth

            return infer_depth(root.root, frames, ckpt, tmp / "depth", merge=merge, flip=flip,
                               progress=not quiet, dominant_dir=tmp / "dominant" if dominant else None)

    art, status = key.build_sharded(cache, produce, frame_ids=ids, shard=shard,
                                    extra_manifest={"split": split, **dataset_fields(root)})
    echo_sharded(art, status, lambda s: f"{s['frames']} depth maps" + (
        f", {float(s['images_per_s']):.2f} images/s on {s['device']}" if "images_per_s" in s else ""))


@depth_group.command("eval")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--split", default="val", show_default=True)
@click.option("--depth", "depth_refs", multiple=True, required=True,
              help="NAME=REF, repeatable: a row name and a depth artifact or folder of NNNNNN.npz.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write every metric (pooled and per-image) as CSV.")
@click.option("--md", "md_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the tables as markdown.")
@workdir_option
def eval_command(data_root: Path, split: str, depth_refs: tuple[str, ...], csv_path: Path | None,
                 md_path: Path | None, workdir: Path) -> None:
    """Tables 2 and 3 (fg / bg / global, pooled) beside the paper's numbers, the object-surface region,
    per-object errors, and the per-object diagnosis of artifacts inferred with --dominant."""
    from depth.metrics import evaluate_depth_dir, format_objects, format_table2, format_table3, results_csv
    from kitti import KittiRoot, atomic_write_text

    root = KittiRoot(data_root)
    ids = root.split(split)
    validate(root, [(ids, ("label_2", "depth_2"))], workdir=workdir)
    rows = {}
    for item in depth_refs:
        name, sep, ref = item.partition("=")
        if not sep or not name or not ref:
            raise click.BadParameter(f"expected NAME=REF, got {item!r}", param_hint="--depth")
        folder, _ = _artifact_folder(ref, workdir, option="--depth")
        dominant = folder / "dominant" if (folder / "dominant").is_dir() else None
        rows[name] = evaluate_depth_dir(root.root, ids, folder / "depth" if (folder / "depth").is_dir() else folder,
                                        dominant_dir=dominant)
    md = (f"Table 2 (absRel / SILog, pooled over pixels; {len(ids)} frames of '{split}')\n\n{format_table2(rows)}\n\n"
          f"Table 3 (pooled)\n\n{format_table3(rows)}\n\nTable 3 (per-image means)\n\n"
          f"{format_table3(rows, per_image=True)}\n\n{format_objects(rows)}")
    click.echo(md)
    if csv_path:
        atomic_write_text(csv_path, results_csv(rows))
    if md_path:
        atomic_write_text(md_path, md)


@depth_group.command("stats")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--split", default="train", show_default=True)
@click.option("--png", "png_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("depth_stats.png"), show_default=True, help="Fig. 2 style plot.")
def stats_command(data_root: Path, split: str, png_path: Path) -> None:
    """fg vs bg depth and depth-gradient distributions of the ground truth (Fig. 2, Table 1)."""
    from depth.stats import depth_statistics, format_stats, plot_stats
    from kitti import KittiRoot

    root = KittiRoot(data_root)
    stats = depth_statistics(root.root, root.split(split))
    plot_stats(stats, png_path)
    click.echo(format_stats(stats))
    click.echo(f"{png_path} written")


@click.group("kod")
def kod_group() -> None:
    """Build the KITTI-Object-Depth dataset."""


@kod_group.command("build")
@click.option("--kitti-root", type=click.Path(path_type=Path, file_okay=False, exists=True), required=True,
              help="KITTI object root (training/image_2, calib, label_2, velodyne).")
@click.option("--out", "out_root", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="New KITTI-format root: depth_2 written, the rest linked, ImageSets written.")
@click.option("--depth-root", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="KITTI depth-completion ground truth ({train,val}/<drive>/proj_depth/groundtruth/...).")
@click.option("--mapping-dir", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Folder of the devkit's train_mapping.txt and train_rand.txt "
                   "[KITTI_ROOT/devkit_object/mapping, devkit/mapping or mapping].")
@click.option("--from-velodyne", is_flag=True, help="Fallback: project each frame's own scan.")
@click.option("--quiet", is_flag=True)
def kod_build_command(kitti_root: Path, out_root: Path, depth_root: Path | None, mapping_dir: Path | None,
                      from_velodyne: bool, quiet: bool) -> None:
    """Depth ground truth for the KITTI object frames (depth completion maps or velodyne)."""
    from tqdm import tqdm

    from depth.kod import build_kod

    if (depth_root is None) == (not from_velodyne):
        raise click.UsageError("give exactly one of --depth-root and --from-velodyne")
    summary = build_kod(kitti_root, out_root, depth_root=depth_root, mapping_dir=mapping_dir,
                        from_velodyne=from_velodyne,
                        progress=lambda ids: tqdm(ids, desc="kod", disable=True if quiet else None, dynamic_ncols=True))
    click.echo(summary.line())
