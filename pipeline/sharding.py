"""Per-frame stages split over shards (``--shard i/n`` or torchrun ranks), one artifact in the end.

A sharded stage has the cache key of the unsharded one (the shard count is no setting). Shard
``i`` of ``n`` writes its frames (``kitti.dist.Shard.take``: frames ``i, i+n, ...``) as a *part*,
itself an artifact built with the cache's protocol (temporary folder, manifest, rename) under::

    <workdir>/.parts/<stage>/<key>/<i>-of-<n>/<part key>/

After writing its part, a shard looks for all ``n`` parts; the shard that finds them all (the last
to finish; two finishing together both may, and the cache keeps one) merges them: every part's
files are hard-linked (copied across file systems) into one new artifact ``<stage>/<key>/``, whose
manifest is written last, so the artifact exists only when every shard is complete. The parts are
then removed. A shard run again after its part exists reuses it (a failed job of an array is
rerun alone). Files written per frame are the same bytes whichever shard wrote them, so the merged
artifact equals the unsharded one file for file (tests/pipeline/test_sharding.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kitti.dist import Shard, env_shard
from pipeline.cache import Artifact, ArtifactCache, CacheError, make_key

PARTS = ".parts"

#: writes the artifact files of the given frames into the folder; returns summary figures
Produce = Callable[[Path, tuple[str, ...]], Mapping[str, Any] | None]


def shard_option(f):
    """``--shard i/n`` for a stage command (default: torchrun's RANK/WORLD_SIZE, else unsharded)."""
    import click

    def parse(ctx, param, value):
        if value is None:
            return None
        from kitti.dist import parse_shard

        try:
            return parse_shard(value)
        except ValueError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None

    return click.option("--shard", callback=parse, default=None, metavar="I/N",
                        help="Write shard I of N of the frames (0-based; a job array's index); the "
                             "artifact appears when every shard is done. Default under torchrun: "
                             "RANK/WORLD_SIZE.")(f)


def merge_summaries(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The merged artifact's summary: integer figures (frames, boxes, ...) summed over the parts,
    strings every part agrees on kept, ``shards`` = their number, every part's own summary under ``parts``.

    >>> merge_summaries([{"frames": 2, "seconds": 1.5}, {"frames": 3, "seconds": 2.0}])["frames"]
    5
    """
    merged: dict[str, Any] = {"shards": len(parts)}
    for key in parts[0] if parts else ():
        values = [p.get(key) for p in parts]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            merged[key] = sum(values)
        elif all(isinstance(v, str) and v == values[0] for v in values):
            merged[key] = values[0]  # the same on every shard (device, variant, source, ...)
    merged["parts"] = [dict(p) for p in parts]
    return merged


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_sharded(cache: ArtifactCache, stage: str, *, code_version: str, settings: Any,
                  inputs: Sequence[str], frame_ids: Sequence[str], produce: Produce,
                  shard: Shard | None = None, extra_manifest: Mapping[str, Any] | None = None
                  ) -> tuple[Artifact | None, str]:
    """Build (or find) the stage's artifact, or this shard's part of it.

    Args:
        cache: the artifact cache.
        stage, code_version, settings, inputs, extra_manifest: as :meth:`ArtifactCache.build`.
        frame_ids: every frame of the artifact.
        produce: writes the files of the frames it is given into the folder it is given.
        shard: this process's shard; None = torchrun's rank (:func:`kitti.dist.env_shard`).

    Returns:
        (the artifact, or None while other shards are missing; a one-line status).
    """
    shard = env_shard() if shard is None else shard
    frame_ids = tuple(frame_ids)
    if shard.count == 1:
        art = cache.build(stage, code_version=code_version, settings=settings, inputs=inputs,
                          produce=lambda tmp: produce(tmp, frame_ids), extra_manifest=extra_manifest)
        return art, "complete"
    key = make_key(stage, code_version, settings, inputs)
    hit = cache.lookup(stage, key)
    if hit is not None:
        return hit, "complete (cached)"
    parts_root = cache.workdir / PARTS / stage / key
    parts = ArtifactCache(parts_root, verify=cache.verify)

    def part_key(i: int) -> tuple[str, str, list[str]]:
        label = Shard(i, shard.count).label()
        part_inputs = [*inputs, f"shard:{label}"]
        return label, make_key(label, code_version, settings, part_inputs), part_inputs

    label, _, part_inputs = part_key(shard.index)
    mine = shard.take(frame_ids)
    parts.build(label, code_version=code_version, settings=settings, inputs=part_inputs,
                produce=lambda tmp: {**dict(produce(tmp, mine) or {}), "frames": len(mine)})
    found = []
    for i in range(shard.count):
        lab, k, _ = part_key(i)
        part = parts.lookup(lab, k)
        if part is None:
            return None, (f"shard {shard.index}/{shard.count} written ({len(mine)} frames) under "
                          f"{parts_root}; waiting for shard {i} (and any after it)")
        found.append(part)

    def merge(tmp: Path) -> dict[str, Any]:
        for part in found:
            for rel in part.manifest["files"]:
                if (tmp / rel).exists():
                    raise CacheError(f"{part.path / rel}: written by two shards")
                _link_or_copy(part.path / rel, tmp / rel)
        return merge_summaries([p.manifest.get("summary", {}) for p in found])

    try:
        art = cache.build(stage, code_version=code_version, settings=settings, inputs=inputs,
                          produce=merge, extra_manifest=extra_manifest)
    except (OSError, CacheError):
        art = cache.lookup(stage, key)  # another shard merged first and removed the parts
        if art is None:
            raise
    shutil.rmtree(parts_root, ignore_errors=True)
    return art, f"complete: {shard.count} shards merged"
