"""Mixed precision: which dtype, and a GradScaler where fp16 needs one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Amp:
    """Autocast settings of a run: ``enabled``, the ``dtype`` and the ``device_type``."""

    enabled: bool
    dtype: torch.dtype
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` with these settings (a no-op context when disabled)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16 on CUDA (bf16 keeps fp32's exponent range)."""
        return torch.amp.GradScaler("cuda", enabled=self.enabled and self.device_type == "cuda"
                                    and self.dtype == torch.float16)


def amp_for(device: torch.device, *, cuda: bool = True, cpu: bool = False) -> Amp:
    """The AMP of a device: on CUDA (when ``cuda``) bf16 where the GPU supports it, else fp16;
    on the CPU bf16 only when ``cpu`` (a setting that asks for it), else off."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Amp(cuda, dtype, "cuda")
    return Amp(cpu, torch.bfloat16, device.type)
