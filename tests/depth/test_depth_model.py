"""depth.model: shapes, merging, decoding, encoder weights and checkpoints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from depth.bins import DepthBins
from depth.model import (CheckpointMismatchError, DepthNet, load_checkpoint, load_encoder_weights, merge_logits,
                         save_checkpoint, soft_weighted_depth)
from depth_fixtures import tiny_settings


@pytest.mark.parametrize("variant, n_dec", [("baseline", 1), ("so", 1), ("so-sd", 2), ("foresee", 2)])
def test_depthnet_forward_gives_logits_at_input_resolution(variant, n_dec):
    torch.manual_seed(0)
    model = DepthNet(tiny_settings(variant)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 40, 72))   # not a multiple of 16
    assert len(out) == n_dec
    assert all(o.shape == (2, 100, 40, 72) for o in out)


def test_depthnet_backward_reaches_encoder_and_both_decoders():
    model = DepthNet(tiny_settings("foresee"))
    out = model(torch.randn(1, 3, 32, 64))
    (out[0].mean() + out[1].mean()).backward()
    for part in (model.encoder, model.decoders[0], model.decoders[1]):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_merge_logits_max_mask_and_single():
    fg, bg = torch.tensor([[[[1.0]], [[5.0]]]]), torch.tensor([[[[3.0]], [[2.0]]]])
    assert merge_logits((fg, bg), "max").flatten().tolist() == [3.0, 5.0]
    assert torch.equal(merge_logits((fg, bg), "mask", torch.tensor([[[True]]])), fg)
    assert torch.equal(merge_logits((fg, bg), "mask", torch.tensor([[[False]]])), bg)
    assert torch.equal(merge_logits((fg,), "max"), fg)
    with pytest.raises(ValueError, match="two-decoder"):
        merge_logits((fg,), "mask")


def test_soft_weighted_depth_matches_numpy_decoder():
    bins = DepthBins()
    torch.manual_seed(0)
    logits = torch.randn(1, 100, 3, 4) * 3
    got = soft_weighted_depth(logits, bins)[0].numpy()
    probs = torch.softmax(logits, 1)[0].numpy()
    np.testing.assert_allclose(got, bins.soft_decode(probs, axis=0), rtol=1e-4)


def test_load_encoder_weights_from_local_file(tmp_path):
    import timm

    settings = tiny_settings("baseline")
    torch.manual_seed(1)
    source = timm.create_model(settings.encoder, pretrained=False)      # classifier incl. head
    path = tmp_path / "tiny_encoder.pth"
    torch.save(source.state_dict(), path)
    model = DepthNet(settings)
    msgs = []
    assert load_encoder_weights(model, path, log=msgs.append) == str(path)
    key = "conv1.weight" if "conv1.weight" in model.encoder.state_dict() else next(iter(model.encoder.state_dict()))
    assert torch.equal(model.encoder.state_dict()[key], source.state_dict()[key])
    assert "tensors" in msgs[0]


def test_load_encoder_weights_none_keeps_random_init_and_rejects_foreign_or_missing_file(tmp_path):
    from backbones import BackboneWeightsError

    model = DepthNet(tiny_settings("baseline", encoder="test_resnet"))
    msgs = []
    assert load_encoder_weights(model, "none", log=msgs.append) == "none"
    assert "random init" in msgs[0]
    with pytest.raises(BackboneWeightsError, match="^no ImageNet weights for encoder test_resnet"):
        load_encoder_weights(model, "auto")
    foreign = tmp_path / "foreign.pth"
    torch.save({"something.else": torch.zeros(3)}, foreign)
    with pytest.raises(BackboneWeightsError, match="foreign.pth"):
        load_encoder_weights(model, foreign, log=msgs.append)
    with pytest.raises(BackboneWeightsError, match="missing.pth"):
        load_encoder_weights(model, tmp_path / "missing.pth")


def test_checkpoint_round_trip_and_mismatch_errors(tmp_path: Path):
    settings = tiny_settings("foresee")
    torch.manual_seed(0)
    model = DepthNet(settings)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, settings, step=3, epoch=1)
    loaded, s2, payload = load_checkpoint(path, expected=settings)
    assert s2 == settings and payload["step"] == 3
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint\.pt.*variant"):
        load_checkpoint(path, expected=replace(settings, variant="baseline"))
    with pytest.raises(CheckpointMismatchError, match="n_bins"):
        load_checkpoint(path, expected=replace(settings, n_bins=80))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="bad.pt"):
        load_checkpoint(bad)


def _ftb(cin: int, cout: int) -> int:
    """Parameters of a feature-transfer block: 1x1 (no bias), dilated 3x3 (bias), BN, dilated 3x3."""
    return cin * cout + (9 * cout * cout + cout) + 2 * cout + 9 * cout * cout


def _afa(dim: int) -> int:
    return 2 * dim * (dim // 8) + (dim // 8) * dim


def test_paper_preset_is_the_authors_network_97m_parameters():
    """Counts of the authors' lateral_net.py with ResNeXt-101 32x4d, computed block by block."""
    import timm

    from depth.model import count_parameters
    from depth.settings import preset

    with torch.device("meta"):
        model = DepthNet(preset("paper", "foresee", encoder_weights="none"))
        encoder = timm.create_model("resnext101_32x4d", features_only=True, out_indices=(1, 2, 3, 4))
    n_bins = 100
    decoder = (_afa(512) + _ftb(512, 256) + 3 * (_afa(256) + _ftb(256, 256)) + _ftb(256, 256)
               + 9 * 256 * n_bins + n_bins)
    laterals = _ftb(256, 256) + _ftb(512, 256) + _ftb(1024, 256) + _ftb(2048, 512)
    aspp_top = 2048 * 512 * (1 + 9 * 3 + 1) + 5 * 2 * 512 + 5 * 512 * 512 + 2 * 512
    assert [count_parameters(d) for d in model.decoders] == [decoder, decoder] and decoder == 6_697_828
    assert count_parameters(model.laterals) == laterals and count_parameters(model.neck) == aspp_top
    total = count_parameters(encoder) + laterals + aspp_top + 2 * decoder
    assert count_parameters(model) == total and round(total / 1e6, 1) == 97.0


def test_vnl_decoder_shapes_gradients_and_width_rule():
    from depth.settings import preset

    settings = tiny_settings("foresee", decoder="vnl", neck_channels=16, lateral_channels=(8, 8, 8, 16),
                             decoder_channels=(8, 8, 8, 8, 8))
    torch.manual_seed(0)
    model = DepthNet(settings)
    out = model(torch.randn(2, 3, 40, 72))
    assert [tuple(o.shape) for o in out] == [(2, settings.n_bins, 40, 72)] * 2
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (
        model.decoders[0].stages[0]["afa"].weight[1].weight, model.decoders[1].head.weight,
        model.laterals[0].conv1.weight, model.neck.top[0].weight))
    with pytest.raises(ValueError, match="decoder 'vnl' adds each lateral"):
        preset("paper", "baseline", lateral_channels=(256, 256, 512, 512))
    with pytest.raises(ValueError, match="decoder must be one of vnl, light"):
        preset("paper", "baseline", decoder="unet")


def test_freeze_encoder_stride_freezes_the_stem_and_stride_4_stage_only():
    model = DepthNet(tiny_settings("foresee", freeze_encoder_stride=4))
    # timm's test_resnet: conv1 (stride 2), bn1, maxpool (4), layer1 (4), layer2 (8) ...
    expected = {k for k, _ in model.named_parameters() if k.startswith(("encoder.conv1.", "encoder.bn1.", "encoder.layer1."))}
    assert expected and {k for k, p in model.named_parameters() if not p.requires_grad} == expected
    out = model(torch.randn(1, 3, 32, 64))
    (out[0].mean() + out[1].mean()).backward()
    assert all(p.grad is None for k, p in model.named_parameters() if k in expected)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.layer2.parameters())
    with pytest.raises(ValueError, match="freeze_encoder_stride"):
        tiny_settings("foresee", freeze_encoder_stride=-2)
