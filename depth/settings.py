"""Frozen settings of the depth stage and the named presets ``paper`` and ``cpu-small``.

Variants (named as in the paper's Table 2):

* ``baseline`` — one decoder, plain loss over all pixels with ground truth.
* ``so`` — one decoder, separate objectives ``L = λ·E_fg + (1 − λ)·E_bg`` (``so_lambda``).
* ``so-sd`` — two decoders of identical structure, each trained on its own region only.
* ``foresee`` — two decoders with the foreground-sensitive loss: each decoder weights its own
  region ``own_weight`` and the other region ``other_weight`` (authors' code: 0.8 / 0.2; the
  paper's "λ = 0.2" is the *other* region's weight, see docs/paper.md §2).
* ``foresee-obj`` — ``foresee`` (its decoders and loss) with another training foreground, an
  extension beyond the paper: the object surfaces, i.e. the pixels whose ground-truth depth point
  lies inside a labelled 3D box (``depth.data.object_surface_mask``, the per-object metric's rule),
  instead of the pixels inside the 2D boxes (docs/deviations.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

VARIANTS: tuple[str, ...] = ("baseline", "so", "so-sd", "foresee", "foresee-obj")
#: Variants whose training foreground is the object surfaces, not the 2D boxes.
OBJECT_SURFACE_VARIANTS: tuple[str, ...] = ("foresee-obj",)
PRESETS: tuple[str, ...] = ("paper", "cpu-small")
MERGES: tuple[str, ...] = ("max", "mask", "fg", "bg")
DECODERS: tuple[str, ...] = ("vnl", "light")


@dataclass(frozen=True)
class DepthSettings:
    """Everything that decides a trained depth model (saved in every checkpoint).

    Sizes are (height, width) in pixels; depths in metres.

    Attributes:
        variant: ``baseline``, ``so``, ``so-sd``, ``foresee`` or ``foresee-obj``.
        encoder: timm model name, created with ``features_only=True, output_stride=16``.
        encoder_weights: the encoder's ImageNet weights: ``auto`` (the backbones registry's
            installed package, else timm's local cache; none found is an error), ``none`` (random
            init) or a state-dict file (see docs/backbones.md; nothing is ever downloaded).
        decoder: ``vnl`` (the authors' network: FTB laterals, ASPP + top, AFA + FTB decoder
            stages) or ``light`` (1x1 laterals, concatenate-and-refine stages); see depth.model.
        neck_channels: width of the ASPP branches and of the shared top of the pyramid.
        aspp_dilations: dilations of the neck's 3x3 branches.
        lateral_channels: widths of the lateral blocks on res2, res3, res4, res5 (``vnl``: res5's
            equals ``neck_channels`` and res4, res3, res2 equal the first three decoder widths).
        decoder_channels: widths of a decoder's stages (res5, res4, res3, res2, 1/2 resolution).
        n_bins, bin_min_norm, bin_max_norm, depth_max_m: the depth classes (see depth.bins).
        soft_label_coeff: target ∝ exp(−coeff·(i − j)²) over bins i for ground-truth bin j.
        so_lambda: foreground weight λ of the ``so`` variant.
        own_weight, other_weight: the ``foresee`` decoders' weights of their own / other region.
        optimizer: ``sgd`` (paper) or ``adam``.
        lr, momentum, weight_decay, poly_power: optimiser and poly decay lr·(1 − t/T)^power.
        batch_size, epochs: images per step and passes over the training set.
        max_steps: if > 0, training stops after this many steps (before ``epochs`` ends).
        resize_factor: every image and map is first resized by this factor (1.0 in ``paper``).
        crop_hw: training crop (after resizing and scaling); the crop is padded where it
            exceeds the image (padding has no ground truth).
        crop_top_skip: the crop's top row is at least this (in resized pixels; paper: 50).
        scales: random scale augmentation; the depth is divided by the scale (paper).
        hflip: random horizontal flip.
        fg_min_area_px2, fg_max_boxes: training fg boxes (area in original image pixels); not
            used by ``foresee-obj``, whose fg is every object's surface.
        fg_train_classes: label types whose boxes (``foresee-obj``: 3D boxes) make the training
            fg (no types = all but DontCare).
        cache_images: keep the resized training set in memory.
        amp: mixed precision on CUDA (bf16 where the GPU has it, else fp16 with a GradScaler;
            ``engine.amp_for``).
        cpu_bf16: bfloat16 autocast on the CPU (training and inference); see docs/depth-power.md.
        freeze_encoder_stride: the encoder's leading layers whose output stride is at most this
            keep their ImageNet weights (``backbones.freeze_early_layers``; 0 = train them all, as
            the paper does); see docs/depth-power.md.
        num_workers: DataLoader workers.
        checkpoint_every: save a resumable checkpoint every this many steps (0 = per epoch).
        seed: the one seed of the run.
    """

    variant: str = "foresee"
    encoder: str = "resnext101_32x4d"
    encoder_weights: str = "auto"
    decoder: str = "vnl"
    neck_channels: int = 512
    aspp_dilations: tuple[int, ...] = (2, 4, 6)
    lateral_channels: tuple[int, int, int, int] = (256, 256, 256, 512)
    decoder_channels: tuple[int, int, int, int, int] = (256, 256, 256, 256, 256)
    n_bins: int = 100
    bin_min_norm: float = 0.015
    bin_max_norm: float = 1.0
    depth_max_m: float = 80.0
    soft_label_coeff: float = 0.2
    so_lambda: float = 0.7
    own_weight: float = 0.8
    other_weight: float = 0.2
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    batch_size: int = 4
    epochs: int = 20
    max_steps: int = 0
    resize_factor: float = 1.0
    crop_hw: tuple[int, int] = (385, 513)
    crop_top_skip: int = 50
    scales: tuple[float, ...] = (1.0, 1.2, 1.5, 1.8, 2.0)
    hflip: bool = True
    fg_min_area_px2: float = 3600.0
    fg_max_boxes: int = 10
    fg_train_classes: tuple[str, ...] = ()
    cache_images: bool = False
    amp: bool = True
    cpu_bf16: bool = False
    freeze_encoder_stride: int = 0
    num_workers: int = 4
    checkpoint_every: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not 0.0 < self.bin_min_norm < self.bin_max_norm or self.n_bins < 2:
            raise ValueError("bins need 0 < bin_min_norm < bin_max_norm and n_bins >= 2")
        if self.freeze_encoder_stride < 0:
            raise ValueError(f"freeze_encoder_stride must be >= 0, got {self.freeze_encoder_stride}")
        if not 0.0 <= self.so_lambda <= 1.0:
            raise ValueError(f"so_lambda must be in [0, 1], got {self.so_lambda}")
        if self.own_weight < 0 or self.other_weight < 0:
            raise ValueError("own_weight and other_weight must be >= 0")
        if len(self.lateral_channels) != 4 or len(self.decoder_channels) != 5:
            raise ValueError("lateral_channels needs 4 widths and decoder_channels 5")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.decoder == "vnl":
            l2, l3, l4, l5 = self.lateral_channels
            d5, d4, d3 = self.decoder_channels[:3]
            if (l5, l4, l3, l2) != (self.neck_channels, d5, d4, d3) or min(self.neck_channels, d5, d4, d3) < 8:
                raise ValueError("decoder 'vnl' adds each lateral to the incoming features: lateral_channels "
                                 "(res2, res3, res4, res5) must equal (decoder_channels[2], [1], [0], neck_channels), "
                                 f"each >= 8; got {self.lateral_channels} with neck {self.neck_channels} and "
                                 f"decoder {self.decoder_channels}")
        if min(self.crop_hw) < 16 or not self.scales or min(self.scales) <= 0:
            raise ValueError("crop_hw must be >= 16 px and scales positive")
        if self.batch_size < 1 or self.epochs < 1 or self.max_steps < 0:
            raise ValueError("batch_size and epochs must be >= 1, max_steps >= 0")

    @property
    def n_decoders(self) -> int:
        """1 for ``baseline`` and ``so``, 2 (fg decoder first, then bg) for ``so-sd``/``foresee``/
        ``foresee-obj``."""
        return 1 if self.variant in ("baseline", "so") else 2

    @property
    def fg_source(self) -> str:
        """``boxes`` (the paper: pixels inside 2D label boxes) or ``objects`` (``foresee-obj``)."""
        return "objects" if self.variant in OBJECT_SURFACE_VARIANTS else "boxes"

    def bins_key(self) -> tuple[int, float, float, float]:
        """What a checkpoint's bins must agree on."""
        return (self.n_bins, self.bin_min_norm, self.bin_max_norm, self.depth_max_m)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DepthSettings":
        """Inverse of :meth:`to_dict` (lists become tuples; unknown keys are an error).

        Settings saved before ``decoder`` and ``encoder_weights`` existed (older checkpoints) read as
        the light decoder they were trained with, and ``pretrained_path`` as ``encoder_weights``.
        """
        d = dict(d)
        if "decoder" not in d:
            d["decoder"] = "light"
        if "pretrained_path" in d:
            d.setdefault("encoder_weights", d.pop("pretrained_path") or "auto")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown depth settings: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


_PAPER = DepthSettings()

# cpu-small: the same code scaled to train on 2 CPU cores in a few minutes on ~300 frames of
# 1242x375: images at 1/4 size (94x310), crops of 80x256, an ImageNet-pretrained EfficientNet-Lite0
# encoder (weights from the installed package, see docs/backbones.md) with narrow neck and
# decoders, Adam, a fixed number of steps of batch 4 (so the time does not grow with the number of
# frames). docs/depth-power.md has the measurements behind these values.
_CPU_SMALL = replace(
    _PAPER,
    encoder="tf_efficientnet_lite0",
    decoder="light",
    neck_channels=96,
    lateral_channels=(24, 32, 48, 64),
    decoder_channels=(96, 64, 48, 32, 24),
    optimizer="adam",
    lr=2e-3,
    weight_decay=0.0,
    batch_size=4,
    epochs=100,
    max_steps=500,
    resize_factor=0.25,
    crop_hw=(80, 256),
    crop_top_skip=0,
    scales=(1.0, 1.25),
    fg_min_area_px2=3600.0,
    cache_images=True,
    amp=False,
    freeze_encoder_stride=4,
    num_workers=0,
)


def preset(name: str, variant: str = "foresee", **overrides: Any) -> DepthSettings:
    """The named preset (``paper`` or ``cpu-small``) for one variant, with field overrides.

    >>> preset("paper", "baseline").n_decoders
    1
    """
    if name == "paper":
        base = _PAPER
    elif name == "cpu-small":
        base = _CPU_SMALL
    else:
        raise ValueError(f"unknown preset {name!r} (paper, cpu-small)")
    return replace(base, variant=variant, **overrides)
