"""``foresee show``: look at one frame of one or several clouds (paper Fig. 6 style).

A cloud is a cache reference (``stage/key``, key prefix or artifact folder, whose ``.bin`` are in
``velodyne/``), a plain folder of ``NNNNNN.bin``, or ``lidar`` for the root's own velodyne scan.
``--html`` writes one self-contained 3D page (:mod:`pseudolidar.html_view`) to open in a browser.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.commands.cache_cmd import check_same_dataset, workdir_option


def _cloud_source(ref: str, cache, root) -> tuple[Path, str, str]:
    """(folder of NNNNNN.bin, label, role) of one cloud reference."""
    from pipeline.cache import MANIFEST, CacheError

    if ref == "lidar":
        return root.folder("velodyne"), "LiDAR", "lidar"
    p = Path(ref)
    if p.is_dir() and not (p / MANIFEST).is_file():
        return (p / "velodyne" if (p / "velodyne").is_dir() else p), p.name, ""
    try:
        art = cache.resolve(ref)
    except CacheError as e:
        raise click.BadParameter(f"{e} (and {ref!r} is not a folder)", param_hint="ARTIFACT") from None
    check_same_dataset(art, root, "cloud artifact")
    role = str(art.manifest.get("role") or str(art.manifest.get("node", "")).rpartition("/")[2])
    folder = art.path / "velodyne" if (art.path / "velodyne").is_dir() else art.path
    return folder, role or art.ref, role


@click.command("show")
@click.argument("artifact")
@click.argument("frame")
@click.option("--data", "data_root", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="KITTI-format root (calib, image_2, label_2 of the frame).")
@click.option("--with", "others", multiple=True,
              help="Another cloud to overlay (artifact, folder or 'lidar'); repeatable.")
@click.option("--colors", default=None,
              help="Comma-separated colours, one per cloud in order (default: by role, Fig. 6: "
                   "ground truth/oracle blue, baseline red, ForeSeE yellow).")
@click.option("--dets", "dets_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder of KITTI result files (NNNNNN.txt with scores) to draw, or a detection "
                   "artifact folder holding them in data/.")
@click.option("--no-gt", is_flag=True, help="Do not draw the label_2 boxes.")
@click.option("--range", "range_m", default="-5,75,-40,40", show_default=True,
              help="BEV area X0,X1,Y0,Y1 in metres (velodyne x forward, y left).")
@click.option("--px-per-m", type=float, default=10.0, show_default=True, help="BEV scale.")
@click.option("--png", "png_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="BEV picture (default <FRAME>_bev.png when no other output is asked for).")
@click.option("--front", "front_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Front view: the first cloud on image_2, coloured by depth.")
@click.option("--ply", "ply_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="All clouds as one coloured PLY.")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Self-contained 3D page (no network needed to open it): clouds, boxes, ego car, "
                   "grid, layer toggles, BEV / driver's-view cameras.")
@click.option("--max-points", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="--html: at most this many points per cloud (random subset of those in --range).")
@click.option("--open3d", "use_open3d", is_flag=True, help="Open the interactive open3d viewer.")
@workdir_option
def show_command(artifact: str, frame: str, data_root: Path, others: tuple[str, ...], colors: str | None,
                 dets_dir: Path | None, no_gt: bool, range_m: str, px_per_m: float, png_path: Path | None,
                 front_path: Path | None, ply_path: Path | None, html_path: Path | None, max_points: int,
                 use_open3d: bool, workdir: Path) -> None:
    """Render one FRAME of a cloud ARTIFACT (and --with others): BEV / front view / PLY / 3D page / open3d."""
    from kitti import KittiRoot, read_label_file, read_velodyne
    from pipeline.cache import ArtifactCache
    from pseudolidar import viz

    if use_open3d and not viz.has_display():
        click.echo("error: no display (DISPLAY/WAYLAND_DISPLAY unset): the open3d viewer cannot open; "
                   "use --png/--front/--ply", err=True)
        sys.exit(2)
    frame = frame.zfill(6)
    try:
        view = viz.BevView(*viz.parse_range(range_m), px_per_m=px_per_m)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--range") from None
    root = KittiRoot(data_root)
    cache = ArtifactCache(workdir)
    sources = [_cloud_source(r, cache, root) for r in (artifact, *others)]
    if colors:
        try:
            rgb = [viz.color_rgb(c.strip()) for c in colors.split(",")]
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--colors") from None
        if len(rgb) != len(sources):
            raise click.BadParameter(f"{len(rgb)} colours for {len(sources)} clouds", param_hint="--colors")
    else:
        rgb = viz.colors_for_roles([role for _, _, role in sources])
    clouds = [viz.CloudLayer(read_velodyne(folder / f"{frame}.bin"), c, label)
              for (folder, label, _), c in zip(sources, rgb)]
    calib = root.calib(frame)
    gt = [] if no_gt or not root.path("label_2", frame).is_file() else root.labels(frame)
    if dets_dir is not None and (dets_dir / "data").is_dir():
        dets_dir = dets_dir / "data"
    dets = read_label_file(dets_dir / f"{frame}.txt") if dets_dir is not None else []
    boxes = ([viz.box_layer(gt, viz.GT_BOX_RGB, "ground truth")] if gt else []) + (
        [viz.box_layer(dets, viz.DET_BOX_RGB, "detections")] if dets_dir is not None else [])
    if not (png_path or front_path or ply_path or html_path or use_open3d):
        png_path = Path(f"{frame}_bev.png")
    written = []
    if png_path:
        viz.write_png(png_path, viz.render_bev(clouds, calib, gt_objects=gt, det_objects=dets, view=view,
                                               title=f"frame {frame}"))
        written.append(str(png_path))
    if front_path:
        viz.write_png(front_path, viz.render_front(root.image(frame), clouds[0].points_velo, calib,
                                                   gt_objects=gt, det_objects=dets))
        written.append(str(front_path))
    if ply_path:
        viz.write_ply(ply_path, clouds)
        written.append(str(ply_path))
    if html_path:
        from kitti import atomic_write_text
        from pseudolidar.html_view import HtmlView, build_page

        html_view = HtmlView(view.x_range_m, view.y_range_m, max_points=max_points)
        atomic_write_text(html_path, build_page(clouds, boxes, calib, view=html_view, title=f"frame {frame}"))
        written.append(str(html_path))
    n = ", ".join(f"{c.label} {len(c.points_velo)} pts" for c in clouds)
    if written:
        click.echo(f"frame {frame}: {n}; wrote {', '.join(written)}")
    if use_open3d:
        viz.open3d_view(clouds, boxes, calib=calib, title=f"foresee show {frame}")
