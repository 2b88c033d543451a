"""Every random state of a training process, captured as CPU objects and put back.

``torch.set_rng_state`` and ``torch.Generator.set_state`` accept CPU byte tensors only; a
checkpoint read with ``map_location=<cuda device>`` hands them CUDA tensors and resuming fails with
``TypeError: RNG state must be a torch.ByteTensor``. :func:`restore_rng` therefore takes ``.cpu()``
of every state whatever device it was read to, and :func:`capture_rng` stores CPU tensors only.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

import numpy as np
import torch


def _cpu(state: Any) -> torch.Tensor:
    """A byte tensor on the CPU from a state read onto any device (anything with ``.cpu()``)."""
    return state.cpu() if hasattr(state, "cpu") else torch.as_tensor(state, dtype=torch.uint8)


def capture_rng(*, numpy: Mapping[str, np.random.Generator] | None = None,
                torch_gens: Mapping[str, torch.Generator] | None = None,
                cuda: bool | None = None) -> dict:
    """The global states (torch CPU, torch CUDA when initialised or ``cuda``, NumPy's legacy
    global, Python's ``random``) and the named generators' states, as CPU objects."""
    use_cuda = torch.cuda.is_available() and torch.cuda.is_initialized() if cuda is None else cuda
    return {"torch_cpu": torch.get_rng_state(),
            "torch_cuda": [s.cpu() for s in torch.cuda.get_rng_state_all()] if use_cuda else None,
            "numpy_global": np.random.get_state(),
            "python": random.getstate(),
            "numpy": {k: g.bit_generator.state for k, g in (numpy or {}).items()},
            "torch": {k: g.get_state() for k, g in (torch_gens or {}).items()}}


def restore_rng(state: Mapping, *, numpy: Mapping[str, np.random.Generator] | None = None,
                torch_gens: Mapping[str, torch.Generator] | None = None) -> None:
    """Put back what :func:`capture_rng` captured; works whatever device the tensors were read to.

    Raises:
        KeyError: a named generator missing from ``state``.
    """
    torch.set_rng_state(_cpu(state["torch_cpu"]))
    if state.get("torch_cuda") is not None and torch.cuda.is_available():
        cuda_states = [_cpu(s) for s in state["torch_cuda"]]
        for i, s in enumerate(cuda_states[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    if state.get("numpy_global") is not None:
        np.random.set_state(state["numpy_global"])
    if state.get("python") is not None:
        random.setstate(state["python"])
    for k, g in (numpy or {}).items():
        g.bit_generator.state = state["numpy"][k]
    for k, g in (torch_gens or {}).items():
        g.set_state(_cpu(state["torch"][k]))
