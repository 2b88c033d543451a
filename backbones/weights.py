"""Finding, checking and loading an encoder's pretrained weights (never downloads).

Every failure is a :class:`BackboneWeightsError`: one line naming the file (when there is one) and
saying how to get weights that fit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from backbones.registry import Backbone, backbone
from kitti.errors import KittiFormatError

_CLASSIFIER_PREFIXES = ("classifier.", "fc.", "head.", "head.fc.")


class BackboneWeightsError(KittiFormatError):
    """Weights that are missing, corrupt (sha256) or do not fit the encoder; one line, names the file."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`BackboneWeightsError` unless ``path``'s sha256 is ``expected``."""
    got = sha256_of(path)
    if got != expected.lower():
        raise BackboneWeightsError(path, None, f"sha256 is {got}, expected {expected.lower()} "
                                   "(a corrupt or different file: reinstall it or pass the right one)")


def package_file(entry: Backbone) -> Path | None:
    """The installed package's weights file of ``entry``, or None (package not installed / no file)."""
    if entry.package is None:
        return None
    try:
        spec = importlib.util.find_spec(entry.package.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = Path(folder) / entry.package.relpath
        if p.is_file():
            return p
    return None


def timm_cache_file(entry: Backbone) -> Path | None:
    """The encoder's ImageNet weights in timm's local caches (HF hub or torch hub), or None.

    Tags are tried in the order of ``entry.timm_tags``, then timm's default and other tags of the
    architecture.
    """
    import timm

    try:
        tags = [t.split(".", 1)[1] for t in timm.list_pretrained(entry.timm_name) if "." in t]
    except Exception:  # noqa: BLE001 - an architecture timm does not know: no cache
        return None
    ordered = [t for t in entry.timm_tags if t in tags] + [t for t in tags if t not in entry.timm_tags]
    for tag in ordered:
        cfg = timm.models.get_pretrained_cfg(f"{entry.timm_name}.{tag}")
        if cfg is None:
            continue
        hub_id = getattr(cfg, "hf_hub_id", None)
        if hub_id:
            try:
                from huggingface_hub import try_to_load_from_cache
            except ImportError:
                try_to_load_from_cache = None
            if try_to_load_from_cache is not None:
                for fname in ("model.safetensors", "pytorch_model.bin"):
                    hit = try_to_load_from_cache(hub_id, fname)
                    if isinstance(hit, str) and os.path.isfile(hit):
                        return Path(hit)
        url = getattr(cfg, "url", None)
        if url:
            p = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
            if p.is_file():
                return p
    return None


def how_to_get(entry: Backbone) -> str:
    """One sentence on where ``entry``'s weights come from."""
    ways = []
    if entry.package is not None:
        ways.append(f"`{entry.package.pip_command()}`")
    ways.append(f"run `foresee backbones fetch {entry.name}` (needs internet; fills timm's cache)")
    ways.append(f"or copy timm's {entry.timm_name} ImageNet file into its cache ({Path(torch.hub.get_dir()) / 'checkpoints'}"
                " or the Hugging Face hub cache)")
    ways.append("pass a state-dict file (weights=PATH, foresee depth train --encoder-weights PATH)")
    return "; ".join(ways) + " (see docs/backbones.md)"


def weights_source(name: str, weights: str | os.PathLike[str] = "auto") -> Path | None:
    """Where ``create_encoder(name, weights=...)`` takes its weights from.

    Args:
        name: a registry name (or any timm architecture).
        weights: ``"auto"`` (installed package, else timm cache), ``"none"`` (random init), or a path.

    Returns:
        The file, or None for ``weights="none"``.

    Raises:
        BackboneWeightsError: a path that is not a file, or ``auto`` with no weights anywhere.
    """
    entry = backbone(name)
    if str(weights) == "none":
        return None
    if str(weights) != "auto":
        p = Path(weights)
        if not p.is_file():
            raise BackboneWeightsError(p, None, f"encoder weights file for {name} not found")
        return p
    found = package_file(entry) or timm_cache_file(entry)
    if found is None:
        raise BackboneWeightsError(None, None, f"no ImageNet weights for encoder {name} on this machine: "
                                   + how_to_get(entry))
    return found


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.pth``/``.pt``/``.bin``/``.safetensors`` (``state_dict``/``model``
    wrappers and a ``module.`` prefix removed)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line
        raise BackboneWeightsError(path, None, f"not a readable state dict ({type(e).__name__}: "
                                   f"{str(e).splitlines()[0] if str(e) else ''})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BackboneWeightsError(path, None, "not a state dict of tensors")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _without_counters(sd: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]


def _is_classifier(key: str) -> bool:
    return key.startswith(_CLASSIFIER_PREFIXES)


def map_in_order(sd: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], path: Path,
                 name: str) -> dict[str, torch.Tensor]:
    """Rename ``sd``'s tensors to ``reference``'s names (timm classification model) by position.

    The file must hold as many tensors as the reference, or as many as the reference less its
    classifier; every shape must agree.
    """
    src = _without_counters(sd)
    ref = _without_counters(reference)
    body = [kv for kv in ref if not _is_classifier(kv[0])]
    if len(src) == len(ref):
        target = ref
    elif len(src) == len(body):
        target = body
    else:
        raise BackboneWeightsError(path, None, f"{len(src)} tensors, {name} has {len(ref)} "
                                   f"({len(body)} without its classifier): not weights of {name}")
    out = {}
    for (sk, sv), (tk, tv) in zip(src, target):
        if tuple(sv.shape) != tuple(tv.shape):
            raise BackboneWeightsError(path, None, f"tensor {sk} {tuple(sv.shape)} does not fit {name}'s "
                                       f"{tk} {tuple(tv.shape)}: not weights of {name}")
        out[tk] = sv
    return out


def load_into(model: nn.Module, sd: Mapping[str, torch.Tensor], path: Path, name: str) -> int:
    """Load a state dict in timm names into ``model`` (a timm model, features_only or not).

    Every tensor of the model (``num_batches_tracked`` aside) must be in ``sd`` with its shape;
    keys the model lacks (the classifier of a features-only model) are ignored.

    Returns:
        The number of tensors loaded.
    """
    own = model.state_dict()
    needed = [k for k in own if not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in sd]
    if missing:
        raise BackboneWeightsError(path, None, f"{len(missing)} of {name}'s {len(needed)} tensors are not in "
                                   f"the file (first: {missing[0]}): not weights of {name} in timm's names")
    bad = [k for k in needed if tuple(sd[k].shape) != tuple(own[k].shape)]
    if bad:
        raise BackboneWeightsError(path, None, f"tensor {bad[0]} is {tuple(sd[bad[0]].shape)}, {name} needs "
                                   f"{tuple(own[bad[0]].shape)}: not weights of {name}")
    model.load_state_dict({k: sd[k] for k in needed}, strict=False)
    return len(needed)
