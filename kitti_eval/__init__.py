"""kitti_eval: the official KITTI object devkit's numbers (2D, BEV, 3D, AOS; R11 and R40) on a CPU.

Public API::

    from kitti_eval import evaluate, evaluate_folders
    result = evaluate_folders("KITTI/training/label_2", "results/", frame_ids)
    result.to_json(); result.to_dataframe(); result.to_markdown()

Numba kernels (``_kernels.py``) compute the overlaps and the devkit's per-frame statistics in
parallel over frames; ``reference.py`` holds their plain float64 twins used by the tests.
"""

from kitti_eval.loading import FrameLabels, read_label_folder
from kitti_eval.metrics import EvalResult, evaluate, evaluate_folders
from kitti_eval.settings import EvalSettings, IouThresholds, preset

#: Version of the evaluation code, part of every cache key that depends on it.
CODE_VERSION = "1"

__all__ = ["CODE_VERSION", "EvalResult", "EvalSettings", "FrameLabels", "IouThresholds",
           "evaluate", "evaluate_folders", "preset", "read_label_folder"]
