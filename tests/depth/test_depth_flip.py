"""Test-time flip (``predict_depth(flip=True)``): each decoder's logits are the mean of the plain
pass and the mirrored image's pass mirrored back, then merged and decoded as without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depth.data import normalize_image
from depth.infer import predict_depth
from depth.model import DepthNet, bins_of, merge_logits, soft_weighted_depth
from depth_fixtures import tiny_settings


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _model(variant: str, resize_factor: float) -> DepthNet:
    """A random-init tiny network whose bin-logit convs are scaled up, so that its depth varies
    over the image by percents (a fresh init predicts nearly one depth everywhere)."""
    torch.manual_seed(0)
    model = DepthNet(tiny_settings(variant, resize_factor=resize_factor)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.out_channels == model.settings.n_bins:
                m.weight.mul_(30.0)
    return model


def _logits_one(model: DepthNet, image: np.ndarray) -> tuple[torch.Tensor, ...]:
    """The network on one image (resize factor 1), padded to a multiple of 16 on the bottom and
    right, in a batch of its own; logits cropped to the image."""
    h, w = image.shape[:2]
    x = normalize_image(image, model.settings.encoder)
    x = np.pad(x, ((0, 0), (0, -(-h // 16) * 16 - h), (0, -(-w // 16) * 16 - w)))
    with torch.inference_mode():
        return tuple(lg[:, :, :h, :w].float() for lg in model(torch.from_numpy(x)[None]))


@pytest.mark.parametrize("variant,merge", [("foresee", "max"), ("foresee", "bg"), ("baseline", "max")])
def test_flip_is_the_mean_of_the_two_passes_logits(variant, merge):
    model = _model(variant, 1.0)
    image = _image(40, 88, 1)  # 88 columns: padded to 96, so the mirror's padding side matters
    plain = _logits_one(model, image)
    mirrored = tuple(lg.flip(-1) for lg in _logits_one(model, np.ascontiguousarray(image[:, ::-1])))
    mean = tuple((a + b) / 2 for a, b in zip(plain, mirrored, strict=True))
    want = soft_weighted_depth(merge_logits(mean, merge), bins_of(model.settings))[0].numpy()
    got = predict_depth(model, image, merge=merge, flip=True)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    no_flip = predict_depth(model, image, merge=merge)
    assert np.abs(got / no_flip - 1).max() > 1e-2  # the mirrored pass changes the answer


@pytest.mark.parametrize("resize_factor", [1.0, 0.5])
def test_flip_prediction_of_the_mirrored_image_is_the_mirrored_prediction(resize_factor):
    model = _model("foresee", resize_factor)
    image = _image(48, 100, 2)
    a = predict_depth(model, image, flip=True)
    b = predict_depth(model, np.ascontiguousarray(image[:, ::-1]), flip=True)
    np.testing.assert_allclose(b, a[:, ::-1], rtol=1e-5)
    # without the flip the network is not mirror-symmetric: the property above is the flip's
    c = predict_depth(model, image)
    d = predict_depth(model, np.ascontiguousarray(image[:, ::-1]))
    assert np.abs(d / c[:, ::-1] - 1).max() > 1e-2
