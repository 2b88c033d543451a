"""``foresee backbones fetch NAME``: the one explicit step that downloads an encoder's ImageNet weights.

Nothing else in foresee downloads: a stage looks in the installed package and timm's local caches
(:func:`backbones.weights.weights_source`) and stops with one line when they are empty. This module
fills timm's Hugging Face hub cache with the file ``timm.create_model(NAME.TAG, pretrained=True)``
would fetch (the registry's preferred tag first), where ``weights_source`` then finds it. Run it
once on a machine with internet (or copy the cache folder from one); it is never called by a stage.
"""

from __future__ import annotations

from pathlib import Path

from backbones.registry import backbone
from backbones.weights import BackboneWeightsError, package_file, timm_cache_file

#: the files a timm HF hub repository holds its weights in, preferred first.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def pretrained_tag(name: str) -> str:
    """The timm ``arch.tag`` that fetch downloads: the registry's first tag timm knows, else timm's default."""
    import timm

    entry = backbone(name)
    known = [t.split(".", 1)[1] for t in timm.list_pretrained(entry.timm_name) if "." in t]
    if not known:
        raise BackboneWeightsError(None, None, f"timm {timm.__version__} knows no pretrained weights for {entry.timm_name}")
    tag = next((t for t in entry.timm_tags if t in known), known[0])
    return f"{entry.timm_name}.{tag}"


def fetch_weights(name: str) -> tuple[Path, bool]:
    """Make ``name``'s ImageNet weights available locally.

    Returns:
        (the file ``weights_source(name)`` now finds, whether it was downloaded just now).

    Raises:
        BackboneWeightsError: one line, when the download fails (no network, offline mode, no such
            file on the hub) or the downloaded file is not where timm's cache lookup finds it.
    """
    entry = backbone(name)
    found = package_file(entry) or timm_cache_file(entry)
    if found is not None:
        return found, False
    import huggingface_hub
    import timm

    arch_tag = pretrained_tag(name)
    hub_id = getattr(timm.models.get_pretrained_cfg(arch_tag), "hf_hub_id", None)
    if not hub_id:
        raise BackboneWeightsError(None, None, f"timm has no Hugging Face hub file for {arch_tag}; "
                                   "pass a state-dict file instead (see docs/backbones.md)")
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise BackboneWeightsError(None, None, f"could not download {arch_tag}: HF_HUB_OFFLINE is set "
                                   "(unset it where there is internet; docs/backbones.md)")
    else:
        unreachable = _unreachable(huggingface_hub.constants.ENDPOINT)
        if unreachable:
            raise BackboneWeightsError(None, None, f"could not download {arch_tag}: {unreachable} (no network? "
                                       "run this where there is internet and copy the cache; docs/backbones.md)")
    errors = []
    done = False
    for filename in HUB_FILES:
        try:
            huggingface_hub.hf_hub_download(hub_id, filename)
            done = True
            break
        except huggingface_hub.errors.EntryNotFoundError as e:  # this repository keeps the other file
            errors.append(f"{type(e).__name__}: {filename}")
        except Exception as e:  # noqa: BLE001 - every failure ends as one line below
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            errors.append(f"{type(e).__name__}: {first}")
            break
    if not done:
        raise BackboneWeightsError(None, None, f"could not download {arch_tag} from the Hugging Face hub "
                                   f"({hub_id}; no network or offline mode?): {errors[0]}")
    found = timm_cache_file(entry)
    if found is None:
        raise BackboneWeightsError(None, None, f"downloaded {hub_id} but timm's cache lookup does not find it "
                                   "(HF_HUB_CACHE changed in between?)")
    return found, True


def _unreachable(endpoint: str, timeout_s: float = 5.0) -> str | None:
    """Why ``endpoint``'s host cannot be reached over TCP (a one-line reason), or None.

    Checked before downloading so that a machine without network fails at once, not after the hub
    client's retries. Behind an HTTPS proxy the check is left to the client.
    """
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return None
    url = urlparse(endpoint)
    host, port = url.hostname or endpoint, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        return f"{host}:{port} unreachable ({e.strerror or type(e).__name__})"
    return None
