"""``foresee predict``: a trained chain on frames without labels.

depth -> pseudo-LiDAR -> 2D boxes -> 3D boxes, through **the same functions** the chain's stages
call: per frame :func:`depth.infer.frame_depth`, :func:`pseudolidar.stage.frame_points` and
:meth:`detect2d.infer.Detector2D.detect` (the bodies of ``infer_depth``, ``run_pseudolidar`` and
``infer_detector``), per chunk of frames the detector's ``infer`` of the detector registry
(:data:`pipeline.detectors.DETECTORS`), with the settings the run used (from the bundle). So
predicting the val split with a run's bundle writes that run's detect-infer files byte for byte
(tests/pipeline/test_predict.py) — when each network runs with the thread count the run's stage
used (no ``threads``): on this CPU the depth network's and the 2D detector's float bits depend on
torch's thread count.

Each process opens the models once. A frame's image is read once (for the depth network and the
2D detector); its depth map goes to pseudo-LiDAR in memory; its cloud is a temporary file that
the 3D detector reads with the chunk's other clouds, removed after the chunk (kept with
``keep_clouds``), so memory and disk do not grow with the number of frames. NumPy's BLAS runs on
one thread (its products here are small: threads only wait; the results are the same).
``workers`` > 1 forks that many processes after the imports, each taking chunks of frames.

Output folder::

    OUT/data/NNNNNN.txt       KITTI label_2 lines with score, one file per frame (empty: nothing found)
    OUT/boxes2d/NNNNNN.txt    the 2D detector's boxes
    OUT/velodyne/NNNNNN.bin   the pseudo-LiDAR clouds (--keep-clouds)
    OUT/pages/NNNNNN.html|png a 3D viewer page and a bird's-eye-view picture (--pages N)
    OUT/summary.json          frames, seconds and CPU seconds per stage, frames/s
"""

from __future__ import annotations

import gc
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

#: frames per chunk (the 3D detector runs on a chunk's clouds, then they are removed)
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


@dataclass(frozen=True)
class _Job:
    """What every process of one predict needs (inherited by forked workers)."""

    files: Any  # pipeline.bundle.ModelFiles
    data_root: Path
    out: Path
    clouds: Path
    keep_clouds: bool
    threads: int


class _Chain:
    """The networks of one process, opened once; the model files are read with torch's
    restricted unpickler (``weights_only``: no code of a file runs)."""

    def __init__(self, job: _Job, default: int) -> None:
        from depth.infer import load_for_inference
        from depth.model import CheckpointMismatchError
        from detect2d.infer import open_detector

        files = job.files
        #: torch threads of each network: ``threads``, else the run's (the 2D detector's and the 3D
        #: detector's settings, ``default`` (torch's) for the depth network, as the chain's stages)
        self.depth_threads = job.threads or default
        self.detect2d_threads = job.threads or files.detect2d_threads or default
        settings3 = files.detect3d_settings
        if job.threads and hasattr(settings3, "num_threads"):
            settings3 = settings3.with_(num_threads=job.threads)
        self.detect3d_settings = settings3
        self.detector = get_detector(files.detector)
        try:
            self.depth = load_for_inference(files.depth_checkpoint, "max", weights_only=True)
        except CheckpointMismatchError as e:
            raise KittiFormatError(Path(files.depth_checkpoint), None, str(e)) from None
        # loaded on the caller's threads (one, before workers fork); each frame sets its network's
        self.detect2d = open_detector(files.detect2d_model, options=dict(files.detect2d_options))


def _threads(n: int) -> None:
    import torch

    if n and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _predict_chunk(chain: _Chain, job: _Job, part: Sequence[str]) -> dict[str, dict[str, float]]:
    """Results of the frames ``part`` into ``job.out``; wall and CPU seconds per stage."""
    from kitti import KittiRoot, write_label_file, write_velodyne

    from depth.infer import frame_depth
    from pseudolidar.stage import frame_points

    root = KittiRoot(job.data_root)
    wall = dict.fromkeys(STAGES, 0.0)
    cpu = dict.fromkeys(STAGES, 0.0)
    t = [time.perf_counter(), time.process_time()]

    def lap(stage: str) -> None:
        w, c = time.perf_counter(), time.process_time()
        wall[stage] += w - t[0]
        cpu[stage] += c - t[1]
        t[:] = [w, c]

    for f in part:  # refuse a bad image before the chunk's work, as infer_detector does
        chain.detect2d.check(root, f)
    lap("detect2d")
    for f in part:
        image = root.image(f)
        _threads(chain.depth_threads)
        depth_m = frame_depth(chain.depth, root, f, image=image, merge="max")
        lap("depth")
        points = frame_points(depth_m, root.calib(f), root.image_hw(f), job.files.pseudolidar, name=f"frame {f}")
        write_velodyne(job.clouds / f"{f}.bin", points)
        lap("pseudolidar")
        _threads(chain.detect2d_threads)
        write_label_file(job.out / "boxes2d" / f"{f}.txt", chain.detect2d.detect(image))
        lap("detect2d")
    det = chain.detector
    det.infer(job.data_root, job.clouds, part, job.files.detect3d_model, chain.detect3d_settings, job.out,
              boxes2d=job.out / "boxes2d" if det.uses_boxes2d else None, progress=False)
    if not job.keep_clouds:
        for f in part:
            (job.clouds / f"{f}.bin").unlink(missing_ok=True)
    lap("detect3d")
    return {"frames": len(part), "seconds": wall, "cpu_seconds": cpu}


#: the job and the networks the forked workers inherit (set in the parent just before the fork)
_WORKER: dict[str, Any] = {}


def _worker_chunk(part: Sequence[str]) -> dict[str, Any]:
    """One chunk in a worker process; a :class:`KittiFormatError` comes back as its parts (it
    does not survive pickling) and is raised again in the parent."""
    try:
        return _predict_chunk(_WORKER["chain"], _WORKER["job"], part)
    except KittiFormatError as e:
        return {"error": (None if e.path is None else str(e.path), e.lineno, e.msg)}


def _warm_up(files) -> None:
    """Load the pseudo-LiDAR kernel (numba, from its cache) on a 2x2 map before the frames: forked
    workers inherit it instead of each loading it, and its objects are frozen with the rest."""
    import numpy as np

    from kitti.calib import Calibration
    from pseudolidar.backproject import depth_to_points_velo

    eye = np.hstack([np.eye(3), np.zeros((3, 1))])
    calib = Calibration(P2=eye, R0_rect=np.eye(3), Tr_velo_to_cam=eye)
    depth_to_points_velo(np.ones((2, 2), dtype=np.float32), calib, files.pseudolidar.max_height_m,
                         **files.pseudolidar.backprojection_options())


def cuda_present() -> bool:
    """A CUDA device is present (the networks then run on it; forked workers cannot)."""
    import torch

    return torch.cuda.is_available()


def _chunks(frames: Sequence[str], size: int, workers: int = 1) -> list[tuple[str, ...]]:
    """Chunks of at most ``size`` frames; with several workers they shrink as the frames run
    out (a share of what is left, at least 2 frames), so that the workers end together."""
    out, i = [], 0
    while i < len(frames):
        n = size if workers == 1 else max(2, min(size, -(-(len(frames) - i) // (4 * workers))))
        out.append(tuple(frames[i:i + n]))
        i += n
    return out


def predict_frames(files, data_root: Path, frames: Sequence[str], out: Path, *, keep_clouds: bool = False,
                   progress: bool = True, chunk: int = CHUNK, threads: int = 0, workers: int = 1) -> dict[str, Any]:
    """Write ``out/data`` (and ``out/boxes2d``, ``out/velodyne`` with ``keep_clouds``) for
    ``frames`` of the KITTI-format root ``data_root`` (``training/{image_2,calib}``).

    Args:
        threads: torch CPU threads of every network (0: the run's: the bundle's settings, torch's
            default for the depth network).
        workers: processes; more than 1 forks them (after the imports and the networks are
            opened), each runs every network on one thread (``threads`` 0 or 1) and takes chunks
            of frames (of at most ``chunk``, smaller as the frames run out so that the workers
            end together).

    Returns:
        ``frames``, ``seconds`` and ``cpu_seconds`` per stage (:data:`STAGES`; summed over the
        workers), totals (CPU: this process and its workers; ``cpu_seconds_workers``: the
        workers' share), frames/s.
    """
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from kitti.progress import tqdm_disable

    frames = tuple(frames)
    out = Path(out)
    clouds = out / "velodyne" if keep_clouds else out / ".tmp-clouds"
    for d in (out / "data", out / "boxes2d", clouds):
        d.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(int(workers), len(frames)))
    if workers > 1 and threads > 1:
        raise ValueError(f"{workers} workers run every network on one thread each, not {threads}")
    if workers > 1 and cuda_present():
        raise ValueError("workers are CPU processes (CUDA does not survive a fork): on GPUs use torchrun ranks")
    job = _Job(files, Path(data_root), out, clouds, keep_clouds, 1 if workers > 1 else threads)
    parts = _chunks(frames, chunk, workers)
    wall = dict.fromkeys(STAGES, 0.0)
    cpu = dict.fromkeys(STAGES, 0.0)

    def add(res: Mapping[str, Any]) -> None:
        if "error" in res:
            path, lineno, msg = res["error"]
            raise KittiFormatError(path, lineno, msg)
        for s in STAGES:
            wall[s] += res["seconds"][s]
            cpu[s] += res["cpu_seconds"][s]

    t_all, c_all = time.perf_counter(), time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    import torch

    default_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=1, user_api="blas"), \
                tqdm(total=len(frames), desc="predict", unit="frame", disable=tqdm_disable(progress),
                     dynamic_ncols=True) as bar:
            if workers == 1:
                chain = _Chain(job, default_threads)
                _warm_up(files)
                gc.freeze()  # the modules and networks: never garbage, never traversed again
                for part in parts:
                    add(_predict_chunk(chain, job, part))
                    bar.update(len(part))
            else:
                import multiprocessing

                # the networks are opened here and shared with the workers copy-on-write; a worker
                # runs them on one thread (OpenMP thread teams do not survive a fork)
                torch.set_num_threads(1)
                _WORKER.clear()
                _WORKER.update(job=job, chain=_Chain(job, default_threads))
                _warm_up(files)
                gc.freeze()  # ... nor copied into the workers by the collector touching them
                pool = multiprocessing.get_context("fork").Pool(workers)
                try:
                    for res in pool.imap_unordered(_worker_chunk, parts):
                        add(res)
                        bar.update(res["frames"])
                    pool.close()
                except BaseException:
                    pool.terminate()
                    raise
                finally:
                    pool.join()
                    _WORKER.clear()
                    torch.set_num_threads(default_threads)
    finally:
        gc.unfreeze()
        if not keep_clouds:
            shutil.rmtree(clouds, ignore_errors=True)
    seconds = time.perf_counter() - t_all
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_children = (children.ru_utime - children0.ru_utime) + (children.ru_stime - children0.ru_stime)
    cpu_seconds = time.process_time() - c_all + cpu_children
    n = len(frames)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss if workers > 1 else 0)
    return {"frames": n,
            "seconds": {s: round(v, 3) for s, v in wall.items()},
            "cpu_seconds": {s: round(v, 3) for s, v in cpu.items()},
            "seconds_total": round(seconds, 3), "cpu_seconds_total": round(cpu_seconds, 3),
            "frames_per_s": round(n / seconds, 3) if seconds > 0 else None,
            "cpu_seconds_per_frame": round(cpu_seconds / n, 4) if n else None,
            "cpu_seconds_workers": round(cpu_children, 3),
            "peak_rss_mib": round(peak / 1024, 1),
            "threads": threads or None, "workers": workers}


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
                     keep_clouds: bool, progress: bool, data_id: str, shard=None, threads: int = 0,
                     workers: int = 1) -> tuple[Any, str]:
    """predict as a cached (and, under torchrun, sharded) artifact ``<workdir>/predict/<key>``:
    keyed on the bundle's manifest hash, the frames' data and the options."""
    from pipeline.cache import ArtifactCache
    from pipeline.sharding import build_sharded

    cache = ArtifactCache(workdir)
    settings = {"bundle": models.bundle.sha256, "keep_clouds": keep_clouds}

    def produce(tmp: Path, part: tuple[str, ...]) -> dict[str, Any]:
        return predict_frames(models.files, data_root, part, tmp, keep_clouds=keep_clouds, progress=progress,
                              threads=threads, workers=workers)

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
