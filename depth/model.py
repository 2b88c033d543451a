"""The depth network: a timm encoder (output stride 16), an ASPP neck, a lateral pyramid and
one or two decoders of identical structure producing ``n_bins`` logits at input resolution.

Layout (VNL / ForeSeE)::

    image ─► encoder res2 (1/4) res3 (1/8) res4 (1/16) res5 (1/16, dilated)
                 │            │           │            ├─► ASPP neck (dil 2/4/6) ─► top
                 └ lateral ─► └ lateral ─► └ lateral ─► └ lateral
    decoder:  top ⊕ lat5 ─► ⊕ lat4 ─► ↑ ⊕ lat3 ─► ↑ ⊕ lat2 ─► ↑ 1/2 block ─► 3x3 conv ─► ↑ logits

Two decoder designs (``DepthSettings.decoder``):

* ``vnl`` — the authors' network (YvanYin/VNL, WXinlong/ForeSeE ``lateral_net.py``): laterals are
  feature-transfer blocks (:class:`FTB`: 1x1 conv, then a residual pair of dilated 3x3 convs);
  the ASPP branches (BatchNorm, no ReLU) are concatenated and reduced by a shared 1x1 conv + BN
  ("top"); each decoder fuses top and lateral by adaptive feature aggregation (:class:`AFA`:
  a squeeze-excitation weight on the lateral, plus the top) followed by an FTB, four times, then
  an FTB at 1/2 resolution and a dilated 3x3 conv to the logits at full resolution. With the
  paper's widths: ~97 M parameters with ResNeXt-101 32x4d, ~6.7 M per decoder.
* ``light`` — the cheaper design of the cpu-small preset: 1x1 conv-BN-ReLU laterals, an ASPP
  with ReLU and a 1x1 fuse, decoders that concatenate, reduce and refine (:class:`FuseRefine`).

With two decoders the first is the foreground decoder, the second the background decoder.
Checkpoints (``save_checkpoint``/``load_checkpoint``) carry the weights, the settings and the bins;
loading one into other settings is a :class:`CheckpointMismatchError` naming the file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from depth import CODE_VERSION
from depth.bins import DepthBins
from depth.settings import DepthSettings
from engine.checkpoint import load_weights_only
from kitti.fileio import atomic_write_bytes

CHECKPOINT_FORMAT = "foresee-depth"
#: Settings fields that change the network or its classes: a checkpoint must agree on them.
ARCH_FIELDS: tuple[str, ...] = (
    "variant", "encoder", "decoder", "neck_channels", "aspp_dilations", "lateral_channels",
    "decoder_channels", "n_bins", "bin_min_norm", "bin_max_norm", "depth_max_m",
)


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the settings or the code that loads it."""


def bins_of(settings: DepthSettings) -> DepthBins:
    """The :class:`DepthBins` a settings object describes."""
    return DepthBins(settings.n_bins, settings.bin_min_norm, settings.bin_max_norm, settings.depth_max_m)


def _conv_bn_relu(cin: int, cout: int, k: int = 3, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AsppNeck(nn.Module):
    """ASPP-like block on res5: a 1x1 branch, dilated 3x3 branches and image pooling, fused by 1x1."""

    def __init__(self, cin: int, cout: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(cin, cout, 1)] +
                                      [_conv_bn_relu(cin, cout, 3, d) for d in dilations])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.fuse = _conv_bn_relu(cout * (len(dilations) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.fuse(torch.cat(outs, dim=1))


class FuseRefine(nn.Module):
    """Upsample ``x`` to the lateral's size, concatenate, reduce by 1x1, refine by a residual block."""

    def __init__(self, cin: int, clat: int, cout: int) -> None:
        super().__init__()
        self.reduce = _conv_bn_relu(cin + clat, cout, 1)
        self.refine = nn.Sequential(_conv_bn_relu(cout, cout), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != lateral.shape[-2:]:
            x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        y = self.reduce(torch.cat([x, lateral], dim=1))
        return F.relu(y + self.refine(y))


class Decoder(nn.Module):
    """Four fuse-and-refine stages up the lateral pyramid, a 1/2-resolution block, 3x3 -> logits."""

    def __init__(self, neck_channels: int, lateral_channels: tuple[int, int, int, int],
                 decoder_channels: tuple[int, int, int, int, int], n_bins: int) -> None:
        super().__init__()
        l2, l3, l4, l5 = lateral_channels
        d5, d4, d3, d2, dh = decoder_channels
        self.fuse5 = FuseRefine(neck_channels, l5, d5)
        self.fuse4 = FuseRefine(d5, l4, d4)
        self.fuse3 = FuseRefine(d4, l3, d3)
        self.fuse2 = FuseRefine(d3, l2, d2)
        self.half_res = _conv_bn_relu(d2, dh)
        self.head = nn.Conv2d(dh, n_bins, 3, padding=1)

    def forward(self, top: torch.Tensor, laterals: list[torch.Tensor], out_hw: tuple[int, int]) -> torch.Tensor:
        lat2, lat3, lat4, lat5 = laterals
        x = self.fuse2(self.fuse3(self.fuse4(self.fuse5(top, lat5), lat4), lat3), lat2)
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        logits = self.head(self.half_res(x))
        return F.interpolate(logits, size=out_hw, mode="bilinear", align_corners=False)


class FTB(nn.Module):
    """Feature transfer block: 1x1 conv to ``cout``, then ``relu(x + conv(relu(bn(conv(x)))))`` with
    3x3 convs of dilation 2 (the authors' ``FTB_block``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=2, dilation=2, bias=True)
        self.bn = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cout, cout, 3, padding=2, dilation=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return F.relu(x + self.conv3(F.relu(self.bn(self.conv2(x)))))


class AFA(nn.Module):
    """Adaptive feature aggregation: ``sigmoid(W2 relu(W1 pool([lateral, top]))) · lateral + top``
    (channel reduction 8; the authors' ``AFA_block``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(2 * dim, dim // 8, 1, bias=False),
                                    nn.ReLU(inplace=True), nn.Conv2d(dim // 8, dim, 1, bias=False), nn.Sigmoid())

    def forward(self, lateral: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        return self.weight(torch.cat([lateral, top], dim=1)) * lateral + top


class VnlAspp(nn.Module):
    """The authors' ASPP on res5 and the shared top: 1x1, three dilated 3x3 and an image-pool branch,
    each conv + BN (no ReLU), concatenated, then 1x1 conv + BN to ``cout``."""

    def __init__(self, cin: int, cout: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        def conv_bn(k: int, d: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k, padding=d * (k // 2), dilation=d, bias=False),
                                 nn.BatchNorm2d(cout))
        self.branches = nn.ModuleList([conv_bn(1)] + [conv_bn(3, d) for d in dilations])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.top = nn.Sequential(nn.Conv2d(cout * (len(dilations) + 2), cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear", align_corners=True))
        return self.top(torch.cat(outs, dim=1))


class VnlDecoder(nn.Module):
    """Four AFA + FTB stages up the lateral pyramid, an FTB at 1/2 resolution, a dilated 3x3 conv to
    the logits (the authors' ``fcn_topdown`` branch). Needs lateral widths equal to the incoming
    widths: lat5 = top, lat4 = d5, lat3 = d4, lat2 = d3 (checked by :class:`DepthSettings`)."""

    def __init__(self, neck_channels: int, decoder_channels: tuple[int, int, int, int, int], n_bins: int) -> None:
        super().__init__()
        d5, d4, d3, d2, dh = decoder_channels
        self.stages = nn.ModuleList([nn.ModuleDict({"afa": AFA(cin), "ftb": FTB(cin, cout)})
                                     for cin, cout in ((neck_channels, d5), (d5, d4), (d4, d3), (d3, d2))])
        self.half_res = FTB(d2, dh)
        self.head = nn.Conv2d(dh, n_bins, 3, padding=2, dilation=2)

    def forward(self, top: torch.Tensor, laterals: list[torch.Tensor], out_hw: tuple[int, int]) -> torch.Tensor:
        x = top
        for stage, lateral in zip(self.stages, reversed(laterals)):
            if x.shape[-2:] != lateral.shape[-2:]:
                x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=True)
            x = stage["ftb"](stage["afa"](lateral, x))
        half = (-(-out_hw[0] // 2), -(-out_hw[1] // 2))
        x = self.half_res(F.interpolate(x, size=half, mode="bilinear", align_corners=True))
        x = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=True)
        return self.head(x)


class DepthNet(nn.Module):
    """Encoder + neck + lateral pyramid shared by ``n_decoders`` identical decoders.

    ``forward`` takes a normalised (B, 3, H, W) image (H, W multiples of 16 are fastest; any size
    works) and returns a tuple of ``n_decoders`` logit tensors (B, n_bins, H, W); with two, the
    foreground decoder's comes first.
    """

    def __init__(self, settings: DepthSettings) -> None:
        super().__init__()
        from backbones import create_encoder, freeze_early_layers

        self.settings = settings
        # random init here; train.py loads the ImageNet weights (load_encoder_weights), a
        # checkpoint brings its own
        self.encoder = create_encoder(settings.encoder, weights="none", output_stride=16, out_indices=(1, 2, 3, 4))
        freeze_early_layers(self.encoder, settings.freeze_encoder_stride)  # flags survive the weight loading
        chans = self.encoder.feature_info.channels()
        if settings.decoder == "vnl":
            self.laterals = nn.ModuleList([FTB(c, w) for c, w in zip(chans, settings.lateral_channels)])
            self.neck: nn.Module = VnlAspp(chans[3], settings.neck_channels, settings.aspp_dilations)
            self.decoders = nn.ModuleList([VnlDecoder(settings.neck_channels, settings.decoder_channels, settings.n_bins)
                                           for _ in range(settings.n_decoders)])
        else:
            self.laterals = nn.ModuleList([_conv_bn_relu(c, w, 1) for c, w in zip(chans, settings.lateral_channels)])
            self.neck = AsppNeck(chans[3], settings.neck_channels, settings.aspp_dilations)
            self.decoders = nn.ModuleList([
                Decoder(settings.neck_channels, settings.lateral_channels, settings.decoder_channels, settings.n_bins)
                for _ in range(settings.n_decoders)])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.encoder(image)
        laterals = [lat(f) for lat, f in zip(self.laterals, feats)]
        top = self.neck(feats[3])
        hw = (image.shape[2], image.shape[3])
        return tuple(dec(top, laterals, hw) for dec in self.decoders)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------- decoding
def merge_logits(logits: tuple[torch.Tensor, ...], merge: str = "max",
                 fg_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Combine the decoders' (B, C, H, W) logits into one.

    Args:
        logits: one tensor per decoder (fg decoder first).
        merge: ``max`` (mask-free: element-wise max over decoders, paper), ``mask`` (fg decoder
            inside ``fg_mask``, bg decoder elsewhere), ``fg`` or ``bg`` (one decoder only).
            A single decoder is returned as is for every merge but ``mask``/``bg``.
        fg_mask: (B, H, W) bool, needed by ``mask``.
    """
    if merge not in ("max", "mask", "fg", "bg"):
        raise ValueError(f"merge must be max, mask, fg or bg, got {merge!r}")
    if len(logits) == 1:
        if merge in ("mask", "bg"):
            raise ValueError(f"merge={merge!r} needs a two-decoder model (so-sd or foresee)")
        return logits[0]
    fg, bg = logits
    if merge == "max":
        return torch.maximum(fg, bg)
    if merge == "fg":
        return fg
    if merge == "bg":
        return bg
    if fg_mask is None:
        raise ValueError("merge='mask' needs the foreground mask")
    return torch.where(fg_mask[:, None], fg, bg)


def soft_weighted_depth(logits: torch.Tensor, bins: DepthBins) -> torch.Tensor:
    """Soft-weighted sum: (B, C, H, W) logits -> (B, H, W) depth in metres (float32)."""
    centres = torch.as_tensor(bins.centres_log10, dtype=torch.float32, device=logits.device)
    prob = torch.softmax(logits.float(), dim=1)
    log_norm = torch.einsum("bchw,c->bhw", prob, centres)
    return torch.pow(10.0, log_norm) * bins.depth_max_m


# ---------------------------------------------------------------------------- encoder weights
def load_encoder_weights(model: DepthNet, weights: str | os.PathLike[str] | None = None,
                         log: Callable[[str], None] = print) -> str:
    """Load ImageNet weights into the encoder through :mod:`backbones`; never downloads.

    Args:
        model: the network (its ``settings.encoder`` names the backbone).
        weights: ``"auto"`` (None, ""): the backbone registry's installed package, else timm's
            cache; ``"none"``: the encoder keeps its random init; else a state-dict file.

    Returns:
        Where the weights came from (a path), or ``"none"``.

    Raises:
        backbones.BackboneWeightsError: no weights found for ``auto``, a missing file, a wrong
            sha256 or a file that does not fit (one line naming the file).
    """
    from backbones import load_weights, weights_source

    name = model.settings.encoder
    src = weights_source(name, weights or "auto")
    if src is None:
        log(f"depth: encoder {name} starts from a random init (encoder_weights=none)")
        return "none"
    n = load_weights(model.encoder, name, src)
    log(f"depth: encoder {name} ImageNet weights from {src} ({n} tensors)")
    return str(src)


# ---------------------------------------------------------------------------- checkpoints
def checkpoint_bytes(model: nn.Module, settings: DepthSettings, *, step: int, epoch: int,
                     optimizer_state: dict[str, Any] | None = None,
                     extra: dict[str, Any] | None = None) -> bytes:
    """Serialise weights, settings and bins (and optionally the optimiser state) with torch.save."""
    payload = {
        "format": CHECKPOINT_FORMAT, "code_version": CODE_VERSION,
        "settings": settings.to_dict(), "bins": list(bins_of(settings).key()),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": step, "epoch": epoch, "optimizer": optimizer_state, "extra": dict(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(path: Path, model: nn.Module, settings: DepthSettings, **kw: Any) -> None:
    """Write a checkpoint atomically (see :func:`checkpoint_bytes` for the keyword arguments)."""
    atomic_write_bytes(Path(path), checkpoint_bytes(model, settings, **kw))


def read_checkpoint(path: Path, *, weights_only: bool = False) -> dict[str, Any]:
    """The raw checkpoint payload, checked for format and bins.

    ``weights_only``: read with :func:`engine.checkpoint.load_weights_only` (tensors and plain
    Python values only; no code of the file runs; a file holding anything else raises
    :class:`kitti.errors.KittiFormatError`). A training checkpoint holds NumPy random states,
    which it refuses; the checkpoints ``foresee predict`` writes from a bundle hold none.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatchError(f"{path}: checkpoint not found")
    if weights_only:
        payload = load_weights_only(path, what="a depth checkpoint")
    else:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad file
            raise CheckpointMismatchError(f"{path}: not a readable checkpoint ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(f"{path}: not a foresee depth checkpoint")
    settings = DepthSettings.from_dict(payload["settings"])
    if tuple(payload["bins"]) != bins_of(settings).key():
        raise CheckpointMismatchError(f"{path}: bins {payload['bins']} disagree with its settings")
    payload["settings"] = settings
    return payload


def check_compatible(path: Path, found: DepthSettings, expected: DepthSettings) -> None:
    """Raise :class:`CheckpointMismatchError` naming ``path`` and every architecture field that differs."""
    diffs = [f"{name}: checkpoint {getattr(found, name)!r} vs {getattr(expected, name)!r}"
             for name in ARCH_FIELDS if getattr(found, name) != getattr(expected, name)]
    if diffs:
        raise CheckpointMismatchError(f"{path}: checkpoint of other settings ({'; '.join(diffs)})")


def load_checkpoint(path: Path, expected: DepthSettings | None = None, *, weights_only: bool = False
                    ) -> tuple[DepthNet, DepthSettings, dict[str, Any]]:
    """Rebuild the model of a checkpoint (CPU, eval mode).

    Args:
        path: ``checkpoint.pt`` written by :func:`save_checkpoint`.
        expected: when given, the checkpoint must agree with it on :data:`ARCH_FIELDS`
            (variant, encoder, widths, bins).
        weights_only: see :func:`read_checkpoint`.

    Returns:
        (model, the checkpoint's settings, the raw payload).
    """
    path = Path(path)
    payload = read_checkpoint(path, weights_only=weights_only)
    settings: DepthSettings = payload["settings"]
    if expected is not None:
        check_compatible(path, settings, expected)
    model = DepthNet(settings)
    try:
        model.load_state_dict(payload["model"], strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0:2]
        raise CheckpointMismatchError(f"{path}: weights do not fit the network ({' '.join(first)})") from None
    model.eval()
    return model, settings, payload
