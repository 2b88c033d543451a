"""A tqdm bar as a hook: one tick per step, the step's loss and learning rate beside it."""

from __future__ import annotations

from engine.loop import Hook, TrainerBase


class ProgressHook(Hook):
    """A tqdm bar of ``total`` steps starting at ``initial`` (drawn when ``enabled`` and the output is a terminal); shows
    the row's ``loss_key`` and ``lr``."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str = "train", loss_key: str = "total"):
        from tqdm import tqdm

        from kitti.progress import tqdm_disable

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", disable=tqdm_disable(enabled),
                        dynamic_ncols=True)
        self.loss_key = loss_key

    def after_step(self, trainer: TrainerBase) -> None:
        self.bar.update(1)
        row = trainer.row
        if self.loss_key in row:
            self.bar.set_postfix(loss=f"{float(row[self.loss_key]):.3f}", lr=f"{float(row.get('lr', 0)):.1e}")

    def close(self) -> None:
        self.bar.close()
