"""How long an all-cached ``foresee run`` takes at KITTI scale (the cache's own cost).

``python -m pipeline.bench --out DIR`` fabricates, under ``DIR``, a KITTI-layout root with the
7,481 frames of the 3DOP split (3,712 train + 3,769 val; tiny placeholder files: the chain's
planning reads names, sizes, mtimes and the text files, never the binary content) and one
artifact per node of the ``paper`` chain with KITTI's file counts (7,481 depth maps and clouds
per cloud, 3,769 result files per detector run), then times, in a fresh process state:

* ``plan``: building the chain (raw-data fingerprints) and checking every artifact (stat);
* ``execute``: taking every node from the cache (what ``foresee run`` does after the plan);
* the same after a crash (every hit re-hashed), for comparison.

Report writing (tables, figures: ~1-2 s) is not included: it reads real evaluation results.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from dataclasses import replace
from pathlib import Path

_CALIB = Path(__file__).resolve().parents[1] / "tests" / "data" / "kitti_sample" / "training" / "calib" / "000000.txt"


def _png_header(h: int = 375, w: int = 1242, bits: int = 8, colour: int = 2) -> bytes:
    """A PNG's signature and IHDR chunk: all that planning and validation read of an image."""
    return (b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + w.to_bytes(4, "big") + h.to_bytes(4, "big")
            + bytes([bits, colour]) + b"\0\0\0")


def fabricate_root(root: Path) -> tuple[str, ...]:
    """Placeholder files for every frame of the built-in 3DOP train + val split."""
    from kitti.layout import builtin_split

    ids = tuple(sorted(set(builtin_split("train")) | set(builtin_split("val"))))
    calib = _CALIB.read_bytes() if _CALIB.is_file() else b"P2: 1 0 0 0 0 1 0 0 0 0 1 0\n"
    content = {"image_2": (".png", _png_header()), "depth_2": (".png", _png_header(bits=16, colour=0)),
               "calib": (".txt", calib), "velodyne": (".bin", b"\0" * 16),
               "label_2": (".txt", b"Car 0.00 0 -1.58 587.0 173.3 614.1 200.1 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n")}
    for kind, (suffix, data) in content.items():
        d = root / "training" / kind
        d.mkdir(parents=True, exist_ok=True)
        for f in ids:
            (d / f"{f}{suffix}").write_bytes(data)
    return ids


def _fake_produce(name: str, both: tuple[str, ...], val: tuple[str, ...]):
    def produce(out: Path, deps) -> dict:
        if name.startswith(("depth-infer", "depth-gt")):
            folder, frames, suffix = out / "depth", both, ".npz"
        elif name.startswith("pseudolidar"):
            folder, frames, suffix = out / "velodyne", both, ".bin"
        elif name.startswith("detect-infer"):
            folder, frames, suffix = out / "data", val, ".txt"
        else:
            folder, frames, suffix = out, ("model",), ".pt"
        folder.mkdir(parents=True, exist_ok=True)
        for f in frames:
            (folder / f"{f}{suffix}").write_bytes(f.encode())
        return {"frames": len(frames)}
    return produce


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="Scratch folder (root + workdir), removed first.")
    ap.add_argument("--keep", action="store_true", help="Keep the fabricated files.")
    ap.add_argument("--reuse", action="store_true", help="Time the files a --keep run left (no fabrication).")
    args = ap.parse_args(argv)

    from pipeline.cache import ArtifactCache
    from pipeline.stages import RunConfig, build_chain
    from pipeline.executor import execute, plan

    root, work = args.out / "kitti", args.out / "work"
    cfg = RunConfig(data_root=root, preset="paper")
    if not (args.reuse and work.is_dir()):
        from kitti.layout import builtin_split

        shutil.rmtree(args.out, ignore_errors=True)
        t0 = time.time()
        ids = fabricate_root(root)
        c0 = time.process_time()
        specs = build_chain(cfg, work)  # the data validated once, remembered in the workdir
        print(f"first plan, data validated: {time.process_time() - c0:.2f} s CPU")
        fake = [replace(s, produce=_fake_produce(s.name, ids, builtin_split("val"))) for s in specs]
        execute(fake, ArtifactCache(work), log=lambda m: None)
        n_files = sum(1 for p in work.rglob("*") if p.is_file())
        print(f"fabricated {len(ids)} frames and {len(specs)} artifacts ({n_files} files) in {time.time() - t0:.0f} s")

    for verify in ("stat", "hash"):  # hash: as after a crash
        c0, w0 = time.process_time(), time.perf_counter()
        specs = build_chain(cfg, work)
        planned = plan(specs, ArtifactCache(work, verify=verify))
        c1, w1 = time.process_time(), time.perf_counter()
        assert all(p.cached for p in planned)
        # what foresee run does: the plan's stat check is the hit (after a crash: re-hashed)
        cache = ArtifactCache(work, verify=verify)
        if verify == "hash":
            cache._after_crash = True
        results = execute([replace(s, produce=None) for s in specs], cache, log=lambda m: None, planned=planned)
        c2, w2 = time.process_time(), time.perf_counter()
        assert all(a.cached for a, _ in results.values())
        print(f"verify={verify}: plan {w1 - w0:.2f} s wall / {c1 - c0:.2f} s CPU, execute {w2 - w1:.2f} s wall / "
              f"{c2 - c1:.2f} s CPU; all-cached run {w2 - w0:.2f} s wall / {c2 - c0:.2f} s CPU")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
