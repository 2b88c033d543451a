"""AVOD-FPN (Ku et al., IROS 2018) in PyTorch, on LiDAR or pseudo-LiDAR clouds.

Modules: :mod:`.settings` (frozen settings, presets ``paper`` and ``cpu-small``), :mod:`.planes`
(ground planes: RANSAC fit, KITTI ``planes/`` files), :mod:`.bev` (height-slice + density maps),
:mod:`.anchors` (k-means sizes, grid, empty-anchor filter), :mod:`.encoding` (anchor offsets,
4-corner box encoding, orientation vector), :mod:`.model` (two-view network), :mod:`.loss`,
:mod:`.data` (one frame's inputs and targets), :mod:`.train`, :mod:`.infer`.
Torch is imported only by model, loss, data, train and infer.

Conventions: boxes in the rect camera frame, KITTI style (location = bottom centre, camera y
down, ``ry`` about camera y, sizes (h, w, l)); the BEV grid covers rect x (columns, left to right)
and z (rows, far to near: row 0 is ``z_max``).
"""

CODE_VERSION = "1"
