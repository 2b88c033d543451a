"""The F-PointNet ``paper`` preset is the original v1 training configuration."""

from __future__ import annotations

from detection.frustum_pointnet.settings import preset


def test_paper_preset_trains_on_every_train_frame_like_the_original():
    s = preset("paper")
    # frustum-pointnets/train/train.py: all of train (no held-out share), 201 epochs of batch 32,
    # Adam 1e-3 halved every 800k samples, 1024 points per frustum, augmentX 5 (prepare_data.py)
    assert s.holdout_fraction == 0.0
    assert (s.epochs, s.batch_size, s.learning_rate, s.lr_decay_rate, s.lr_decay_samples) == (
        201, 32, 1e-3, 0.5, 800_000)
    assert (s.num_points, s.augment_x, s.max_steps) == (1024, 5, 0)
    assert preset("cpu-small").holdout_fraction == 0.1  # the CPU preset reports a held-out accuracy
