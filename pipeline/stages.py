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

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pipeline.cache import Artifact, ArtifactCache, make_key

#: Set in the worker processes of ``execute(jobs > 1)``: the CPU threads each node run beside
#: another may use (``pipeline.chain`` caps the stages' ``num_threads`` settings with it).
worker_threads: int | None = None

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


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
            with a ``pipeline.keys`` function (``pipeline.chain`` does); else the upstream refs
            in ``deps`` order followed by ``raw_inputs``.
        node: the declaring ``pipeline.chain.Node`` (tags), when there is one.
        beside: the node may run in a worker process beside another such node, on its share of
            the cores (``execute(jobs > 1)``); its ``produce`` must then be picklable. Nodes
            whose work scales well over threads (depth and 2D-detector training) leave it False
            and run alone on every core.
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
    beside: bool = field(default=False, compare=False)

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
            planned: Sequence[PlannedStage] | None = None,
            jobs: int = 1, cores: int | None = None) -> dict[str, tuple[Artifact, float]]:
    """Run or reuse every node; returns name -> (artifact, seconds spent here), in ``specs`` order.

    ``extra_manifest`` (e.g. the dataset's identity) is recorded in every manifest written.
    ``planned``: this run's :func:`plan` of ``specs``; its hits are taken without a second check
    (except after a crash, when every hit is re-hashed).

    ``jobs`` > 1: nodes marked ``beside`` whose inputs are ready run up to ``jobs`` at a time,
    each in a ``spawn`` worker process limited to ``cores // jobs`` threads (:data:`worker_threads`);
    any other node runs alone, in this process, on every thread, once the workers are idle. The
    artifacts and keys are those of ``jobs=1``; only float summation order may differ (threads)."""
    with cache.running():
        byname = {p.spec.name: p for p in planned or ()}
        if jobs <= 1 or not any(s.beside for s in specs):
            return _execute(specs, cache, log, extra_manifest, byname)
        return _execute_beside(specs, cache, log, extra_manifest, byname, jobs, cores or _cores())


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _limit_threads(n: int) -> None:
    """Worker initializer: ``n`` CPU threads for torch, numba and BLAS in this process."""
    global worker_threads
    worker_threads = n
    for k in _THREAD_VARS:
        os.environ[k] = str(n)
    import torch

    torch.set_num_threads(n)


def _build_one(spec: StageSpec, cache: ArtifactCache, log: Callable[[str], None],
               extra_manifest: Mapping[str, Any] | None, planned: Mapping[str, PlannedStage],
               done: Mapping[str, Artifact], produce: Callable[[Path, Mapping[str, Artifact]], Any]
               ) -> tuple[Artifact, float]:
    deps = {d: done[d] for d in spec.deps}
    refs = spec.key_inputs([deps[d].ref for d in spec.deps])
    t0 = time.time()
    log(f"[{spec.name}] ...")
    p = planned.get(spec.name)
    art = cache.planned_hit(spec.stage, p.key, p.manifest) if p is not None and p.cached else None
    if art is None:
        art = cache.build(spec.stage, code_version=spec.code_version, settings=spec.settings,
                          inputs=refs, produce=lambda out: produce(out, deps),
                          extra_manifest={"node": spec.name, **dict(extra_manifest or {})})
    dt = time.time() - t0
    log(f"[{spec.name}] {'cached' if art.cached else f'done in {dt:.1f} s'}: {art.path}")
    return art, dt


def _execute(specs: Sequence[StageSpec], cache: ArtifactCache, log: Callable[[str], None],
             extra_manifest: Mapping[str, Any] | None,
             planned: Mapping[str, PlannedStage]) -> dict[str, tuple[Artifact, float]]:
    if cache.after_crash():
        log("(an earlier run or writer died: cached artifacts are verified by hash this time)")
    done: dict[str, Artifact] = {}
    timings: dict[str, tuple[Artifact, float]] = {}
    for spec in specs:
        art, dt = _build_one(spec, cache, log, extra_manifest, planned, done, spec.produce)
        done[spec.name] = art
        timings[spec.name] = (art, dt)
    return timings


def _execute_beside(specs: Sequence[StageSpec], cache: ArtifactCache, log: Callable[[str], None],
                    extra_manifest: Mapping[str, Any] | None, planned: Mapping[str, PlannedStage],
                    jobs: int, cores: int) -> dict[str, tuple[Artifact, float]]:
    """:func:`execute` with ``jobs`` > 1 (see there)."""
    import multiprocessing

    if cache.after_crash():
        log("(an earlier run or writer died: cached artifacts are verified by hash this time)")
    done: dict[str, Artifact] = {}
    timings: dict[str, tuple[Artifact, float]] = {}
    pending = list(specs)
    running: dict[Future, StageSpec] = {}
    error: BaseException | None = None
    procs = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_limit_threads, initargs=(max(1, cores // jobs),))
    threads = ThreadPoolExecutor(max_workers=jobs)

    def remote(spec: StageSpec):
        return lambda out, deps: procs.submit(spec.produce, out, deps).result()

    try:
        while pending or running:
            started = False
            for spec in list(pending):
                if error is not None or not all(d in done for d in spec.deps):
                    continue
                p = planned.get(spec.name)
                if p is not None and p.cached and not cache.after_crash():  # a hit: take it now
                    art, dt = _build_one(spec, cache, log, extra_manifest, planned, done, spec.produce)
                elif not spec.beside:
                    if running:  # runs alone: wait for the workers to drain
                        break
                    art, dt = _build_one(spec, cache, log, extra_manifest, planned, done, spec.produce)
                elif len(running) < jobs:
                    fut = threads.submit(_build_one, spec, cache, log, extra_manifest, planned, dict(done),
                                         remote(spec))
                    running[fut] = spec
                    pending.remove(spec)
                    started = True
                    continue
                else:
                    continue
                done[spec.name] = art
                timings[spec.name] = (art, dt)
                pending.remove(spec)
                started = True
                break  # rescan from the start: the order of specs is the preferred order
            if started:
                continue
            if not running:
                if error is not None:
                    break
                raise RuntimeError("pipeline: no node can run (a dependency is missing from the chain)")
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                spec = running.pop(fut)
                try:
                    art, dt = fut.result()
                except BaseException as e:  # noqa: BLE001 - re-raised once the others finish
                    error = error or e
                    continue
                done[spec.name] = art
                timings[spec.name] = (art, dt)
    finally:
        threads.shutdown(wait=True)
        procs.shutdown(wait=True, cancel_futures=True)
    if error is not None:
        raise error
    return {s.name: timings[s.name] for s in specs if s.name in timings}
