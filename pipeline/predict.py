"""``foresee predict``: a trained chain on frames without labels.

depth -> pseudo-LiDAR -> 2D boxes -> 3D boxes, through **the same functions** the chain's stages
call (:func:`depth.infer.infer_depth`, :func:`pseudolidar.stage.run_pseudolidar`,
:func:`pipeline.stages.detect2d_results`' :func:`detect2d.infer.infer_detector`, the detector's
``infer`` of the detector registry, :data:`pipeline.detectors.DETECTORS`), with the settings the run used (from the
bundle), so that predicting the val split with a run's bundle writes that run's detect-infer
files byte for byte (tests/pipeline/test_predict.py).

Frames go through the chain in chunks of :data:`CHUNK` frames: each chunk's depth maps and clouds
are temporary files removed after its 3D boxes are written (clouds kept with ``keep_clouds``), so
memory and disk do not grow with the number of frames.

Output folder::

    OUT/data/NNNNNN.txt       KITTI label_2 lines with score, one file per frame (empty: nothing found)
    OUT/boxes2d/NNNNNN.txt    the 2D detector's boxes
    OUT/velodyne/NNNNNN.bin   the pseudo-LiDAR clouds (--keep-clouds)
    OUT/pages/NNNNNN.html|png a 3D viewer page and a bird's-eye-view picture (--pages N)
    OUT/summary.json          frames, seconds and CPU seconds per stage, frames/s
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from kitti import KittiFormatError
from pipeline.detectors import get as get_detector

#: frames per chunk (each stage runs on a chunk, then the chunk's temporary files are removed)
CHUNK = 32
#: stages in the order they run, as summary.json names them
STAGES = ("depth", "pseudolidar", "detect2d", "detect3d")
#: bumped when predict's output changes for the same models and frames (its cache key)
CODE_VERSION = "1"


@dataclass(frozen=True)
class Models:
    """Where predict's models come from: a loaded bundle written out as model files."""

    files: Any  # pipeline.bundle.ModelFiles
    bundle: Any  # pipeline.bundle.Bundle


def open_models(source: Path, folder: Path, *, variant: str = "foresee", detector: str = "fpointnet") -> Models:
    """A bundle file, or a run's workdir (exported to ``folder/bundle.foresee`` first, so both go
    through the same checks), loaded and written out as model files under ``folder``."""
    from pipeline.bundle import export_bundle, load_bundle, materialize

    source = Path(source)
    if source.is_dir():
        path = Path(folder) / "bundle.foresee"
        export_bundle(source, path, variant=variant, detector=detector)
        source = path
    bundle = load_bundle(source)
    return Models(materialize(bundle, Path(folder) / "models"), bundle)


def predict_frames(files, data_root: Path, frames: Sequence[str], out: Path, *, keep_clouds: bool = False,
                   progress: bool = True, chunk: int = CHUNK, threads: int = 0) -> dict[str, Any]:
    """Write ``out/data`` (and ``out/boxes2d``, ``out/velodyne`` with ``keep_clouds``) for
    ``frames`` of the KITTI-format root ``data_root`` (``training/{image_2,calib}``).
    ``threads``: torch CPU threads of every stage (0: the bundle's settings and torch's default).

    Returns:
        ``frames``, ``seconds`` and ``cpu_seconds`` per stage (:data:`STAGES`), totals, frames/s.
    """
    from tqdm import tqdm

    from kitti.progress import tqdm_disable

    from depth.infer import infer_depth
    from detect2d.infer import infer_detector
    from pseudolidar.stage import run_pseudolidar

    frames = tuple(frames)
    out = Path(out)
    data, boxes2d = out / "data", out / "boxes2d"
    clouds = out / "velodyne" if keep_clouds else out / ".tmp-clouds"
    depth_dir = out / ".tmp-depth"
    for d in (data, boxes2d, clouds, depth_dir):
        d.mkdir(parents=True, exist_ok=True)
    det = get_detector(files.detector)
    d2_threads, settings3 = files.detect2d_threads, files.detect3d_settings
    if threads:
        import torch

        torch.set_num_threads(threads)
        d2_threads = threads
        if hasattr(settings3, "num_threads"):
            settings3 = settings3.with_(num_threads=threads)
    wall = dict.fromkeys(STAGES, 0.0)
    cpu = dict.fromkeys(STAGES, 0.0)

    def timed(stage: str, fn, *args, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn(*args, **kw)
        wall[stage] += time.perf_counter() - t0
        cpu[stage] += time.process_time() - c0
        return result

    t_all, c_all = time.perf_counter(), time.process_time()
    try:
        with tqdm(total=len(frames), desc="predict", unit="frame", disable=tqdm_disable(progress), dynamic_ncols=True) as bar:
            for i in range(0, len(frames), chunk):
                part = frames[i:i + chunk]
                timed("depth", infer_depth, data_root, part, files.depth_checkpoint, depth_dir, merge="max",
                      progress=False)
                timed("pseudolidar", run_pseudolidar, depth_dir, data_root, part, clouds, files.pseudolidar,
                      workers=1, progress=False)
                timed("detect2d", infer_detector, data_root, part, files.detect2d_model, boxes2d,
                      num_threads=d2_threads, options=dict(files.detect2d_options), progress=False)
                timed("detect3d", det.infer, data_root, clouds, part, files.detect3d_model, settings3,
                      out, boxes2d=boxes2d if det.uses_boxes2d else None, progress=False)
                for f in part:
                    (depth_dir / f"{f}.npz").unlink(missing_ok=True)
                    if not keep_clouds:
                        (clouds / f"{f}.bin").unlink(missing_ok=True)
                bar.update(len(part))
    finally:
        shutil.rmtree(depth_dir, ignore_errors=True)
        if not keep_clouds:
            shutil.rmtree(clouds, ignore_errors=True)
    seconds, cpu_seconds = time.perf_counter() - t_all, time.process_time() - c_all
    n = len(frames)
    return {"frames": n,
            "seconds": {s: round(v, 3) for s, v in wall.items()},
            "cpu_seconds": {s: round(v, 3) for s, v in cpu.items()},
            "seconds_total": round(seconds, 3), "cpu_seconds_total": round(cpu_seconds, 3),
            "frames_per_s": round(n / seconds, 3) if seconds > 0 else None,
            "cpu_seconds_per_frame": round(cpu_seconds / n, 4) if n else None,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "threads": threads or None}


def write_pages(data_root: Path, out: Path, frames: Sequence[str]) -> list[str]:
    """A self-contained 3D viewer page and a bird's-eye-view PNG per frame, from the kept clouds
    and the result files, into ``out/pages``."""
    from kitti import KittiRoot, atomic_write_text, read_label_file, read_velodyne
    from pseudolidar import viz
    from pseudolidar.html_view import HtmlView, build_page

    root = KittiRoot(data_root)
    pages = Path(out) / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    view = viz.BevView()
    written = []
    for f in frames:
        calib = root.calib(f)
        cloud = viz.CloudLayer(read_velodyne(Path(out) / "velodyne" / f"{f}.bin"),
                               viz.colors_for_roles(["foresee"])[0], "pseudo-LiDAR")
        dets = read_label_file(Path(out) / "data" / f"{f}.txt")
        viz.write_png(pages / f"{f}.png", viz.render_bev([cloud], calib, gt_objects=[], det_objects=dets, view=view,
                                                         title=f"frame {f}"))
        html_view = HtmlView(view.x_range_m, view.y_range_m)
        atomic_write_text(pages / f"{f}.html", build_page([cloud], [viz.box_layer(dets, viz.DET_BOX_RGB, "detections")],
                                                          calib, view=html_view, title=f"frame {f}"))
        written += [str(pages / f"{f}.html"), str(pages / f"{f}.png")]
    return written


# ------------------------------------------------------------------------------------ geometry check
#: how far one's own camera may be from the training geometry before predict warns
LIMITS = {"camera_height_m": 0.2, "focal_rel": 0.10, "image_rel": 0.10}


def geometry_warnings(trained, own) -> list[str]:
    """One line per way ``own`` (a :class:`pipeline.bundle.Geometry`) differs from ``trained``
    beyond :data:`LIMITS`: camera height over 0.2 m, focal length or image width/height over 10 %."""
    lines = []
    dh = own.camera_height_m - trained.camera_height_m
    if abs(dh) > LIMITS["camera_height_m"]:
        lines.append(f"camera height {own.camera_height_m:.2f} m vs {trained.camera_height_m:.2f} m in training "
                     f"({dh:+.2f} m; limit ±{LIMITS['camera_height_m']} m)")
    df = own.fx / trained.fx - 1.0
    if abs(df) > LIMITS["focal_rel"]:
        lines.append(f"focal length {own.fx:.1f} px vs {trained.fx:.1f} px in training ({df:+.0%}; limit "
                     f"±{LIMITS['focal_rel']:.0%})")
    for axis, i in (("height", 0), ("width", 1)):
        d = own.image_hw[i] / trained.image_hw[i] - 1.0
        if abs(d) > LIMITS["image_rel"]:
            lines.append(f"image {axis} {own.image_hw[i]} px vs {trained.image_hw[i]} px in training ({d:+.0%}; "
                         f"limit ±{LIMITS['image_rel']:.0%})")
    return lines


def root_geometry(root_dir: Path, frame: str, trained) -> Any:
    """The geometry of one frame of a root (its calib and image), camera and LiDAR heights from
    the calibration's Tr_velo_to_cam with the training road height."""
    from kitti import KittiRoot
    from pipeline.bundle import Geometry

    root = KittiRoot(root_dir)
    calib = root.calib(frame)
    origin = calib.velo_to_rect_matrix[:3, 3]
    lidar_h = trained.lidar_height_m
    return Geometry(root.image_hw(frame), calib.fu, calib.fv, calib.cu, calib.cv,
                    round(lidar_h + float(origin[1]), 3), lidar_h, float(origin[2]))


# ------------------------------------------------------------------------------------ cached, sharded
def predict_artifact(models: Models, data_root: Path, frames: Sequence[str], workdir: Path, *,
                     keep_clouds: bool, progress: bool, data_id: str, shard=None, threads: int = 0
                     ) -> tuple[Any, str]:
    """predict as a cached (and, under torchrun, sharded) artifact ``<workdir>/predict/<key>``:
    keyed on the bundle's manifest hash, the frames' data and the options."""
    from pipeline.cache import ArtifactCache
    from pipeline.sharding import build_sharded

    cache = ArtifactCache(workdir)
    settings = {"bundle": models.bundle.sha256, "keep_clouds": keep_clouds}

    def produce(tmp: Path, part: tuple[str, ...]) -> dict[str, Any]:
        return predict_frames(models.files, data_root, part, tmp, keep_clouds=keep_clouds, progress=progress,
                              threads=threads)

    return build_sharded(cache, "predict", code_version=CODE_VERSION, settings=settings,
                         inputs=[data_id], frame_ids=tuple(frames), produce=produce, shard=shard,
                         extra_manifest={"node": "predict", "data_root": str(Path(data_root).resolve())})


def copy_artifact(src: Path, out: Path) -> None:
    """The artifact's folders into ``out`` (hard links where possible)."""
    for sub in ("data", "boxes2d", "velodyne"):
        if (Path(src) / sub).is_dir():
            dst = Path(out) / sub
            dst.mkdir(parents=True, exist_ok=True)
            for p in (Path(src) / sub).iterdir():
                target = dst / p.name
                target.unlink(missing_ok=True)
                try:
                    os.link(p, target)
                except OSError:
                    shutil.copy2(p, target)


def manifest_summary(summary: Any) -> Any:
    """A summary as the cache's manifest recorded it (floats as their ``repr`` strings), with
    the numbers back."""
    if isinstance(summary, Mapping):
        return {k: manifest_summary(v) for k, v in summary.items()}
    if isinstance(summary, list):
        return [manifest_summary(v) for v in summary]
    if isinstance(summary, str):
        try:
            return float(summary)
        except ValueError:
            return summary
    return summary


def write_summary(out: Path, summary: Mapping[str, Any]) -> None:
    from kitti import atomic_write_text

    atomic_write_text(Path(out) / "summary.json", json.dumps(dict(summary), indent=1) + "\n")


def check_frames(root_dir: Path, frames: Sequence[str]) -> None:
    """Every frame's image and calibration present, before any work (one line naming the first
    missing file)."""
    from kitti import KittiRoot

    if not frames:
        raise KittiFormatError(Path(root_dir), None, "no frames to predict")
    KittiRoot(root_dir).check(tuple(frames), ("image_2", "calib"))
