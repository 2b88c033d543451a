"""``foresee eval``: KITTI AP (2D / BEV / 3D / AOS, R11 and R40) of a results folder, like the devkit."""

from __future__ import annotations

from pathlib import Path

import click


def _csv_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@click.command("eval")
@click.option("--gt", "gt_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="KITTI root (uses training/label_2) or a label_2 folder.")
@click.option("--split", default=None,
              help="Frames to evaluate: a split name (val, train, ROOT/ImageSets/<name>.txt) or a "
                   "split file. Default: every result file in --det (the devkit's rule).")
@click.option("--det", "det_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Results folder: one NNNNNN.txt per frame, label_2 lines with a score.")
@click.option("--classes", default="Car,Pedestrian,Cyclist", show_default=True,
              help="Comma-separated subset of Car,Pedestrian,Cyclist.")
@click.option("--metrics", default="2d,bev,3d,aos", show_default=True,
              help="Comma-separated subset of 2d,bev,3d,aos.")
@click.option("--loose", is_flag=True, help="BEV/3D IoU thresholds 0.5/0.25/0.25 instead of 0.7/0.5/0.5.")
@click.option("--missing-as-empty", is_flag=True,
              help="A frame of the split without a result file has no detections (default: error).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write AP as JSON (class -> metric -> R11/R40 -> [easy, moderate, hard]).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write AP as CSV (class, metric, recall, easy, moderate, hard).")
@click.option("--quiet", is_flag=True, help="Print only the one-line summary.")
def eval_command(gt_path: Path, split: str | None, det_dir: Path, classes: str, metrics: str,
                 loose: bool, missing_as_empty: bool, json_out: Path | None, csv_out: Path | None,
                 quiet: bool) -> None:
    """Evaluate KITTI results (AP 2D/BEV/3D/AOS) exactly like the official devkit."""
    from kitti.fileio import atomic_write_text
    from kitti.layout import KittiRoot
    from kitti_eval import EvalSettings, IouThresholds, evaluate_folders
    from kitti_eval.report import format_table

    try:
        settings = EvalSettings(classes=_csv_list(classes), metrics=_csv_list(metrics),
                                iou=IouThresholds.loose() if loose else IouThresholds())
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    root = KittiRoot(gt_path)
    label_dir = root.folder("label_2") if root.has("label_2") else gt_path
    frame_ids = root.split(split) if split is not None else None
    if frame_ids is not None and root.has("label_2"):
        from pipeline.validate import validate

        validate(root, [(frame_ids, ("label_2",))])
    result = evaluate_folders(label_dir, det_dir, frame_ids, missing_as_empty=missing_as_empty,
                              classes=settings.classes, metrics=settings.metrics,
                              recall_points=settings.recall_points, thresholds=settings.iou)
    if json_out is not None:
        atomic_write_text(json_out, result.to_json() + "\n")
    if csv_out is not None:
        atomic_write_text(csv_out, result.to_dataframe().to_csv(index=False))
    if not quiet:
        click.echo(format_table(result.ap, settings.iou, result.n_frames))
    written = " ".join(str(p) for p in (json_out, csv_out) if p is not None)
    headline = _headline(result.ap)
    click.echo(f"evaluated {result.n_frames} frames{': ' + headline if headline else ''}"
               f"{' -> ' + written if written else ''}")
    for note in result.sampling_notes():  # why perfect detections may score below 100
        click.echo(note, err=True)


def _headline(ap) -> str:
    """The summary line's AP: R40 moderate of BEV and 3D (2D and AOS when there is no 3D box) of
    Car, else of the first class evaluated."""
    cname = "Car" if "Car" in ap else next(iter(ap), None)
    if cname is None:
        return ""
    metrics = ap[cname]
    shown = [m for m in ("bev", "3d") if m in metrics] or [m for m in ("2d", "aos") if m in metrics]
    return ", ".join(f"{cname} {m} R40 mod {metrics[m]['R40'][1]:.2f}" for m in shown if "R40" in metrics[m])
