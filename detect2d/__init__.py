"""The 2D detector stage: Car / Pedestrian / Cyclist boxes from the image alone.

torchvision's RetinaNet or FCOS on an FPN over a pretrained timm encoder, trained on a split's
``label_2`` boxes (``DontCare`` and the devkit's neighbour classes are ignore regions), writing one
KITTI result file per frame that ``foresee detect infer --boxes2d DIR`` and the evaluator read.

Library entry points: :func:`detect2d.train.train_detector`, :func:`detect2d.infer.infer_detector`,
:func:`detect2d.settings.preset`. See docs/detect2d.md.
"""

#: Bump when the stage's outputs change for the same inputs and settings.
CODE_VERSION = "detect2d-2"
