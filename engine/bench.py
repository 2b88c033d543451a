"""Per-step CPU overhead of the loop around one optimiser step: a plain loop, ``engine.TrainerBase``
with the hooks the trainers use, and HF accelerate (``Accelerator(cpu=True)``, prepared model,
optimiser and DataLoader, ``accelerator.backward``) when it is importable. A tiny MLP, so that the
step itself is cheap and the overhead shows (docs/training.md)::

    pip install --no-deps --target /tmp/pyaccel accelerate==1.15.0   # the trial only
    PYTHONPATH=.:/tmp/pyaccel python -m engine.bench 2000
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

STEPS = 2000
X = Y = torch.empty(0)


class DS(torch.utils.data.Dataset):
    def __len__(self): return len(X)
    def __getitem__(self, i): return X[i], Y[i]


def parts():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    loader = torch.utils.data.DataLoader(DS(), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    return model, opt, loader


def plain():
    model, opt, loader = parts()
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
    return model


def engine_loop(tmp):
    from engine import CheckpointHook, CsvLogHook, MeanLogHook, TrainerBase
    model, opt, loader = parts()

    class T(TrainerBase):
        def run_step(self):
            if not hasattr(self, "it"): self.it = iter(loader)
            x, y = next(self.it)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            return {"lr": 1e-2, "loss": float(loss.detach())}
    csv = CsvLogHook(Path(tmp) / "log.csv", ("step", "lr", "loss"))
    T(STEPS, [csv, MeanLogHook(Path(tmp) / "log.jsonl", 50, []), CheckpointHook(lambda t: None, 10 ** 9, at_end=False)]).train()
    return model


def accelerate_loop():
    from accelerate import Accelerator
    acc = Accelerator(cpu=True)
    model, opt, loader = acc.prepare(*parts())
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(); acc.backward(loss); opt.step()
        float(loss.detach())
    return model


def main() -> None:
    global STEPS, X, Y
    torch.set_num_threads(1)
    STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(STEPS * 8, 16, generator=g), torch.randn(STEPS * 8, 1, generator=g)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"plain": plain, "engine": lambda: engine_loop(tmp), "accelerate": accelerate_loop}
        try:
            import accelerate  # noqa: F401
        except ImportError:
            del runs["accelerate"]
        for name, fn in runs.items():
            fn()  # warm-up
        for rep in range(3):
            for name, fn in runs.items():
                c = time.process_time(); m = fn(); res.setdefault(name, []).append(time.process_time() - c)
                res.setdefault(name + "_w", m[0].weight.detach().clone() if hasattr(m, "__getitem__") else m.module[0].weight.detach().clone())
        w = {k: res.pop(k + "_w") for k in runs}
    out = {k: round(1e6 * min(v) / STEPS, 1) for k, v in res.items()}
    print(json.dumps({"steps": STEPS, "cpu_us_per_step_min_of_3": out,
                      "same_weights_as_plain": {k: bool(torch.equal(w[k], w["plain"])) for k in w}}))


if __name__ == "__main__":
    main()
