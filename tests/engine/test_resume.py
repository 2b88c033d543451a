"""Resume, for each of the four trainers: a run SIGKILLed right after its first checkpoint, resumed
from that checkpoint, ends with the weights of an uninterrupted run, bit for bit (CPU); and the
same resume works when the checkpoint's random states are not CPU tensors (what ``torch.load``
with ``map_location=<cuda device>`` hands over, mimicked on the CPU), which used to raise
``TypeError: RNG state must be a torch.ByteTensor`` in detect2d and AVOD.

Eight trainings and four killed subprocesses: about 2 CPU minutes, so the module is marked slow
(``make test-slow``); tests/engine/test_engine.py holds the fast checks of the same pieces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resume_cases import FIRST_CHECKPOINT, NAMES, make_data, train, weights

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=NAMES)
def killed(request, tmp_path_factory):
    """(name, data root, weights of an uninterrupted run, checkpoint of a SIGKILLed run)."""
    name = request.param
    base = tmp_path_factory.mktemp(name)
    data = make_data(name, base)
    before = torch.get_num_threads()
    train(name, data, base / "whole")
    torch.set_num_threads(before)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "resume_cases.py"), name, str(data), str(base / "cut"), "kill"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return name, data, weights(name, base / "whole"), base / "cut" / "checkpoint.pt"


def _step_of(name: str, ck: dict) -> int:
    return ck["steps"] if name == "fpointnet" else ck["step"]


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sigkill_then_resume_gives_the_uninterrupted_weights(killed, tmp_path):
    name, data, whole, ck = killed
    assert _step_of(name, torch.load(ck, weights_only=False)) == FIRST_CHECKPOINT[name]
    train(name, data, tmp_path / "resumed", resume=ck)
    _assert_same(whole, weights(name, tmp_path / "resumed"))
    if name == "avod":  # every visited frame's ground plane, also those visited before the kill
        planes = {p.name: p.read_text() for p in (ck.parents[1] / "whole" / "planes").iterdir()}
        assert planes and planes == {p.name: p.read_text() for p in (tmp_path / "resumed" / "planes").iterdir()}


class CudaLike:
    """Stands for a tensor on a GPU: not a CPU ByteTensor (``torch.set_rng_state`` refuses it),
    but ``.cpu()`` gives one, as for a real CUDA tensor."""

    def __init__(self, t: torch.Tensor):
        self._t, self.device = t, torch.device("cuda", 0)

    def cpu(self) -> torch.Tensor:
        return self._t


def _on_gpu(obj):
    if isinstance(obj, torch.Tensor) and obj.dtype == torch.uint8:
        return CudaLike(obj)
    if isinstance(obj, dict):
        return {k: _on_gpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_on_gpu(v) for v in obj]
    return obj


def test_resume_from_random_states_read_to_a_gpu(killed, tmp_path, monkeypatch):
    name, data, whole, ck = killed
    real = torch.load

    def load_to_gpu(*args, **kwargs):
        return _on_gpu(real(*args, **kwargs))

    monkeypatch.setattr(torch, "load", load_to_gpu)
    train(name, data, tmp_path / "resumed", resume=ck)
    monkeypatch.setattr(torch, "load", real)
    _assert_same(whole, weights(name, tmp_path / "resumed"))
