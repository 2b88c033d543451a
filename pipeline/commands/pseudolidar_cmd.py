"""``foresee pseudolidar``: depth maps (an artifact, a folder, or ground-truth depth_2) ->
pseudo-LiDAR velodyne ``.bin``, written as a cached artifact ``<workdir>/pseudolidar/<key>/velodyne/``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from pipeline import keys
from pipeline.commands.cache_cmd import check_same_dataset, dataset_fields, echo_sharded, not_found, workdir_option
from pipeline.sharding import shard_option
from pipeline.validate import validate

_PRESETS = ("paper", "cpu-small")


def _depth_source(ref: str, cache, frame_ids, root) -> tuple[Path, str, str]:
    """(depth folder, cache input id, role) for --depth: a cache ref / artifact folder (whose
    maps are in ``depth/``) or a plain folder of NNNNNN.npz/.png."""
    from pipeline.cache import MANIFEST, CacheError
    from pseudolidar.stage import depth_folder_fingerprint

    p = Path(ref)
    if p.is_dir() and not (p / MANIFEST).is_file():
        folder = p / "depth" if (p / "depth").is_dir() else p
        return folder, f"depth-dir:{depth_folder_fingerprint(folder, frame_ids)}", ""
    try:
        art = cache.resolve(ref)
    except CacheError:
        raise not_found(ref, cache.workdir, "--depth") from None
    check_same_dataset(art, root, "depth artifact")
    folder = art.path / "depth" if (art.path / "depth").is_dir() else art.path
    settings = art.manifest.get("settings")
    role = settings.get("variant", "") if isinstance(settings, dict) else ""
    role = role or str(art.manifest.get("node", "")).rpartition("/")[2]
    return folder, art.ref, str(role)


@click.command("pseudolidar")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="KITTI-format root (calib and image_2 of the frames).")
@click.option("--depth", "depth_ref", default=None,
              help="Depth artifact (stage/key, key prefix or artifact folder with depth/NNNNNN.npz) "
                   "or a plain folder of NNNNNN.npz / NNNNNN.png maps.")
@click.option("--from-gt-depth", is_flag=True,
              help="Use the root's ground-truth depth (training/depth_2): the oracle cloud.")
@click.option("--split", default="val", show_default=True,
              help="Frames: ImageSets/<name>.txt, a split file, or the built-in 3DOP split.")
@click.option("--preset", type=click.Choice(_PRESETS), default="paper", show_default=True,
              help="Settings preset; the options below override it.")
@click.option("--max-height", "max_height_m", type=float, default=None,
              help="Keep velodyne z < this (m) [paper: 1.0].")
@click.option("--max-depth", "max_depth_m", type=float, default=None, help="Drop pixels deeper than this (m).")
@click.option("--stride", "stride_px", type=int, default=None, help="Use every n-th row and column.")
@click.option("--beams", "sparsify_beams", type=int, default=None,
              help="Simulate an n-beam LiDAR (64 = HDL-64E), nearest point per cell.")
@click.option("--azimuth-bins", "sparsify_azimuth_bins", type=int, default=None,
              help="Azimuth cells of the simulated LiDAR over ±45° [512].")
@click.option("--frustum-only/--no-frustum-only", default=None,
              help="Keep only points in the camera frustum (velodyne x >= --frustum-near).")
@click.option("--frustum-near", "frustum_near_m", type=float, default=None, help="Frustum near plane (m) [2.0].")
@click.option("--workers", type=int, default=2, show_default=True, help="Processes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@shard_option
@workdir_option
def pseudolidar_command(data_root: Path, depth_ref: str | None, from_gt_depth: bool, split: str,
                        preset: str, max_height_m, max_depth_m, stride_px, sparsify_beams,
                        sparsify_azimuth_bins, frustum_only, frustum_near_m, workers: int,
                        quiet: bool, shard, workdir: Path) -> None:
    """Depth maps -> KITTI-format pseudo-LiDAR (velodyne .bin), cached under --workdir."""
    from kitti import KittiRoot
    from pipeline.cache import ArtifactCache
    from pseudolidar.settings import preset as make_preset
    from pseudolidar.stage import run_from_gt_depth, run_pseudolidar

    if (depth_ref is None) == (not from_gt_depth):
        raise click.UsageError("give exactly one of --depth ARTIFACT_OR_DIR and --from-gt-depth")
    overrides = {k: v for k, v in dict(max_height_m=max_height_m, max_depth_m=max_depth_m,
                                       stride_px=stride_px, sparsify_beams=sparsify_beams,
                                       sparsify_azimuth_bins=sparsify_azimuth_bins,
                                       frustum_only=frustum_only, frustum_near_m=frustum_near_m).items()
                 if v is not None}
    try:
        settings = replace(make_preset(preset), **overrides)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    root = KittiRoot(data_root)
    frame_ids = root.split(split)
    validate(root, [(frame_ids, ("calib", "image_2") + (("depth_2",) if from_gt_depth else ()))], workdir=workdir)
    cache = ArtifactCache(workdir)
    if from_gt_depth:
        role, source = "oracle", "gt-depth"
        depth_input = keys.gt_depth_id(root, frame_ids)

        def produce(tmp: Path, frames: tuple[str, ...]):
            return run_from_gt_depth(root.root, frames, tmp / "velodyne", settings,
                                     workers=workers, progress=not quiet)
    else:
        depth_dir, depth_input, role = _depth_source(depth_ref, cache, frame_ids, root)
        source = depth_input

        def produce(tmp: Path, frames: tuple[str, ...]):
            return run_pseudolidar(depth_dir, root.root, frames, tmp / "velodyne", settings,
                                   workers=workers, progress=not quiet)

    art, status = keys.pseudolidar(root, frame_ids, settings, depth_input).build_sharded(
        cache, produce, frame_ids=frame_ids, shard=shard,
        extra_manifest={"role": role, "source": source, "split": split, **dataset_fields(root)})
    echo_sharded(art, status, lambda s: f"{s['frames']} frames, {float(s['points_per_frame_mean']):.0f} points/frame, "
                                 f"{float(s['seconds']):.1f} s")
