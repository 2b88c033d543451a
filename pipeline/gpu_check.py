"""``make gpu-check`` / ``python -m pipeline.gpu_check``: the ``paper`` networks on one CUDA device.

On a CUDA machine it runs, on synthetic inputs of the paper's shapes (no data, no download; the
depth encoder starts from random weights):

* a few training steps of the ``paper`` depth network (ForeSeE variant, its batch and crop, AMP on,
  the preset's optimiser);
* depth inference at the full KITTI resolution (375x1242, :func:`depth.infer.benchmark_inference`);
* for every detector of :data:`pipeline.detectors.DETECTORS` whose entry has a ``gpu_check``: its
  training steps and inference on the ``paper`` preset (F-PointNet v1: batch 32, 1024 points, AMP
  on; AVOD has none yet and is listed as not measured);

and prints images/s, frustums/s, the peak GPU memory of each part and the first steps' losses.
With no CUDA device it says so and exits 0. The step functions (:mod:`pipeline.gpu_steps`) run one step
on the CPU in tests/pipeline/test_paper_presets.py, so that a ``paper`` network cannot break unseen.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

import torch

from pipeline.detectors import DETECTORS
from pipeline.gpu_steps import _reset_peak, depth_train_steps


def run_check(steps: int = 5) -> dict[str, Any]:
    """Every measurement on ``cuda:0`` (see the module doc): depth, then each detector of
    :data:`pipeline.detectors.DETECTORS` that has a ``gpu_check`` (``<name>_train_paper``,
    ``<name>_infer_paper``)."""
    from depth.infer import benchmark_inference
    from depth.settings import preset as depth_preset

    device = torch.device("cuda", 0)
    torch.backends.cudnn.benchmark = True
    depth = depth_preset("paper", "foresee")
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__,
                           "steps": steps}
    out["depth_train_paper"] = depth_train_steps(depth, device, steps=steps)
    _reset_peak(device)
    inf = benchmark_inference(depth, image_hw=(375, 1242), n_images=10)
    out["depth_infer_paper_full_res"] = {k: inf[k] for k in ("images_per_s", "image_hw", "cuda_peak_mib")}
    for det in DETECTORS.values():
        if det.gpu_check is not None:
            _reset_peak(device)
            res = det.gpu_check(device, steps)
            out[f"{det.name}_train_paper"], out[f"{det.name}_infer_paper"] = res["train"], res["infer"]
    out["not_measured"] = [d.name for d in DETECTORS.values() if d.gpu_check is None]
    return out


def _rate(part: dict) -> str:
    unit = next((k for k in part if k.endswith("_per_s")), None)
    return f"{part[unit]} {unit.removesuffix('_per_s')}/s" if unit else "?"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5, help="Training steps per network.")
    p.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device visible to torch {torch.__version__}; nothing measured "
              "(the paper presets' figures stay 'not measured')")
        return 0
    res = run_check(args.steps)
    if args.json:
        print(json.dumps(res))
        return 0
    d, di = res["depth_train_paper"], res["depth_infer_paper_full_res"]
    print(f"gpu-check on {res['device']} (torch {res['torch']})")
    print(f"depth paper train   : {d['images_per_s']} images/s, batch {d['batch']} crop {d['crop_hw']}, AMP "
          f"{d['amp']}, peak {d['peak_gpu_mib']} MiB, losses {d['losses']}")
    print(f"depth paper infer   : {di['images_per_s']} images/s at {di['image_hw']}, peak {di['cuda_peak_mib']} MiB")
    for det in DETECTORS.values():
        if det.gpu_check is None:
            print(f"{det.title + ' train':<20}: not measured (no gpu_check in its registry entry)")
            continue
        f, fi = res[f"{det.name}_train_paper"], res[f"{det.name}_infer_paper"]
        print(f"{det.title + ' train':<20}: {_rate(f)}, batch {f['batch']}, AMP {f['amp']}, peak "
              f"{f['peak_gpu_mib']} MiB, losses {f['losses']}")
        print(f"{det.title + ' infer':<20}: {_rate(fi)} (batch {fi['batch']}), peak {fi['peak_gpu_mib']} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
