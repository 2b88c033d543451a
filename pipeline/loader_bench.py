"""Samples/s that the AVOD and 2D-detector training loaders deliver at KITTI size with 0, 1 and 2
DataLoader workers (paper presets; the embedded benchmark has 1242x375 images and ~120k-point
clouds), and the main process's CPU milliseconds per sample (docs/performance.md)::

    python -m pipeline.loader_bench data/embedded 24
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from kitti.layout import KittiRoot



def bench(make_loader, n, workers):
    loader = make_loader(workers)
    it = iter(loader)
    next(it)  # start-up (workers forked, first sample) outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    k = 0
    for _ in range(n):
        b = next(it); k += len(b) if isinstance(b, list) else 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    del it
    return {"workers": workers, "samples": k, "samples_per_s": round(k / wall, 2), "main_cpu_ms_per_sample": round(1000 * cpu / k, 1)}


def avod(root, data, ids, workers):
    from detection.avod.settings import preset
    from detection.avod.train import AvodTrainSet, _Visits, _as_is, label_boxes
    from detection.avod.anchors import cluster_sizes
    s = preset("paper")
    used = tuple(f for f in ids[:60] if len(label_boxes(root, f, s)))
    sizes = cluster_sizes([o for f in used for o in root.labels(f)], s.class_name, s.anchor_sizes, seed=s.seed)
    return torch.utils.data.DataLoader(AvodTrainSet(root, data / "training/velodyne", s, sizes), batch_size=None,
                                       sampler=_Visits(used, s, 0), num_workers=workers, collate_fn=_as_is)


def detect2d(root, data, ids, workers):
    from detect2d.settings import preset
    from detect2d.data import TrainImages, read_train_labels
    from detect2d.train import _StepBatches, _as_list
    s = preset("paper")
    labels, _, _ = read_train_labels(root, ids, s, progress=False)
    return torch.utils.data.DataLoader(TrainImages(root, labels, s.image_scale), batch_sampler=_StepBatches(0, s, len(labels)),
                                       num_workers=workers, collate_fn=_as_list)


def main() -> None:
    torch.set_num_threads(1)
    data, n = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 24
    root = KittiRoot(data)
    ids = root.split("train")
    for name, make, steps in (("avod", avod, n), ("detect2d", detect2d, max(n // 4, 3))):
        for w in (0, 1, 2):
            r = {"loader": name, **bench(lambda k: make(root, data, ids, k), steps, w)}
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
