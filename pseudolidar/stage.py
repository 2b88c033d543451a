"""The pseudo-LiDAR stage: a folder of per-frame depth maps -> a folder of velodyne ``.bin``.

Inputs: ``depth_dir/NNNNNN.npz`` (float32 ``depth_m``, :mod:`kitti.depth_io`) or
``depth_dir/NNNNNN.png`` (KITTI uint16, depth·256), the calibration and image_2 size of each frame
from a KITTI root. Output: ``out_dir/NNNNNN.bin`` (KITTI velodyne float32 x, y, z, r), each
written atomically. Frames run in a process pool; the cache (``pipeline``) makes the folder.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from kitti import (Calibration, KittiFormatError, KittiRoot, check_depth_map, read_depth,
                   write_velodyne)
from kitti.layout import image_size_hw
from kitti.progress import tqdm_disable
from pseudolidar.backproject import depth_to_points_velo
from pseudolidar.settings import PseudoLidarSettings

#: Depth-map file suffixes the stage reads, in order of preference.
DEPTH_SUFFIXES = (".npz", ".png")


@dataclass(frozen=True)
class _Job:
    frame_id: str
    depth_path: Path
    calib_path: Path
    image_path: Path
    out_path: Path


def _find_depth(depth_dir: Path, frame_id: str) -> Path | None:
    for suffix in DEPTH_SUFFIXES:
        p = depth_dir / f"{frame_id}{suffix}"
        if p.is_file():
            return p
    return None


def _missing_error(path: Path, what: str, missing: list[str]) -> KittiFormatError:
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return KittiFormatError(path, None, f"frame {missing[0]}: {what} missing "
                            f"({len(missing)} frame(s): {', '.join(missing[:3])}{more})")


def _plan(depth_paths: dict[str, Path | None], expected: Callable[[str], Path], what: str,
          root: KittiRoot, frame_ids: Sequence[str], out_dir: Path) -> list[_Job]:
    """Check every input exists before any work starts; one error naming frame and file."""
    missing = [f for f in frame_ids if depth_paths[f] is None]
    if missing:
        raise _missing_error(expected(missing[0]), what, missing)
    for kind, what in (("calib", "calibration"), ("image_2", "image_2 (for the image size)")):
        missing = [f for f in frame_ids if not root.path(kind, f).is_file()]
        if missing:
            raise _missing_error(root.path(kind, missing[0]), what, missing)
    return [_Job(f, depth_paths[f], root.path("calib", f), root.path("image_2", f),
                 out_dir / f"{f}.bin") for f in frame_ids]


def convert_frame(depth_path: Path, calib_path: Path, image_path: Path, out_path: Path,
                  settings: PseudoLidarSettings) -> int:
    """One frame: read, check (shape against image_2, NaN/inf, negative), back-project, write.

    Returns:
        The number of points written.

    Raises:
        KittiFormatError: naming the depth file (or calib/image file) and what is wrong.
    """
    calib = Calibration.from_file(calib_path)
    hw = image_size_hw(image_path)
    points = frame_points(read_depth(depth_path), calib, hw, settings, name=f"frame {Path(depth_path).stem}",
                          path=depth_path)
    write_velodyne(out_path, points)
    return int(points.shape[0])


def frame_points(depth_m: np.ndarray, calib: Calibration, image_hw: tuple[int, int], settings: PseudoLidarSettings,
                 *, name: str = "depth map", path: Path | None = None) -> np.ndarray:
    """One frame's cloud, as :func:`convert_frame` writes it: the depth map checked (its image's
    size, NaN/inf, negative; the error names ``name`` and ``path``), back-projected, the height
    cut applied. Returns (N, 4) velodyne points."""
    check_depth_map(depth_m, name=name, path=path, image_hw=image_hw)
    return depth_to_points_velo(depth_m, calib, settings.max_height_m, **settings.backprojection_options())


def _run_job(job: _Job, settings: PseudoLidarSettings) -> tuple[str, int, tuple | None]:
    # KittiFormatError does not survive pickling with its (path, lineno, msg) signature:
    # ship its parts back and re-raise in the parent.
    try:
        return job.frame_id, convert_frame(job.depth_path, job.calib_path, job.image_path,
                                           job.out_path, settings), None
    except KittiFormatError as e:
        return job.frame_id, -1, (None if e.path is None else str(e.path), e.lineno, e.msg)


def _run_chunk(jobs: list[_Job], settings: PseudoLidarSettings) -> list[tuple[str, int, tuple | None]]:
    out = []
    for job in jobs:
        result = _run_job(job, settings)
        out.append(result)
        if result[2] is not None:
            break
    return out


def _chunks(items: Sequence[_Job], size: int) -> Iterable[list[_Job]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _execute(jobs: list[_Job], settings: PseudoLidarSettings, out_dir: Path, workers: int,
             progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}

    def take(results: list[tuple[str, int, tuple | None]], bar) -> None:
        for frame_id, n, err in results:
            if err is not None:
                raise KittiFormatError(err[0], err[1], err[2])
            counts[frame_id] = n
        bar.update(len(results))

    def new_bar():
        return tqdm(total=len(jobs), desc="pseudo-LiDAR", unit="frame", disable=tqdm_disable(progress))

    if workers <= 1 or len(jobs) <= 1:
        with new_bar() as bar:
            for chunk in _chunks(jobs, 1):
                take(_run_chunk(chunk, settings), bar)
    else:
        size = max(1, min(16, len(jobs) // (4 * workers)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            # submit (which starts the workers) before tqdm starts its monitor thread
            futures = [pool.submit(_run_chunk, chunk, settings) for chunk in _chunks(jobs, size)]
            try:
                with new_bar() as bar:
                    for fut in futures:
                        take(fut.result(), bar)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    seconds = time.perf_counter() - t0
    n = np.array([counts[j.frame_id] for j in jobs], dtype=np.int64)
    return {"frames": len(jobs),
            "points_per_frame_mean": float(n.mean()) if n.size else 0.0,
            "points_per_frame_min": int(n.min()) if n.size else 0,
            "points_per_frame_max": int(n.max()) if n.size else 0,
            "points_total": int(n.sum()),
            "seconds": round(seconds, 3),
            "workers": int(workers)}


def _unique(frame_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(str(f) for f in frame_ids))


def run_pseudolidar(depth_dir: Path, data_root: Path, frame_ids: Sequence[str], out_dir: Path,
                    settings: PseudoLidarSettings, *, workers: int = 2,
                    progress: bool = True) -> dict[str, Any]:
    """Convert a folder of depth maps to pseudo-LiDAR velodyne files.

    Args:
        depth_dir: folder of ``NNNNNN.npz`` (float32 ``depth_m``) or ``NNNNNN.png`` (uint16
            depth·256) maps, one per frame, each of its image_2's size; 0 = no data.
        data_root: KITTI root holding ``training/calib`` and ``training/image_2``.
        frame_ids: the frames to convert (6-digit ids).
        out_dir: where ``NNNNNN.bin`` go (created; each file written atomically).
        settings: the stage's settings (height filter and options).
        workers: processes (1 = in this process).
        progress: show a tqdm bar.

    Returns:
        Summary: ``frames``, ``points_per_frame_mean`` (and min, max, total), ``seconds``,
        ``workers``.

    Raises:
        KittiFormatError: before any work, a missing depth map, calib or image (naming the frame
            and the file); during the work, a map whose shape differs from its image's, or with
            NaN/inf/negative depth (naming the frame and the file).
    """
    depth_dir = Path(depth_dir)
    if not depth_dir.is_dir():
        raise KittiFormatError(depth_dir, None, "depth folder not found")
    ids = _unique(frame_ids)
    root = KittiRoot(Path(data_root))
    jobs = _plan({f: _find_depth(depth_dir, f) for f in ids}, lambda f: depth_dir / f"{f}.npz",
                 "depth map (.npz or .png)", root, ids, Path(out_dir))
    return _execute(jobs, settings, Path(out_dir), workers, progress)


def run_from_gt_depth(data_root: Path, frame_ids: Sequence[str], out_dir: Path,
                      settings: PseudoLidarSettings, *, workers: int = 2,
                      progress: bool = True) -> dict[str, Any]:
    """The oracle cloud: ground-truth depth (``training/depth_2/NNNNNN.png``) -> pseudo-LiDAR.

    Same arguments, checks and summary as :func:`run_pseudolidar`.
    """
    root = KittiRoot(Path(data_root))
    depth_dir = root.folder("depth_2")
    if not depth_dir.is_dir():
        raise KittiFormatError(depth_dir, None, "missing folder 'depth_2' (ground-truth depth) in "
                               f"KITTI root {root.root}")
    ids = _unique(frame_ids)
    paths = {f: (root.path("depth_2", f) if root.path("depth_2", f).is_file() else None) for f in ids}
    jobs = _plan(paths, lambda f: root.path("depth_2", f), "ground-truth depth map", root, ids,
                 Path(out_dir))
    return _execute(jobs, settings, Path(out_dir), workers, progress)


def default_workers() -> int:
    """Two processes, or fewer when the machine has fewer cores."""
    return max(1, min(2, os.cpu_count() or 1))


def depth_folder_fingerprint(depth_dir: Path, frame_ids: Sequence[str]) -> str:
    """A short hash of a plain depth folder (names, sizes and mtimes of the frames' maps), for
    cache keys of inputs that are not artifacts. Missing maps are left to :func:`run_pseudolidar`."""
    import hashlib

    h = hashlib.sha256()
    for f in _unique(frame_ids):
        p = _find_depth(Path(depth_dir), f)
        if p is None:
            h.update(f"{f}:missing\n".encode())
            continue
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
