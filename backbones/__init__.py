"""Pretrained image encoders, one shared place (used by depth/ and detect2d/).

>>> from backbones import create_encoder, normalisation
>>> normalisation("tf_efficientnet_lite0")
((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

``create_encoder(name, weights="auto")`` builds the timm model and loads ImageNet weights from the
installed package the registry names (sha256-checked), else timm's local cache; ``weights="none"``
is a random init, a path a user's state-dict file. Nothing is ever downloaded; missing or unfitting
weights are a one-line :class:`BackboneWeightsError`. See docs/backbones.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from torch import nn

from backbones.registry import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, Backbone, PackageFile, backbone
from backbones.weights import (BackboneWeightsError, load_into, map_in_order, package_file, read_state_dict,
                               sha256_of, timm_cache_file, verify_sha256, weights_source)

__all__ = ["BACKBONES", "Backbone", "BackboneWeightsError", "PackageFile", "create_encoder", "normalisation",
           "weights_source", "sha256_of", "verify_sha256", "load_weights", "backbone", "timm_cache_file",
           "package_file", "freeze_early_layers"]


def normalisation(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) RGB on the 0-1 scale that ``name``'s weights expect: ``x = (rgb/255 - mean) / std``.

    Registry entries give their own; another timm architecture gets its default pretrained
    config's values (ImageNet statistics when timm has none).
    """
    if name in BACKBONES:
        b = BACKBONES[name]
        return tuple(b.mean), tuple(b.std)  # type: ignore[return-value]
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:  # noqa: BLE001 - unknown to timm
        cfg = None
    if cfg is not None and getattr(cfg, "mean", None) and getattr(cfg, "std", None):
        return tuple(float(v) for v in cfg.mean), tuple(float(v) for v in cfg.std)  # type: ignore[return-value]
    return IMAGENET_MEAN, IMAGENET_STD


def load_weights(model: nn.Module, name: str, path: Path, *, sha256: str | None = None) -> int:
    """Load the weights file ``path`` into ``model`` (a timm model of ``name``); returns the tensor count.

    The file is sha256-checked when ``sha256`` is given or it is the registry's package file.
    Its keys are matched by name (timm state dict) or, when the names do not fit and the registry
    entry maps in order, by position (see :mod:`backbones.registry`).
    """
    import timm
    import torch

    entry = backbone(name)
    path = Path(path)
    pkg = package_file(entry)
    expected = sha256 or (entry.package.sha256 if pkg is not None and pkg.resolve() == path.resolve() else None)
    if expected:
        verify_sha256(path, expected)
    sd = read_state_dict(path)
    own = model.state_dict()
    by_name = all(k in sd for k in own if not k.endswith("num_batches_tracked"))
    if not by_name and entry.key_mapping == "in-order":
        with torch.device("meta"):
            reference = timm.create_model(entry.timm_name, pretrained=False).state_dict()
        sd = map_in_order(sd, reference, path, name)
    return load_into(model, sd, path, name)


def create_encoder(name: str, *, weights: str | os.PathLike[str] = "auto", features_only: bool = True,
                   out_indices: tuple[int, ...] | None = None, output_stride: int | None = None,
                   sha256: str | None = None, log: Callable[[str], None] | None = None,
                   **timm_kwargs: Any) -> nn.Module:
    """A timm model of ``name`` with pretrained weights loaded.

    Args:
        name: a registry name (:data:`BACKBONES`) or any timm architecture.
        weights: ``"auto"`` — the installed package's file (sha256-checked), else timm's local
            cache; ``"none"`` — random init; or the path of a state-dict file.
        features_only, out_indices, output_stride: passed to ``timm.create_model`` (the first two
            only when features_only; None = timm's default).
        sha256: expected digest of the weights file (checked when given).
        log: called with one line saying where the weights came from.
        timm_kwargs: further ``timm.create_model`` arguments.

    Returns:
        The model (train mode, CPU). ``model.weights_source`` is the file's path as a string, or "none".

    Raises:
        BackboneWeightsError: missing weights (the line says how to get them), a wrong sha256, or a
            file that does not fit.

    >>> enc = create_encoder("resnet18", weights="none", out_indices=(1, 2, 3, 4))
    >>> enc.feature_info.channels()
    [64, 128, 256, 512]
    """
    import timm

    entry = backbone(name)
    kw = dict(timm_kwargs)
    if features_only:
        kw["features_only"] = True
        if out_indices is not None:
            kw["out_indices"] = tuple(out_indices)
    if output_stride is not None:
        kw["output_stride"] = output_stride
    src = weights_source(name, weights)
    model = timm.create_model(entry.timm_name, pretrained=False, **kw)
    if src is None:
        model.weights_source = "none"
        return model
    n = load_weights(model, name, src, sha256=sha256)
    model.weights_source = str(src)
    if log is not None:
        log(f"{name}: ImageNet weights from {src} ({n} tensors)")
    return model


def _stages(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's top-level children in order, a ``blocks`` / ``stages`` sequence expanded."""
    out: list[nn.Module] = []
    for name, child in encoder.named_children():
        if name in ("blocks", "stages") and isinstance(child, nn.Sequential):
            out.extend(child.children())
        else:
            out.append(child)
    return out


def freeze_early_layers(encoder: nn.Module, max_stride: int, *, probe_hw: tuple[int, int] = (64, 64)) -> int:
    """Keep the encoder's first layers at their (ImageNet) values: no gradient, nothing to update.

    Walks the encoder's stages in forward order (its top-level children, ``blocks`` expanded:
    EfficientNet / MobileNet ``conv_stem, bn1, blocks.0 …``, ResNet ``conv1, bn1, …, layer1 …``)
    and freezes the leading stages whose output stride is at most ``max_stride``: 2 freezes the
    stem, 4 the stem and the stride-4 stages (Detectron2's ``FREEZE_AT=2``). Freezing them
    removes their share of the backward pass; a batch norm in them keeps training its running
    statistics unless the caller also puts it in eval mode.

    Args:
        encoder: a timm model (``features_only`` or not).
        max_stride: 0 freezes nothing.
        probe_hw: size of the zero image used once to read each stage's stride.

    Returns:
        The number of parameters frozen.

    >>> enc = create_encoder("resnet18", weights="none", out_indices=(1, 2, 3, 4))
    >>> freeze_early_layers(enc, 4)  # conv1, bn1 and layer1
    157504
    """
    import torch

    if max_stride <= 0:
        return 0
    stages = _stages(encoder)
    strides: dict[int, int] = {}

    def record(i: int):
        def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
            strides.setdefault(i, probe_hw[1] // out.shape[-1] if torch.is_tensor(out) and out.dim() == 4 else -1)
        return hook

    hooks = [m.register_forward_hook(record(i)) for i, m in enumerate(stages)]
    was_training = encoder.training
    try:
        encoder.eval()
        with torch.no_grad():
            encoder(torch.zeros(1, 3, *probe_hw))
    finally:
        for h in hooks:
            h.remove()
        encoder.train(was_training)
    frozen = 0
    for i, stage in enumerate(stages):
        s = strides.get(i, -1)
        if s < 0 or s > max_stride:
            break
        for p in stage.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen
