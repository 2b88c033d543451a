"""The chain as cached stages.

::

    data ──► depth-train[baseline, foresee] ──► depth-infer[...] ──┐
      └──────────────────────────────────────► depth-gt (oracle) ──┴► pseudolidar[gt, baseline, foresee]
                                                                      │   (+ the real velodyne: "lidar")
                                                                      ▼
                              detect-train[cloud] ──► detect-infer[cloud] ──► eval[cloud] ──► report

Every stage is a pure function of its inputs' artifacts, its settings and its code version; its
cache key (``pipeline.cache.make_key``) is known before anything runs, so the plan can say what is
cached. Raw data enters through a fingerprint of the files the stage reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pipeline.cache import Artifact, ArtifactCache, make_key


@dataclass(frozen=True)
class StageSpec:
    """One node of the chain.

    Attributes:
        name: unique node name, e.g. ``depth-train/foresee``.
        stage: cache folder (the stage kind), e.g. ``depth-train``.
        code_version: the stage package's ``CODE_VERSION``.
        settings: the frozen settings recorded in the key and the manifest.
        deps: names of upstream nodes whose artifacts this one reads.
        raw_inputs: fingerprints of raw data (``data:<hash>``).
        produce: ``produce(out_dir, deps: Mapping[name, Artifact]) -> summary``.
        est_bytes: rough size of the artifact, for the plan.
        inputs: the complete key inputs (upstream refs included) when the builder computed them
            with a ``pipeline.keys`` function (``pipeline.stages`` does); else the upstream refs
            in ``deps`` order followed by ``raw_inputs``.
        node: the declaring ``pipeline.stages.Node`` (tags), when there is one.
    """

    name: str
    stage: str
    code_version: str
    settings: Any
    deps: tuple[str, ...]
    raw_inputs: tuple[str, ...]
    produce: Callable[[Path, Mapping[str, Artifact]], Mapping[str, Any] | None] = field(compare=False)
    est_bytes: int = 0
    inputs: tuple[str, ...] | None = None
    node: Any = field(default=None, compare=False)

    def key_inputs(self, dep_refs: Sequence[str]) -> list[str]:
        """The key inputs given the refs of ``deps`` (in order)."""
        return list(self.inputs) if self.inputs is not None else list(dep_refs) + list(self.raw_inputs)


@dataclass(frozen=True)
class PlannedStage:
    """A node with its key; ``manifest`` is the cached artifact's (checked by stat) or None."""

    spec: StageSpec
    key: str
    manifest: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def cached(self) -> bool:
        return self.manifest is not None


def plan(specs: Sequence[StageSpec], cache: ArtifactCache) -> list[PlannedStage]:
    """Keys of every node (in the given topological order) and whether each is already cached.

    A cached node whose upstream must run is still reported as cached only when its own key,
    which covers the upstream keys, exists: keys change exactly when inputs change.
    """
    keys: dict[str, str] = {}
    out = []
    for spec in specs:
        refs = spec.key_inputs([f"{_stage_of(specs, d)}/{keys[d]}" for d in spec.deps])
        key = make_key(spec.stage, spec.code_version, spec.settings, refs)
        keys[spec.name] = key
        out.append(PlannedStage(spec, key, cache.stat_verified_manifest(cache.entry_path(spec.stage, key))))
    return out


def _stage_of(specs: Sequence[StageSpec], name: str) -> str:
    for s in specs:
        if s.name == name:
            return s.stage
    raise KeyError(f"unknown dependency {name!r}")


def execute(specs: Sequence[StageSpec], cache: ArtifactCache, *,
            log: Callable[[str], None] = print,
            extra_manifest: Mapping[str, Any] | None = None,
            planned: Sequence[PlannedStage] | None = None) -> dict[str, tuple[Artifact, float]]:
    """Run or reuse every node in order; returns name -> (artifact, seconds spent here).

    ``extra_manifest`` (e.g. the dataset's identity) is recorded in every manifest written.
    ``planned``: this run's :func:`plan` of ``specs``; its hits are taken without a second check
    (except after a crash, when every hit is re-hashed)."""
    with cache.running():
        return _execute(specs, cache, log, extra_manifest, {p.spec.name: p for p in planned or ()})


def _execute(specs: Sequence[StageSpec], cache: ArtifactCache, log: Callable[[str], None],
             extra_manifest: Mapping[str, Any] | None,
             planned: Mapping[str, PlannedStage]) -> dict[str, tuple[Artifact, float]]:
    if cache.after_crash():
        log("(an earlier run or writer died: cached artifacts are verified by hash this time)")
    done: dict[str, Artifact] = {}
    timings: dict[str, tuple[Artifact, float]] = {}
    for spec in specs:
        deps = {d: done[d] for d in spec.deps}
        refs = spec.key_inputs([deps[d].ref for d in spec.deps])
        t0 = time.time()
        log(f"[{spec.name}] ...")
        p = planned.get(spec.name)
        art = cache.planned_hit(spec.stage, p.key, p.manifest) if p is not None and p.cached else None
        if art is None:
            art = cache.build(spec.stage, code_version=spec.code_version, settings=spec.settings,
                              inputs=refs, produce=lambda out, _s=spec, _d=deps: _s.produce(out, _d),
                              extra_manifest={"node": spec.name, **dict(extra_manifest or {})})
        dt = time.time() - t0
        log(f"[{spec.name}] {'cached' if art.cached else f'done in {dt:.1f} s'}: {art.path}")
        done[spec.name] = art
        timings[spec.name] = (art, dt)
    return timings
