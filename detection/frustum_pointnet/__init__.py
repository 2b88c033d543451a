"""Frustum-PointNet v1 in PyTorch: frustums from 2D boxes, the v1 network, loss, train, infer.

Modules: :mod:`.settings` (frozen settings, presets ``paper`` and ``cpu-small``), :mod:`.codec`
(12 heading bins, 8 size templates), :mod:`.frustum` (per-frame frustum extraction),
:mod:`.boxes2d` (2D boxes: ground truth, F-PointNet text files, KITTI folders, the simulated
detector), :mod:`.model`, :mod:`.loss`, :mod:`.metrics` (3D IoU), :mod:`.train`, :mod:`.infer`.
Torch is imported only by model, loss, train and infer.
"""

CODE_VERSION = "2"  # 2: inference seeds its random gather per frame (shardable)
