"""The step loop and its hooks, in the style of detectron2's ``TrainerBase``.

A trainer subclasses :class:`TrainerBase` and writes :meth:`~TrainerBase.run_step` (one optimiser
step on its own batch; it returns the step's figures for the log, or ``None`` when it skipped the
batch without stepping). The loop counts steps and calls the hooks:

* :class:`CsvLogHook` — one row per step in ``train_log.csv`` (rewritten atomically with every
  checkpoint and at the end) and the loss curve ``train_loss.png``;
* :class:`CheckpointHook` — the trainer's checkpoint every ``every`` steps, at the last step, and
  when SIGTERM or SIGINT arrives (the loop finishes the step it is in, saves, and raises
  :class:`TrainingInterrupted`). A run killed without a signal (SIGKILL, power) resumes from the
  last periodic checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import signal
import threading
from pathlib import Path
from typing import Callable, Iterator, Sequence

from kitti.fileio import atomic_write_bytes, atomic_write_text


class TrainingInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGINT arrived; the checkpoint of the last finished step was written first."""


class Hook:
    """A hook of :class:`TrainerBase`; every method is optional."""

    def before_train(self, trainer: "TrainerBase") -> None:
        pass

    def after_step(self, trainer: "TrainerBase") -> None:
        pass

    def on_interrupt(self, trainer: "TrainerBase") -> None:
        pass

    def after_train(self, trainer: "TrainerBase") -> None:
        pass


class TrainerBase:
    """Runs :meth:`run_step` until ``max_steps`` steps are done, calling the hooks.

    Attributes:
        step: steps done (restored from a checkpoint by the subclass before :meth:`train`).
        max_steps: where training stops.
        row: the figures of the last step (what :meth:`run_step` returned).
        is_main: whether this process writes (rank 0).
    """

    def __init__(self, max_steps: int, hooks: Sequence[Hook] = (), *, step: int = 0, is_main: bool = True):
        self.max_steps = int(max_steps)
        self.step = int(step)
        self.hooks = list(hooks)
        self.row: dict = {}
        self.is_main = is_main

    def run_step(self) -> dict | None:
        """One optimiser step; its figures for the log, or ``None`` when nothing was stepped."""
        raise NotImplementedError

    def train(self) -> None:
        """The loop (see the module doc). Raises :class:`TrainingInterrupted` after a signal."""
        with _signals_caught() as caught:
            for h in self.hooks:
                h.before_train(self)
            while self.step < self.max_steps:
                row = self.run_step()
                if row is None:
                    continue
                self.step += 1
                self.row = row
                for h in self.hooks:
                    h.after_step(self)
                if _agreed(bool(caught)) and self.step < self.max_steps:
                    for h in self.hooks:
                        h.on_interrupt(self)
                    name = signal.Signals(caught[0]).name if caught else "a signal on another rank"
                    raise TrainingInterrupted(f"{name} at step {self.step} of {self.max_steps}: "
                                              "checkpoint written, the same command resumes")
            for h in self.hooks:
                h.after_train(self)


def _agreed(stop: bool) -> bool:
    """Whether any rank of a torchrun process group caught a signal (every rank stops after the
    same step, so that a checkpoint that gathers from all ranks can be written); ``stop`` alone
    without a group."""
    import torch.distributed as td

    if not (td.is_available() and td.is_initialized()) or td.get_world_size() == 1:
        return stop
    import torch

    flag = torch.tensor([1.0 if stop else 0.0])
    if td.get_backend() == "nccl":
        flag = flag.cuda()
    td.all_reduce(flag, op=td.ReduceOp.MAX)
    return bool(flag.item())


@contextlib.contextmanager
def _signals_caught() -> Iterator[list[int]]:
    """Within: SIGTERM and SIGINT are noted in the yielded list (a second one interrupts at once);
    outside the main thread nothing is caught."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def note(signum, frame):
        if caught:
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} twice")
        caught.append(signum)

    before = {s: signal.signal(s, note) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield caught
    finally:
        for s, h in before.items():
            signal.signal(s, h)


class CheckpointHook(Hook):
    """Calls ``save(trainer)`` every ``every`` steps (0: never periodically), at the last step
    (unless not ``at_end``: a trainer that saves at its own epoch ends) and on a signal; only on the
    main process unless ``all_ranks`` (a save that gathers from every rank must run on all of them)."""

    def __init__(self, save: Callable[["TrainerBase"], None], every: int, *, all_ranks: bool = False,
                 at_end: bool = True):
        self.save, self.every, self.all_ranks, self.at_end = save, int(every), all_ranks, at_end

    def _save(self, trainer: TrainerBase) -> None:
        if trainer.is_main or self.all_ranks:
            self.save(trainer)

    def after_step(self, trainer: TrainerBase) -> None:
        if (self.every and trainer.step % self.every == 0) or (self.at_end and trainer.step == trainer.max_steps):
            self._save(trainer)

    def on_interrupt(self, trainer: TrainerBase) -> None:
        if not (self.every and trainer.step % self.every == 0):
            self._save(trainer)


class SnapshotHook(Hook):
    """Calls ``save(trainer)`` right after each step of ``steps`` (main process only): copies of a
    training at chosen steps, kept beside the rolling checkpoint (one training read at several
    lengths, e.g. a depth-power curve). A step already passed when a run resumes is not redone."""

    def __init__(self, save: Callable[["TrainerBase"], None], steps: Sequence[int]):
        self.save, self.steps = save, frozenset(int(s) for s in steps)

    def after_step(self, trainer: TrainerBase) -> None:
        if trainer.step in self.steps and trainer.is_main:
            self.save(trainer)


class CsvLogHook(Hook):
    """One row per step (``{"step": n, **trainer.row}``) in ``rows``; writes ``csv_path`` and the
    curve ``png_path`` of the ``curve`` columns with :meth:`write` (call it where the trainer
    checkpoints, so the log and the checkpoint agree) and after training.

    ``rows`` is the list to extend: a resumed run passes the rows of its checkpoint.
    """

    def __init__(self, csv_path: Path, fields: Sequence[str], rows: list[dict] | None = None, *,
                 png_path: Path | None = None, curve: Sequence[str] = ("loss",), title: str = ""):
        self.csv_path, self.fields = Path(csv_path), list(fields)
        self.rows = rows if rows is not None else []
        self.png_path, self.curve, self.title = png_path, tuple(curve), title

    def after_step(self, trainer: TrainerBase) -> None:
        self.rows.append({"step": trainer.step, **trainer.row})

    def write(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.csv_path, buf.getvalue())

    def after_train(self, trainer: TrainerBase) -> None:
        if trainer.is_main:
            self.write()
            if self.png_path is not None:
                write_curve(self.png_path, self.rows, self.curve, self.title)


def write_curve(path: Path, rows: Sequence[dict], columns: Sequence[str], title: str = "") -> None:
    """A PNG of ``columns`` against ``step`` (each step's value, light, and its running mean over
    a 1 % window, dark), written atomically; nothing when there are no rows."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.array([float(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    window = max(1, len(rows) // 100)
    for col in columns:
        y = np.array([float(r.get(col, "nan")) for r in rows])
        line, = ax.plot(steps, y, alpha=0.3, lw=0.8)
        if window > 1:
            y = np.convolve(y, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], y, color=line.get_color(), lw=1.4, label=f"{col} (mean of {window})")
        else:
            line.set_alpha(1.0)
            line.set_label(col)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


class MeanLogHook(Hook):
    """``log``: every ``every`` steps (and at the last step) one entry ``{"step", "lr", means of the
    rows' other figures}`` (``digits``: rounded), written to the JSON-lines file ``path``.

    ``sums`` (the partial means since the last entry) go into a checkpoint with :meth:`state` and
    come back with ``MeanLogHook(..., state=...)``, so a resumed run logs what the whole one logs.
    """

    def __init__(self, path: Path, every: int, log: list[dict], *, digits: int | None = None,
                 state: dict | None = None):
        self.path, self.every, self.log, self.digits = Path(path), int(every), log, digits
        self.sums: dict[str, float] = dict((state or {}).get("sums", {}))
        self.n = int((state or {}).get("n", 0))

    def state(self) -> dict:
        return {"sums": dict(self.sums), "n": self.n}

    def after_step(self, trainer: TrainerBase) -> None:
        for k, v in trainer.row.items():
            if k != "lr":
                self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1
        if trainer.step % self.every == 0 or trainer.step == trainer.max_steps:
            means = {k: v / self.n for k, v in self.sums.items()}
            if self.digits is not None:
                means = {k: round(v, self.digits) for k, v in means.items()}
            self.log.append({"step": trainer.step, "lr": trainer.row["lr"], **means})
            self.sums, self.n = {}, 0
            if trainer.is_main:
                self.write()

    def write(self) -> None:
        import json

        atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in self.log))
