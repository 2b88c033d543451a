"""The engine's pieces: random states put back from any device, the loop's checkpoint on SIGTERM,
the per-step CSV and its curve, the AMP choice."""

from __future__ import annotations

import csv
import os
import random
import signal

import numpy as np
import pytest
import torch

from engine import (Amp, CheckpointHook, CsvLogHook, TrainerBase, TrainingInterrupted, amp_for, capture_rng,
                    load_checkpoint, restore_rng, save_checkpoint)


class CudaLike:
    """A state read onto a GPU: ``torch.set_rng_state`` refuses it, ``.cpu()`` gives the bytes."""

    def __init__(self, t: torch.Tensor):
        self._t = t

    def cpu(self) -> torch.Tensor:
        return self._t


def _draws(np_gen: np.random.Generator, t_gen: torch.Generator) -> tuple:
    return (torch.rand(3).tolist(), np.random.rand(2).tolist(), random.random(), np_gen.random(2).tolist(),
            torch.rand(2, generator=t_gen).tolist())


def test_restore_rng_puts_back_every_state_even_from_gpu_shaped_tensors(tmp_path):
    g, t = np.random.default_rng(5), torch.Generator().manual_seed(7)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_checkpoint(tmp_path / "ck.pt", {"rng": capture_rng(numpy={"g": g}, torch_gens={"t": t})})
    expected = _draws(g, t)
    _draws(g, t)  # move every generator on
    state = load_checkpoint(tmp_path / "ck.pt")["rng"]
    assert isinstance(state["torch_cpu"], torch.Tensor) and state["torch_cpu"].device.type == "cpu"
    state = {**state, "torch_cpu": CudaLike(state["torch_cpu"]), "torch": {"t": CudaLike(state["torch"]["t"])}}
    with pytest.raises(TypeError):  # what resuming did before: the state passed as it was read
        torch.set_rng_state(state["torch_cpu"])
    restore_rng(state, numpy={"g": g}, torch_gens={"t": t})
    assert _draws(g, t) == expected


class _Counting(TrainerBase):
    """w += step each step; sends itself SIGTERM during step ``term_at`` (1-based)."""

    def __init__(self, max_steps, hooks, term_at=0, step=0):
        super().__init__(max_steps, hooks, step=step)
        self.w, self.term_at = 0, term_at

    def run_step(self):
        self.w += self.step
        if self.step + 1 == self.term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"lr": 0.1, "loss": 10.0 / (self.step + 1)}


def test_sigterm_finishes_the_step_saves_and_raises(tmp_path):
    saved = []
    log = CsvLogHook(tmp_path / "log.csv", ("step", "lr", "loss"), png_path=tmp_path / "curve.png")
    t = _Counting(10, [log, CheckpointHook(lambda tr: saved.append((tr.step, tr.w)), every=4)], term_at=6)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 6 of 10"):
        t.train()
    assert saved == [(4, 0 + 1 + 2 + 3), (6, 15)]  # the periodic one, then the signal's
    assert signal.getsignal(signal.SIGTERM) is before
    assert [r["step"] for r in log.rows] == [1, 2, 3, 4, 5, 6]


def test_a_whole_run_checkpoints_every_n_and_at_the_end_and_writes_log_and_curve(tmp_path):
    saved = []
    log = CsvLogHook(tmp_path / "log.csv", ("step", "lr", "loss"), png_path=tmp_path / "curve.png")
    _Counting(6, [log, CheckpointHook(lambda tr: saved.append(tr.step), every=4)]).train()
    assert saved == [4, 6]
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [(int(r["step"]), float(r["loss"])) for r in rows] == [(s, 10.0 / s) for s in range(1, 7)]
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_amp_is_off_on_the_cpu_unless_asked_and_bf16_when_asked():
    cpu = torch.device("cpu")
    assert amp_for(cpu) == Amp(False, torch.bfloat16, "cpu")
    assert amp_for(cpu, cpu=True) == Amp(True, torch.bfloat16, "cpu")
    assert not amp_for(cpu, cpu=True).scaler().is_enabled()  # bf16 needs no loss scaling
    x = torch.ones(2, 2)
    with amp_for(cpu, cpu=True).autocast():
        assert (x @ x).dtype == torch.bfloat16
    with amp_for(cpu).autocast():
        assert (x @ x).dtype == torch.float32
