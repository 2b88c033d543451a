"""The four trainers on tiny data, as the resume tests run them (in the test process and in a
subprocess that is killed): ``train(name, data, out, resume)`` and ``weights(name, out)``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1]
for sub in ("depth", "detect2d"):
    if str(TESTS / sub) not in sys.path:
        sys.path.insert(0, str(TESTS / sub))

SAMPLE = TESTS / "data" / "kitti_sample"
NAMES = ("depth", "detect2d", "fpointnet", "avod")
#: the step whose checkpoint the killed run writes first
FIRST_CHECKPOINT = {"depth": 1, "detect2d": 3, "fpointnet": 3, "avod": 4}


def make_data(name: str, folder: Path) -> Path:
    """The KITTI-format root a trainer reads (written under ``folder``; the real sample for 3D)."""
    if name == "depth":
        from depth_fixtures import write_synthetic_root

        write_synthetic_root(folder / "root")
        return folder / "root"
    if name == "detect2d":
        from d2d_fixtures import write_root

        return write_root(folder / "root")
    return SAMPLE


def train(name: str, data: Path, out: Path, resume: Path | None = None) -> dict:
    torch.set_num_threads(1)
    if name == "depth":
        from depth.train import train_depth
        from depth_fixtures import tiny_settings
        from kitti import KittiRoot

        s = tiny_settings("foresee", max_steps=4)  # 1 step an epoch, checkpoint_every 0: at epoch ends
        return train_depth(data, KittiRoot(data).split("train"), s, out, progress=False, resume=resume)
    if name == "detect2d":
        from d2d_fixtures import TINY_SCENES, TinyEncoder, tiny_settings
        from detect2d.train import train_detector

        torch.manual_seed(0)
        return train_detector(data, tuple(TINY_SCENES), tiny_settings(max_steps=6, checkpoint_every_steps=3), out,
                              progress=False, resume=resume, encoder=TinyEncoder())
    if name == "fpointnet":
        from detection.frustum_pointnet.settings import preset
        from detection.frustum_pointnet.train import train_fpointnet

        s = preset("cpu-small").with_(width=0.125, num_points=64, num_object_points=32, batch_size=4, epochs=2,
                                      augment_x=1, holdout_fraction=0.3, num_threads=1, checkpoint_every_epochs=1,
                                      device="cpu")
        return train_fpointnet(data, data / "training/velodyne", tuple(f"{i:06d}" for i in range(9)), s, out,
                               progress=False, resume=resume)
    if name == "avod":
        from detection.avod.settings import AvodSettings
        from detection.avod.train import train_avod

        s = AvodSettings(x_range_m=(-20.0, 20.0), z_range_m=(0.0, 40.0), cell_m=0.5, use_image=True,
                         image_hw=(48, 160), channels=(4, 8, 8, 8), decoder_channels=8, rpn_fc=16, pre_nms_top=500,
                         proposals_train=64, proposals_test=32, fc_layers=(64, 64), dropout=0.1, rpn_batch=128,
                         roi_batch=64, add_gt_to_proposals=True, learning_rate=3e-3, lr_decay_steps=1000,
                         weight_decay=0.0, steps=8, flip=True, pca_jitter=True, checkpoint_every=4,
                         num_threads=1, device="cpu")
        return train_avod(data, data / "training/velodyne", ("000006", "000008"), s, out, progress=False,
                          resume=resume)
    raise ValueError(name)


def weights(name: str, out: Path) -> dict[str, torch.Tensor]:
    """The trained weights an artifact holds."""
    if name == "depth":
        return torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    return torch.load(out / "model.pt", weights_only=False)["state_dict"]


def kill_after_first_checkpoint() -> None:
    """SIGKILL this process right after its first ``checkpoint.pt`` is in place (every trainer
    writes it through ``kitti.fileio.atomic_write_bytes``)."""
    import os
    import signal

    import depth.train
    import engine.checkpoint

    def make(real):
        def write(path, data):
            real(path, data)
            if Path(path).name == "checkpoint.pt":
                os.kill(os.getpid(), signal.SIGKILL)
        return write

    for mod in (engine.checkpoint, depth.train):
        mod.atomic_write_bytes = make(mod.atomic_write_bytes)


if __name__ == "__main__":  # python resume_cases.py NAME DATA OUT [kill|term:STEP]
    name, data, out, how = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    if how == "kill":
        kill_after_first_checkpoint()
    train(name, data, out)
