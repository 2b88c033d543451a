"""depth.settings: presets, validation and the dict round trip used by checkpoints."""

from __future__ import annotations

import pytest

from depth.settings import DepthSettings, preset


def test_preset_paper_has_the_published_training_configuration():
    s = preset("paper", "baseline")
    assert (s.encoder, s.optimizer, s.lr, s.momentum, s.weight_decay, s.poly_power) == \
        ("resnext101_32x4d", "sgd", 1e-3, 0.9, 5e-4, 0.9)
    assert (s.batch_size, s.epochs, s.crop_hw, s.crop_top_skip, s.scales) == (4, 20, (385, 513), 50,
                                                                                (1.0, 1.2, 1.5, 1.8, 2.0))
    assert (s.n_bins, s.bin_min_norm, s.depth_max_m, s.soft_label_coeff) == (100, 0.015, 80.0, 0.2)
    assert (s.own_weight, s.other_weight, s.fg_min_area_px2, s.fg_max_boxes) == (0.8, 0.2, 3600.0, 10)


def test_preset_variants_decoders_and_overrides():
    assert [preset("cpu-small", v).n_decoders for v in ("baseline", "so", "so-sd", "foresee")] == [1, 1, 2, 2]
    assert preset("cpu-small", "so", so_lambda=0.3).so_lambda == 0.3
    with pytest.raises(ValueError, match="unknown preset"):
        preset("gpu-huge")
    with pytest.raises(ValueError, match="variant must be one of"):
        preset("paper", "vnl")


def test_depth_settings_dict_round_trip_and_unknown_key():
    s = preset("cpu-small", "foresee")
    d = s.to_dict()
    d["crop_hw"] = list(d["crop_hw"])
    assert DepthSettings.from_dict(d) == s
    with pytest.raises(ValueError, match="unknown depth settings: colour"):
        DepthSettings.from_dict({**d, "colour": 1})


def test_settings_of_older_checkpoints_read_as_the_light_decoder():
    old = preset("cpu-small", "foresee").to_dict()
    del old["decoder"], old["encoder_weights"]
    old["pretrained_path"] = "/w/r18.pth"
    s = DepthSettings.from_dict(old)
    assert (s.decoder, s.encoder_weights) == ("light", "/w/r18.pth")
    assert DepthSettings.from_dict(preset("paper").to_dict()).decoder == "vnl"
