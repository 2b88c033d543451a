"""Depth inference: a trained checkpoint -> one float32 depth map (metres) per frame at the full
image resolution, written as ``NNNNNN.npz`` (``kitti.write_depth_npz``, key ``depth_m``).

The image is resized by the checkpoint's ``resize_factor``, padded to a multiple of 16 and run
whole (the authors' code stitches three crops; a fully convolutional pass over the padded image
is the same network on the same pixels). The decoders' logits are merged (``max``: the paper's
mask-free merge), decoded by the soft-weighted sum, and the depth is resized back to the image
size bilinearly in log space. With ``flip`` the mirrored image goes through the network in the
same batch; its logits are mirrored back and each decoder's two logit maps are averaged before
the merge (test-time flip augmentation; docs/depth-power.md measures it).

Speed and memory (``python -m depth.infer --bench PRESET``) are measured on a synthetic
1242x375 image with random weights; run each preset in its own process for a clean peak.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from depth.bins import DepthBins
from depth.data import (boxes_mask, check_calibration_fits, eval_fg_boxes, load_frame, normalize_image,
                        resize_image, resized_hw)
from depth.model import DepthNet, bins_of, load_checkpoint, merge_logits, soft_weighted_depth
from depth.settings import MERGES, DepthSettings
from kitti import KittiFormatError, KittiRoot, write_depth_npz
from kitti.dist import local_rank
from kitti.progress import tqdm_disable


def _device() -> torch.device:
    """CUDA when present (the rank's own GPU under torchrun), else the CPU."""
    return torch.device("cuda", local_rank()) if torch.cuda.is_available() else torch.device("cpu")


def predict_depth(model: DepthNet, image: np.ndarray, *, merge: str = "max",
                  fg_boxes: np.ndarray | None = None, device: torch.device | None = None,
                  flip: bool = False, dominant: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Predict one (H, W) float32 depth map in metres for an (H, W, 3) uint8 RGB image (and, with
    ``dominant``, the (H, W) float32 dominant-bin depth map, :func:`dominant_bin_depth`, as a pair).

    Args:
        model: a :class:`DepthNet` in eval mode (its ``settings`` give resize factor and bins).
        image: the full-resolution image.
        merge: see :func:`depth.model.merge_logits` (``max``, ``mask``, ``fg``, ``bg``).
        fg_boxes: (N, 4) boxes in full-resolution pixels for ``merge="mask"``.
        device: where the model is (default: the model's parameters' device).
        flip: also run the horizontally mirrored image; each decoder's logits are the mean of
            the plain pass and the mirrored pass mirrored back (columns of the unpadded image).
    """
    settings = model.settings
    device = device or next(model.parameters()).device
    full_hw = image.shape[:2]
    hw = resized_hw(full_hw, settings.resize_factor)
    x = normalize_image(resize_image(image, hw), settings.encoder)
    ph, pw = -(-hw[0] // 16) * 16, -(-hw[1] // 16) * 16
    batch = [x, x[:, :, ::-1]] if flip else [x]  # the mirror is padded on its right, like x
    x = np.stack([np.pad(b, ((0, 0), (0, ph - hw[0]), (0, pw - hw[1]))) for b in batch])
    fg_mask = None
    if merge == "mask":
        if fg_boxes is None:
            raise ValueError("merge='mask' needs the foreground boxes")
        fg_mask = torch.from_numpy(boxes_mask(hw, fg_boxes, hw[1] / full_hw[1]))[None].to(device)
    with torch.inference_mode():
        xt = torch.from_numpy(x).to(device)
        with torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16,
                            enabled=settings.amp if device.type == "cuda" else settings.cpu_bf16):
            logits = model(xt)
        logits = tuple(lg[:, :, :hw[0], :hw[1]].float() for lg in logits)
        if flip:
            logits = tuple(((lg[0] + lg[1].flip(-1)) / 2)[None] for lg in logits)
        merged = merge_logits(logits, merge, fg_mask)
        depth = upsample_log_depth(soft_weighted_depth(merged, bins_of(settings))[0], full_hw)
        depth_np = depth.cpu().numpy().astype(np.float32)
        if not dominant:
            return depth_np
        mode = F.interpolate(dominant_bin_depth(merged, bins_of(settings))[:, None], size=tuple(full_hw),
                             mode="nearest-exact")[0, 0]
    return depth_np, mode.cpu().numpy().astype(np.float32)


def dominant_bin_depth(logits: torch.Tensor, bins: DepthBins) -> torch.Tensor:
    """(B, C, H, W) logits -> (B, H, W) float32 depth (metres) of each pixel's most likely bin's
    centre (the first of equal maxima)."""
    centres = torch.as_tensor(bins.centres_m, dtype=torch.float32, device=logits.device)
    return centres[logits.argmax(dim=1)]


def upsample_log_depth(depth_m: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Resize an (h, w) positive depth map to ``out_hw``, bilinearly in log depth (pixel centres
    aligned, ``align_corners=False``); returned unchanged when already that size."""
    if tuple(depth_m.shape) == tuple(out_hw):
        return depth_m
    log_d = torch.log(depth_m)[None, None]
    return torch.exp(F.interpolate(log_d, size=tuple(out_hw), mode="bilinear", align_corners=False))[0, 0]


def load_for_inference(checkpoint: Path, merge: str = "max", *, weights_only: bool = False) -> DepthNet:
    """The model of a checkpoint in eval mode on the inference device (:func:`_device`), checked
    to have the decoders ``merge`` needs; ``weights_only``: see :func:`depth.model.read_checkpoint`."""
    model, settings, _ = load_checkpoint(Path(checkpoint), weights_only=weights_only)
    if settings.n_decoders == 1 and merge in ("mask", "bg"):
        raise ValueError(f"{checkpoint}: merge={merge!r} needs a two-decoder model, this is {settings.variant!r}")
    return model.to(_device())


def frame_depth(model: DepthNet, root: KittiRoot, frame_id: str, *, image: np.ndarray | None = None,
                merge: str = "max", flip: bool = False, dominant: bool = False
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The depth map (and dominant-bin map) :func:`infer_depth` writes for one frame of ``root``.

    ``image``: the frame's image_2 when the caller has read it already (``foresee predict``
    shares it with the 2D detector); its calibration is checked against its size either way.
    """
    if image is None:
        frame = load_frame(root, frame_id, with_depth=False)
        image, labels = frame.image, frame.labels
    else:
        check_calibration_fits(root, frame_id, image.shape[:2])
        labels = tuple(root.labels(frame_id)) if merge == "mask" else ()
    boxes = eval_fg_boxes(labels) if merge == "mask" else None
    return predict_depth(model, image, merge=merge, fg_boxes=boxes, flip=flip, dominant=dominant)


def infer_depth(data_root: Path, frame_ids: Sequence[str], checkpoint: Path, out_dir: Path, *,
                merge: str = "max", flip: bool = False, progress: bool = True,
                dominant_dir: Path | None = None) -> dict[str, Any]:
    """Write ``out_dir/NNNNNN.npz`` (float32 metres, full image resolution) for every frame.

    Args:
        data_root: KITTI-format root (image_2, calib; label_2 for ``merge="mask"``).
        frame_ids: frames to predict.
        checkpoint: ``checkpoint.pt`` from :func:`depth.train.train_depth`.
        out_dir: output folder (created).
        merge: ``max`` (mask-free, default), ``mask`` (fg decoder inside the eval boxes of the
            labels, bg decoder elsewhere), ``fg`` or ``bg``; one-decoder models accept ``max``/``fg``.
        flip: test-time flip augmentation (:func:`predict_depth`).
        progress: tqdm bar.
        dominant_dir: also write each frame's dominant-bin depth map here (created).

    Returns:
        ``{"frames", "seconds", "images_per_s", "device", "variant", "merge", "flip"}``.
    """
    from tqdm import tqdm

    if merge not in MERGES:
        raise ValueError(f"merge must be one of {', '.join(MERGES)}, got {merge!r}")
    root = KittiRoot(Path(data_root))
    kinds = ("image_2", "calib") + (("label_2",) if merge == "mask" else ())
    root.check(tuple(frame_ids), kinds)
    model = load_for_inference(Path(checkpoint), merge)
    settings, device = model.settings, next(model.parameters()).device
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if dominant_dir is not None:
        Path(dominant_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for fid in tqdm(frame_ids, desc=f"depth {settings.variant}", disable=tqdm_disable(progress), dynamic_ncols=True):
        out = frame_depth(model, root, fid, merge=merge, flip=flip, dominant=dominant_dir is not None)
        if dominant_dir is not None:
            depth, mode = out
            write_depth_npz(Path(dominant_dir) / f"{fid}.npz", mode)
        else:
            depth = out
        write_depth_npz(out_dir / f"{fid}.npz", depth)
    seconds = time.time() - t0
    return {"frames": len(frame_ids), "seconds": round(seconds, 2),
            "images_per_s": round(len(frame_ids) / max(seconds, 1e-9), 3), "device": str(device),
            "variant": settings.variant, "merge": merge, "flip": flip}


def export_gt_depth(data_root: Path, frame_ids: Sequence[str], out_dir: Path) -> dict[str, Any]:
    """Write the ground truth of ``depth_2`` as depth artifacts (``NNNNNN.npz``), for oracle rows.

    Raises:
        KittiFormatError: a missing depth map or one whose size differs from the image's.
    """
    root = KittiRoot(Path(data_root))
    root.check(tuple(frame_ids), ("image_2", "depth_2"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    valid = 0
    for fid in frame_ids:
        depth = root.depth(fid)
        hw = root.image_hw(fid)
        if depth.shape != hw:
            raise KittiFormatError(root.path("depth_2", fid), None,
                                   f"depth map is {depth.shape[1]}x{depth.shape[0]}, image_2 is {hw[1]}x{hw[0]}")
        valid += int(np.count_nonzero(depth))
        write_depth_npz(out_dir / f"{fid}.npz", depth)
    return {"frames": len(frame_ids), "valid_pixels": valid}


def benchmark_inference(settings: DepthSettings, *, image_hw: tuple[int, int] = (375, 1242),
                        n_images: int = 2, threads: int | None = None) -> dict[str, Any]:
    """Images/s and peak memory of :func:`predict_depth` (random weights, a synthetic image).

    Returns images/s (wall clock) after one warm-up image, CPU seconds per image (a figure that
    contention on a shared machine inflates much less), the process's peak RSS in MiB (CPU:
    includes the Python process itself), and the CUDA peak allocation when on a GPU.
    """
    if threads:
        torch.set_num_threads(threads)
    device = _device()
    torch.manual_seed(settings.seed)
    model = DepthNet(settings).eval().to(device)
    image = np.random.default_rng(0).integers(0, 255, (*image_hw, 3), dtype=np.uint8)
    merge = "max"
    predict_depth(model, image, merge=merge, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.time(), time.process_time()
    for _ in range(n_images):
        predict_depth(model, image, merge=merge, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.time() - t0, time.process_time() - c0
    out = {"variant": settings.variant, "encoder": settings.encoder, "image_hw": list(image_hw),
           "device": str(device), "threads": torch.get_num_threads(), "images": n_images,
           "images_per_s": round(n_images / seconds, 3),
           "cpu_s_per_image": round(cpu_seconds / n_images, 3),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "parameters": sum(p.numel() for p in model.parameters())}
    if device.type == "cuda":
        out["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m depth.infer --bench PRESET [--variant V --images N --threads T]``: print JSON."""
    import argparse

    from depth.settings import preset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", required=True, choices=["paper", "cpu-small"])
    p.add_argument("--variant", default="foresee")
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    result = benchmark_inference(preset(args.bench, args.variant), n_images=args.images,
                                 threads=args.threads or None)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
