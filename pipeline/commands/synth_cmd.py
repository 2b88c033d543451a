"""``foresee synth``: render the embedded KITTI-format benchmark (synth)."""

from __future__ import annotations

from pathlib import Path

import click

_PRESETS = ("cpu-small", "dev", "full")


@click.command("synth")
@click.option("--out", "out_root", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Dataset root to write (training/{image_2,calib,label_2,velodyne,depth_2}, ImageSets/).")
@click.option("--preset", type=click.Choice(_PRESETS), default="cpu-small", show_default=True,
              help="Settings preset; the options below override it.")
@click.option("--frames-train", type=int, default=None, help="Frames of the train split.")
@click.option("--frames-val", type=int, default=None, help="Frames of the val split (other drives).")
@click.option("--seed", type=int, default=None, help="Base seed (same settings -> identical files).")
@click.option("--image-scale", type=float, default=None, help="1.0 = KITTI's 1242x375 (P2 scaled with it).")
@click.option("--density", "object_density", type=float, default=None, help="Scale the number of objects.")
@click.option("--frames-per-drive", type=int, default=None, help="Frames sharing one drive's style [10].")
@click.option("--lidar-step", "lidar_azimuth_step_deg", type=float, default=None,
              help="HDL-64E azimuth step in degrees [0.1728 = 10 Hz as KITTI; 0.0864 = 5 Hz].")
@click.option("--lidar-range", "lidar_max_range_m", type=float, default=None, help="LiDAR max range, m [120].")
@click.option("--max-label-depth", "max_label_depth_m", type=float, default=None,
              help="Farther visible objects become DontCare, m [80].")
@click.option("--min-box-height", "min_box_height_px", type=float, default=None,
              help="Lower visible 2D boxes become DontCare, px [15].")
@click.option("--min-visible", "min_visible_px", type=int, default=None,
              help="Objects with fewer visible pixels are not labelled [20].")
@click.option("--image-noise", type=float, default=None, help="Sensor noise std (0..1 scale) [0.012].")
@click.option("--workers", type=int, default=2, show_default=True, help="Processes rendering frames.")
@click.option("--force", is_flag=True, help="Render even when --out already holds this dataset.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_command(out_root: Path, preset: str, workers: int, force: bool, quiet: bool, **overrides) -> None:
    """Render the embedded benchmark: KITTI-format frames with dense depth and labels from the render."""
    from synth import dataset_is_current, preset as get_preset, render_dataset

    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = get_preset(preset).with_(**changes)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if not force and dataset_is_current(out_root, settings):
        click.echo(f"synth: cached ({out_root} already holds this dataset; --force to re-render)")
        return
    s = render_dataset(out_root, settings, workers=workers, progress=not quiet)
    click.echo(f"synth: {s['frames']} frames -> {out_root} in {s['seconds']:.1f} s "
               f"({s['frames_per_s']} frames/s), foreground {100 * s['fg_fraction']:.1f}% of pixels, "
               f"{s['labels_per_frame'].get('Car', 0):.2f} Car/frame")
