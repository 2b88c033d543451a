"""The training engine the four trainers share (depth, detect2d, F-PointNet, AVOD).

A trainer keeps its model, its loss and how it builds a batch; the engine owns the rest
(docs/training.md):

* :mod:`engine.runtime` — the device (``auto``: the rank's own GPU under torchrun, else the CPU),
  torch's CPU threads, and the torchrun process group (:mod:`kitti.dist`);
* :mod:`engine.amp` — mixed precision: bf16 on a GPU that has it, else fp16 with a ``GradScaler``;
  on the CPU only where a setting asks (bf16);
* :mod:`engine.rng` — every random state (torch CPU and CUDA, NumPy, Python, the trainer's own
  generators) captured as CPU objects and put back from whatever device a checkpoint was read to;
* :mod:`engine.checkpoint` — checkpoints written atomically, always read onto the CPU;
* :mod:`engine.loop` — the step loop with hooks (:class:`~engine.loop.TrainerBase` in the style of
  detectron2): a checkpoint every N steps and when SIGTERM/SIGINT arrives, a per-step CSV log
  (``train_log.csv``) and its loss curve (``train_loss.png``).

This package imports only torch, NumPy, matplotlib and :mod:`kitti`; stages import it, never the
other way round.
"""

from engine.amp import Amp, amp_for
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.loop import CheckpointHook, CsvLogHook, Hook, MeanLogHook, SnapshotHook, TrainerBase, TrainingInterrupted
from engine.rng import capture_rng, restore_rng
from engine.runtime import select_device, setup_device

__all__ = ["Amp", "amp_for", "load_checkpoint", "save_checkpoint", "CheckpointHook", "CsvLogHook", "Hook", "MeanLogHook", "SnapshotHook",
           "TrainerBase", "TrainingInterrupted", "capture_rng", "restore_rng", "select_device", "setup_device"]
