"""ForeSeE task-aware monocular depth (AAAI 2020) and its baseline.

Modules: :mod:`depth.settings` (frozen settings and presets), :mod:`depth.bins` (100 log-spaced
depth classes), :mod:`depth.model` (encoder, ASPP neck, lateral pyramid, one or two decoders),
:mod:`depth.loss` (soft-label cross-entropy per region), :mod:`depth.data` (dataset, fg masks,
augmentation), :mod:`depth.kod` (KITTI-Object-Depth build), :mod:`depth.train`,
:mod:`depth.infer`, :mod:`depth.metrics` (Tables 2, 3), :mod:`depth.stats` (Fig. 2, Table 1).

Torch is imported by the modules that need it, not here.
"""

#: Bump when the artifacts this package writes (checkpoints, depth maps) change for the same inputs.
CODE_VERSION = "1"
