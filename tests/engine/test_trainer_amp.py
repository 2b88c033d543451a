"""The 2D detector and AVOD take their mixed precision from ``engine.amp_for`` (autocast and
GradScaler), as depth and F-PointNet do.

No GPU here: ``amp_for`` is replaced by a stand-in that is *on* (bf16 autocast on the CPU and an
enabled ``GradScaler``, the calls counted), so the path a CUDA run takes — the forward under
autocast, the scaled backward, the unscale before the 2D detector's gradient clipping, the scaler's
step and update, AVOD's loss in float32 — runs end to end. On the CPU ``amp_for`` is off, so the
trajectories are unchanged (the sha256 of the final weights in docs/training.md). Not run on a GPU.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest
import torch

from engine import amp_for

REPO = Path(__file__).resolve().parents[2]


class _SpyScaler:
    """An enabled CPU GradScaler that counts its calls."""

    def __init__(self) -> None:
        self.inner = torch.amp.GradScaler("cpu", init_scale=256.0)
        self.calls: collections.Counter = collections.Counter()

    def scale(self, loss):
        self.calls["scale"] += 1
        return self.inner.scale(loss)

    def unscale_(self, opt):
        self.calls["unscale_"] += 1
        self.inner.unscale_(opt)

    def step(self, opt):
        self.calls["step"] += 1
        return self.inner.step(opt)

    def update(self):
        self.calls["update"] += 1
        self.inner.update()


class _SpyAmp:
    enabled = True

    def __init__(self) -> None:
        self.entered, self.asked, self.spy_scaler = 0, [], _SpyScaler()

    def autocast(self):
        self.entered += 1
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def scaler(self):
        return self.spy_scaler


def _spy(monkeypatch, module) -> _SpyAmp:
    amp = _SpyAmp()

    def fake(device, **kw):
        amp.asked.append((device, kw))
        return amp

    monkeypatch.setattr(module, "amp_for", fake)
    return amp


def test_amp_is_off_on_the_cpu():
    amp = amp_for(torch.device("cpu"))
    assert not amp.enabled and not amp.scaler().is_enabled()


def test_detect2d_trains_with_the_amp_of_amp_for(monkeypatch, tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "detect2d"))
    from d2d_fixtures import TinyEncoder, tiny_settings, write_root

    import detect2d.train as mod

    amp = _spy(monkeypatch, mod)
    root = write_root(tmp_path / "root")
    summary = mod.train_detector(root, ("000000", "000001", "000002", "000003"),
                                 tiny_settings(max_steps=2, checkpoint_every_steps=2), tmp_path / "out",
                                 progress=False, encoder=TinyEncoder())
    assert [str(d) for d, _ in amp.asked] == ["cpu"]
    assert amp.entered == summary["steps"] == 2
    assert amp.spy_scaler.calls == {"scale": 2, "unscale_": 2, "step": 2, "update": 2}
    sd = torch.load(tmp_path / "out/model.pt", weights_only=False)["state_dict"]
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def test_avod_trains_with_the_amp_of_amp_for(monkeypatch, tmp_path, sample_root):
    import detection.avod.train as mod
    from detection.avod.settings import AvodSettings

    amp = _spy(monkeypatch, mod)
    tiny = AvodSettings(x_range_m=(-20.0, 20.0), z_range_m=(0.0, 40.0), cell_m=0.5, use_image=True,
                        channels=(4, 8, 8, 8), decoder_channels=8, rpn_fc=16, pre_nms_top=500, proposals_train=64,
                        proposals_test=32, fc_layers=(64, 64), dropout=0.1, rpn_batch=128, roi_batch=64,
                        add_gt_to_proposals=True, learning_rate=3e-3, steps=2, checkpoint_every=2, num_threads=1,
                        device="cpu")
    summary = mod.train_avod(sample_root, sample_root / "training/velodyne", ("000006", "000008"), tiny,
                             tmp_path / "out", progress=False)
    assert [str(d) for d, _ in amp.asked] == ["cpu"]
    assert amp.entered == summary["steps"] == 2
    assert amp.spy_scaler.calls == {"scale": 2, "step": 2, "update": 2}
    assert summary["final_total"] == summary["final_total"]  # not NaN: the loss ran in float32
    sd = torch.load(tmp_path / "out/model.pt", weights_only=False)["state_dict"]
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
