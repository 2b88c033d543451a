"""``foresee export`` (a run's models, one bundle file) and ``foresee predict`` (the trained chain
on frames without labels). The work is in :mod:`pipeline.bundle`, :mod:`pipeline.predict`,
:mod:`pipeline.submission` and :mod:`kitti.frames_source`; see docs/predict.md."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from pipeline.stages import DEPTH_VARIANTS


@click.command("export")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False, exists=True), required=True,
              help="The run's artifact cache.")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The bundle file to write (e.g. chain.foresee).")
@click.option("--depth", "variant", type=click.Choice(DEPTH_VARIANTS), default="foresee", show_default=True,
              help="Which depth model (and the 3D detector trained on its cloud).")
@click.option("--detector", type=click.Choice(["fpointnet", "avod"]), default="fpointnet", show_default=True)
def export_command(workdir: Path, out: Path, variant: str, detector: str) -> None:
    """Write the models of a run (depth, 2D detector, 3D detector, settings, geometry) as one file."""
    from pipeline.bundle import export_bundle, load_bundle

    summary = export_bundle(workdir, out, variant=variant, detector=detector)
    bundle = load_bundle(out)  # what we wrote reads back, every hash checked
    g = bundle.geometry
    click.echo(f"bundle {out} ({summary['bytes'] / 2**20:.1f} MiB): depth {variant}, 2D detector, {detector} "
               f"on the {variant} cloud; trained on {g.image_hw[1]}x{g.image_hw[0]} images, fx {g.fx:.1f} px, "
               f"camera {g.camera_height_m:.2f} m above the road")


def _frames(root_dir: Path, part: str, split: str | None, ids_file: Path | None) -> tuple[str, ...]:
    from kitti import KittiRoot, read_split_file

    if ids_file is not None:
        return read_split_file(ids_file)
    if split is not None:
        return KittiRoot(root_dir, part).split(split)
    return KittiRoot(root_dir, part).frame_ids("image_2")


def _part(root_dir: Path, part: str, split: str | None) -> str:
    if part != "auto":
        return part
    if split == "test" or not (root_dir / "training" / "image_2").is_dir():
        return "testing"
    return "training"


@click.command("predict")
@click.option("--models", type=click.Path(path_type=Path, exists=True), required=True,
              help="A bundle (foresee export) or a run's workdir.")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="A KITTI-format root (its testing/ or training/ part: image_2 + calib).")
@click.option("--part", type=click.Choice(["auto", "training", "testing"]), default="auto", show_default=True,
              help="Which part of --data (auto: testing for --split test or a root without training/).")
@click.option("--split", default=None, help="Split name (ImageSets/<name>.txt, or the built-in train/val/test).")
@click.option("--ids", "ids_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="A file of frame ids (one per line).")
@click.option("--images", "images_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A folder of one's own images (one camera) instead of --data.")
@click.option("--intrinsics", default=None, metavar="FX,FY,CX,CY", help="--images: the camera's intrinsics in pixels.")
@click.option("--camera-height", type=float, default=None,
              help="--images with --intrinsics: the camera above the road in metres [the training data's].")
@click.option("--calib", "calib_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="--images: one KITTI calibration file for every image.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder.")
@click.option("--submission", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the KITTI benchmark submission zip of the frames.")
@click.option("--keep-clouds", is_flag=True, help="Keep the pseudo-LiDAR clouds (OUT/velodyne).")
@click.option("--pages", type=click.IntRange(min=0), default=0, show_default=True,
              help="A 3D viewer page and a BEV PNG for the first N frames (OUT/pages).")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Cache the predictions as an artifact here (and shard them over torchrun ranks).")
@click.option("--depth", "variant", type=click.Choice(DEPTH_VARIANTS), default="foresee",
              help="--models WORKDIR: which depth model.")
@click.option("--detector", type=click.Choice(["fpointnet", "avod"]), default="fpointnet",
              help="--models WORKDIR: which 3D detector.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="torch CPU threads of every network (0: the run's: the bundle's settings and torch's default).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that share the frames (forked after the imports), each running every "
                   "network on one thread: one per free core.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict_command(models: Path, data_root: Path | None, part: str, split: str | None, ids_file: Path | None,
                    images_dir: Path | None, intrinsics: str | None, camera_height: float | None,
                    calib_file: Path | None, out: Path, submission: Path | None, keep_clouds: bool, pages: int,
                    workdir: Path | None, variant: str, detector: str, threads: int, workers: int,
                    quiet: bool) -> None:
    """Depth -> pseudo-LiDAR -> 2D boxes -> 3D boxes on frames without labels; one KITTI result
    file per frame in OUT/data, OUT/summary.json."""
    from kitti.dist import env_shard
    from pipeline import predict as P

    if (data_root is None) == (images_dir is None):
        raise click.UsageError("give --data ROOT or --images DIR")
    if images_dir is not None and (intrinsics is None) == (calib_file is None):
        raise click.UsageError("--images needs --intrinsics FX,FY,CX,CY or --calib FILE")
    if images_dir is None and (intrinsics or calib_file or camera_height is not None):
        raise click.UsageError("--intrinsics / --calib / --camera-height go with --images")
    if split and ids_file:
        raise click.UsageError("give --split or --ids, not both")
    if workers > 1 and threads > 1:
        raise click.UsageError("--workers runs every network on one thread per worker: leave --threads out or give 1")
    if workers > 1 and P.cuda_present():
        raise click.UsageError("--workers is for the CPU (CUDA does not survive a fork): on GPUs use torchrun ranks")
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".predict-", dir=out))
    try:
        m = P.open_models(models, scratch, variant=variant, detector=detector)
        trained = m.files.geometry
        if images_dir is not None:
            root_dir, frames = _own_camera(images_dir, intrinsics, camera_height, calib_file, trained, scratch, out)
        else:
            part_name = _part(data_root, part, split)
            frames = _frames(data_root, part_name, split, ids_file)
            root_dir = data_root
            if part_name != "training":
                from kitti import KittiRoot
                from kitti.frames_source import part_view

                root_dir = part_view(KittiRoot(data_root, part_name), scratch / "view")
        P.check_frames(root_dir, frames)
        if images_dir is None:
            for line in P.geometry_warnings(trained, P.root_geometry(root_dir, frames[0], trained)):
                click.echo(f"warning: {line}", err=True)
        keep = keep_clouds or pages > 0
        shard = env_shard()
        if workdir is not None:
            from kitti import KittiRoot
            from pipeline import keys

            data_id = keys.data_id(KittiRoot(root_dir), frames, ("image_2", "calib"))
            art, status = P.predict_artifact(m, root_dir, frames, workdir, keep_clouds=keep, progress=not quiet,
                                             data_id=data_id, shard=shard, threads=threads, workers=workers)
            if art is None:
                click.echo(status)
                return
            P.copy_artifact(art.path, out)
            summary = P.manifest_summary(dict(art.manifest.get("summary", {})))
            summary["cached"] = bool(art.cached)
            summary["artifact"] = str(art.path)
        else:
            if shard.count > 1:
                raise click.UsageError("sharded predict (torchrun) needs --workdir: the shards meet in its cache")
            summary = P.predict_frames(m.files, root_dir, frames, out, keep_clouds=keep, progress=not quiet,
                                       threads=threads, workers=workers)
        summary = {**summary, "bundle": str(m.bundle.path if models.is_file() else models),
                   "bundle_sha256": m.bundle.sha256, "variant": m.bundle.variant, "detector": m.files.detector}
        if pages:
            summary["pages"] = P.write_pages(root_dir, out, frames[:pages])
            if not keep_clouds:
                shutil.rmtree(out / "velodyne", ignore_errors=True)
        P.write_summary(out, summary)
        if submission is not None:
            from kitti import KittiRoot
            from pipeline.submission import write_submission

            kr = KittiRoot(root_dir)
            sub = write_submission(out / "data", frames, submission, image_hw=kr.image_hw)
            click.echo(f"submission {submission}: {sub['frames']} files, {sub['objects']} objects "
                       f"({sub['dropped']} of other classes or off the image left out)")
        fps = summary.get("frames_per_s")
        click.echo(f"predicted {len(frames)} frames" + (f" ({fps:.2f} frames/s)" if fps else "")
                   + f": {out / 'data'}, {out / 'summary.json'}"
                   + (f", pages in {out / 'pages'}" if pages else ""))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _own_camera(images_dir: Path, intrinsics: str | None, camera_height: float | None, calib_file: Path | None,
                trained, scratch: Path, out: Path):
    """A root of one's own images with KITTI-convention calibrations; warns on geometry far from training."""
    from kitti import Calibration
    from kitti.frames_source import calibration_from_intrinsics, images_view, list_images, parse_intrinsics
    from kitti.layout import read_image
    from pipeline import predict as P
    from pipeline.bundle import Geometry

    images = list_images(images_dir)
    if calib_file is not None:
        calib = Calibration.from_file(calib_file)
    else:
        try:
            fx, fy, cx, cy = parse_intrinsics(intrinsics)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--intrinsics") from None
        height = trained.camera_height_m if camera_height is None else camera_height
        calib = calibration_from_intrinsics(fx, fy, cx, cy, camera_height_m=height,
                                            lidar_height_m=trained.lidar_height_m,
                                            lidar_forward_m=trained.lidar_forward_m)
    root_dir, frames = images_view(images, calib, scratch / "own")
    shutil.copy2(root_dir / "frames.csv", out / "frames.csv")
    hw = read_image(root_dir / "training" / "image_2" / f"{frames[0]}.png").shape[:2]
    origin = calib.velo_to_rect_matrix[:3, 3]
    own = Geometry(hw, calib.fu, calib.fv, calib.cu, calib.cv,
                   round(trained.lidar_height_m + float(origin[1]), 3), trained.lidar_height_m, float(origin[2]))
    for line in P.geometry_warnings(trained, own):
        click.echo(f"warning: {line}", err=True)
    return root_dir, frames
