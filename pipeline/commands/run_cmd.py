"""``foresee run`` (the whole chain, cached) and ``foresee table4`` (its report)."""

from __future__ import annotations

from pathlib import Path

import click

from kitti.errors import KittiFormatError
from pipeline.commands.cache_cmd import workdir_option
from pipeline.detectors import DETECTORS, names_help
from pipeline.stages import CLOUDS, DEFAULT_CLOUDS


def _common(f):
    f = click.option("--set", "overrides", multiple=True, metavar="STAGE.FIELD=VALUE",
                     help="Override one setting of a stage's preset (depth, pseudolidar, detect, detect2d), "
                          "e.g. --set depth.max_steps=50 --set pseudolidar.max_height_m=1.5; detect.X "
                          f"reaches every 3D detector that has X, {' / '.join(d + '.X' for d in DETECTORS)} one detector.")(f)
    f = click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Training seeds 0..N-1 (depth training and 3D-detector training); the render, "
                          "depth ground truth and 2D boxes are shared. 1: the one-seed chain.")(f)
    f = click.option("--clouds", default=",".join(DEFAULT_CLOUDS), show_default=True,
                     help=f"Report rows to build, of {', '.join(CLOUDS)}; foresee-obj (object-surface "
                          "foreground, an extension beyond the paper) is opt-in.")(f)
    f = click.option("--boxes2d", default="detector", show_default=True,
                     help="2D boxes at test time: 'detector' (the detect2d stage, trained on the train "
                          "split), 'simulated' / 'gt' (from the val labels), or a detection file/folder.")(f)
    f = click.option("--detector", default="fpointnet", show_default=True, callback=_parse_detectors,
                     help=f"3D detector(s): NAME[,NAME...] of {', '.join(DETECTORS)}, or 'all' ('both' is "
                          f"the same) for every one; one Table-4 row per detector and cloud ({names_help()}).")(f)
    f = click.option("--preset", type=click.Choice(["cpu-small", "paper"]), default="cpu-small", show_default=True)(f)
    f = click.option("--depth-val-split", default=None,
                     help="Frames with depth ground truth for Table 2 [the val split]; KOD: kod_val.")(f)
    f = click.option("--depth-train-split", default=None,
                     help="Frames with depth ground truth for depth training [the train split]; KOD: kod_train.")(f)
    f = click.option("--val-split", default="val", show_default=True)(f)
    f = click.option("--train-split", default="train", show_default=True)(f)
    f = click.option("--data", "data_root", type=click.Path(path_type=Path), required=True,
                     help="KITTI-format root.")(f)
    return workdir_option(f)


def _parse_detectors(ctx, param, value: str) -> str:
    """``--detector``: comma-separated registry names, or ``all`` / ``both`` (every detector)."""
    if value.strip() in ("all", "both"):
        return ",".join(DETECTORS)
    names = [d.strip() for d in value.split(",") if d.strip()]
    bad = [d for d in names if d not in DETECTORS]
    if bad or not names:
        raise click.BadParameter(f"unknown detector(s) {bad}; choose from {', '.join(DETECTORS)} or all",
                                 ctx=ctx, param=param)
    return ",".join(names)


def _parse_overrides(items) -> dict:
    import json

    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        stage, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise click.BadParameter(f"expected STAGE.FIELD=VALUE, got {item!r}", param_hint="--set")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if isinstance(parsed, list):
            parsed = tuple(parsed)
        out.setdefault(stage, {})[name] = parsed
    return out


def _config(data_root, preset, train_split, val_split, detector, boxes2d, clouds, overrides=(),
            depth_train_split=None, depth_val_split=None, seeds=1, workdir=None):
    from pipeline.stages import RunConfig

    names = tuple(c.strip() for c in clouds.split(",") if c.strip())
    bad = [c for c in names if c not in CLOUDS]
    if bad:
        raise click.BadParameter(f"unknown cloud(s) {bad}; choose from {list(CLOUDS)}", param_hint="--clouds")
    cfg = RunConfig(data_root=data_root, preset=preset, train_split=train_split, val_split=val_split,
                    detector=detector, clouds=names, boxes2d=boxes2d,
                    overrides=_parse_overrides(overrides), depth_train_split=depth_train_split,
                    depth_val_split=depth_val_split, seeds=seeds)
    from pipeline.stages import build_chain

    try:
        specs = build_chain(cfg, workdir)  # settings and data are checked here, before any work
    except KittiFormatError:
        raise
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    return cfg, specs


@click.command("run")
@_common
@click.option("--dry-run", is_flag=True, help="Print the plan only.")
@click.option("--synth-if-missing", is_flag=True,
              help="Render the embedded benchmark into --data first when it does not exist.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Report folder (default WORKDIR/report).")
@click.option("--no-wait", is_flag=True,
              help="When another run on this workdir is building a stage this run needs, stop (exit 2) "
                   "instead of waiting for it and taking its artifact from the cache.")
def run_command(workdir, data_root, train_split, val_split, depth_train_split, depth_val_split, preset, detector,
                boxes2d, clouds, seeds, overrides, dry_run, synth_if_missing, report_dir, no_wait):
    """Run (or reuse) every stage: depth -> pseudo-LiDAR -> detection -> evaluation -> report."""
    from pipeline.run import run_chain

    if synth_if_missing and not (Path(data_root) / "training").is_dir():
        from pipeline.run import synth_default

        synth_default(Path(data_root), preset)
    cfg, specs = _config(data_root, preset, train_split, val_split, detector, boxes2d, clouds, overrides,
                         depth_train_split, depth_val_split, seeds, workdir=Path(workdir))
    run_chain(cfg, Path(workdir), dry_run=dry_run, report_dir=report_dir, specs=specs, wait=not no_wait)


@click.command("table4")
@_common
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Report folder (default WORKDIR/report).")
def table4_command(workdir, data_root, train_split, val_split, depth_train_split, depth_val_split, preset,
                   detector, boxes2d, clouds, seeds, overrides, report_dir):
    """Write Table 4 (and Table 2) from a finished run's cached evaluations."""
    from pipeline.run import write_reports

    cfg, _ = _config(data_root, preset, train_split, val_split, detector, boxes2d, clouds, overrides,
                     depth_train_split, depth_val_split, seeds, workdir=Path(workdir))
    write_reports(cfg, Path(workdir), report_dir=report_dir)
