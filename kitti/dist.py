"""Process-group plumbing shared by the stages that scale past one process (torch DDP, shards).

Two ways to split work:

* **torchrun** (``torchrun --nproc_per_node=N ...``) sets ``RANK``, ``LOCAL_RANK`` and
  ``WORLD_SIZE``; training joins a ``torch.distributed`` process group (NCCL on CUDA, gloo on CPU)
  and wraps its network in ``DistributedDataParallel``; sharded inference takes frames by rank.
* **``--shard i/n``** for a scheduler's job array: no process group, shard ``i`` of ``n`` (0-based).

Frames are dealt round-robin (shard ``i`` takes frames ``i, i+n, i+2n, ...``), so the shards'
union is the frame list and every shard gets a similar share. This module imports torch only
inside the functions that need it.
"""

from __future__ import annotations

import datetime

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: expected 0 <= i < n")

    @property
    def is_main(self) -> bool:
        """True for rank / shard 0 (the one that writes the shared outputs)."""
        return self.index == 0

    def take(self, items: Sequence[T]) -> tuple[T, ...]:
        """This shard's items, dealt round-robin.

        >>> Shard(1, 3).take("abcdefg")
        ('b', 'e')
        """
        return tuple(items[self.index::self.count])

    def label(self) -> str:
        """``i-of-n`` (a folder name)."""
        return f"{self.index}-of-{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/n"`` -> :class:`Shard` (ValueError with the expected form otherwise).

    >>> parse_shard("1/4")
    Shard(index=1, count=4)
    """
    left, sep, right = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return Shard(int(left), int(right))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4") from None


def env_shard() -> Shard:
    """The shard of this process under torchrun (``RANK``/``WORLD_SIZE``), else ``0/1``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    return Shard(int(os.environ["RANK"]), world)


def local_rank() -> int:
    """This process's index on its machine under torchrun (``LOCAL_RANK``; 0 otherwise): the CUDA
    device a rank uses, so that N ranks on one machine use its N GPUs."""
    return int(os.environ.get("LOCAL_RANK", "0"))


@dataclass(frozen=True)
class DistContext:
    """Where this training process stands: ``rank`` of ``world`` processes, ``local_rank`` on its
    machine (the CUDA device index), and whether this call created the process group."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> DistContext:
    """Join torchrun's process group (NCCL when ``use_cuda``, else gloo) when ``WORLD_SIZE > 1``.

    A group that already exists (initialised by the caller) is used as it is and left open.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as td

    owns = not td.is_initialized()
    if owns:
        # a long timeout: the ranks meet once more at the end (close_distributed) while rank 0
        # evaluates and writes, which can take longer than the default 30 minutes at KITTI scale
        td.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=6))
    return DistContext(td.get_rank(), local_rank(), td.get_world_size(), owns)


def close_distributed(ctx: DistContext) -> None:
    """Destroy the group if :func:`init_distributed` created it, after a barrier: every rank
    waits there until rank 0 has evaluated and written (the group's timeout is long for that).
    Without it a rank tearing down its gloo connections while a peer still holds them can abort
    ("terminate called without an active exception"), seen on the 2-rank CPU test."""
    if ctx.world > 1 and ctx.owns_group:
        import torch.distributed as td

        td.barrier()
        td.destroy_process_group()


def parse_set_options(items: Sequence[str], known: Sequence[str]) -> dict[str, object]:
    """``FIELD=VALUE`` options of the torchrun entry points -> {field: value}; VALUE is JSON when it
    parses (lists become tuples), else the string. ValueError names an unknown field.

    >>> parse_set_options(["batch_size=8", 'classes=["Car"]', "device=cpu"], ["batch_size", "classes", "device"])
    {'batch_size': 8, 'classes': ('Car',), 'device': 'cpu'}
    """
    import json

    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in known:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {sorted(known)}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value) if isinstance(value, list) else value
    return out


def split_batch(n: int, world: int) -> list[tuple[int, int]]:
    """(start, stop) rows of each rank when a global batch of ``n`` is split over ``world`` ranks
    as evenly as possible (the first ``n % world`` ranks get one more).

    >>> split_batch(7, 3)
    [(0, 3), (3, 5), (5, 7)]
    """
    base, extra = divmod(n, world)
    out, start = [], 0
    for r in range(world):
        stop = start + base + (1 if r < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def entry_parser(doc: str, presets: Sequence[str], *, points: bool = False):
    """The argparse parser of a torchrun training entry: ``--data``, (``--points``), ``--split``,
    ``--preset``, ``--set FIELD=JSON``, ``--out``, ``--resume``, ``--quiet``."""
    import argparse
    from pathlib import Path

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="KITTI root (calib, label_2, image_2).")
    if points:
        p.add_argument("--points", type=Path, required=True, help="Folder of NNNNNN.bin clouds.")
    p.add_argument("--split", default="train")
    p.add_argument("--preset", default="paper", choices=tuple(presets))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=JSON",
                   help="Override a setting of the preset, e.g. --set batch_size=16 --set 'classes=[\"Car\"]'.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resume", type=Path)
    p.add_argument("--quiet", action="store_true")
    return p


def with_overrides(base, items: Sequence[str]):
    """The frozen settings ``base`` with the ``--set`` options ``items`` applied (its class's
    ``from_dict``)."""
    from dataclasses import asdict

    values = asdict(base)
    values.update(parse_set_options(items, list(values)))
    return type(base).from_dict(values)


def run_entry(train) -> None:
    """Run ``train()`` (a torchrun entry's training): bad input exits with ``error: ...``; rank 0
    prints the summary as one JSON line (the other ranks' summaries hold ``rank``)."""
    import json

    from kitti.errors import KittiFormatError

    try:
        summary = train()
    except (KittiFormatError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    if "rank" not in summary:
        print(json.dumps(summary))
