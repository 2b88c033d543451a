"""Stage graph: keys known before running, invalidation flows downstream only, resumable runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cache import ArtifactCache
from pipeline.stages import StageSpec, execute, plan


def _chain(calls: list[str], max_height: float = 1.0, fail_at: str | None = None) -> list[StageSpec]:
    def make(name: str):
        def produce(out: Path, deps):
            calls.append(name)
            if name == fail_at:
                raise KeyboardInterrupt
            text = name + "".join((d.path / "out.txt").read_text() for d in deps.values())
            (out / "out.txt").write_text(text)
            return {"n": len(text)}
        return produce

    return [
        StageSpec("depth", "depth", "1", {"variant": "foresee"}, (), ("data:abc",), make("depth")),
        StageSpec("depth-gt", "depth-gt", "1", {}, (), ("data:abc",), make("depth-gt")),
        StageSpec("pl", "pseudolidar", "1", {"max_height_m": max_height}, ("depth",), (), make("pl")),
        StageSpec("det", "detect", "1", {}, ("pl",), (), make("det")),
        StageSpec("eval", "eval", "1", {}, ("det",), ("data:lbl",), make("eval")),
    ]


def test_plan_keys_match_executed_keys(tmp_path):
    cache = ArtifactCache(tmp_path)
    specs = _chain([])
    before = plan(specs, cache)
    assert not any(p.cached for p in before)
    results = execute(specs, cache, log=lambda s: None)
    after = plan(specs, cache)
    assert all(p.cached for p in after)
    assert [p.key for p in before] == [results[p.spec.name][0].key for p in before]


def test_changing_height_filter_reruns_pseudolidar_and_downstream_only(tmp_path):
    cache = ArtifactCache(tmp_path)
    execute(_chain([]), cache, log=lambda s: None)
    calls: list[str] = []
    specs = _chain(calls, max_height=2.0)
    assert [p.spec.name for p in plan(specs, cache) if not p.cached] == ["pl", "det", "eval"]
    execute(specs, cache, log=lambda s: None)
    assert calls == ["pl", "det", "eval"]


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        execute(_chain(calls, fail_at="det"), cache, log=lambda s: None)
    assert calls == ["depth", "depth-gt", "pl", "det"]
    assert [r["state"] for r in cache.ls()] == ["done"] * 3  # nothing half-written kept
    calls.clear()
    execute(_chain(calls), cache, log=lambda s: None)
    assert calls == ["det", "eval"]


def test_a_cached_run_checks_each_artifact_once(tmp_path, monkeypatch):
    """plan checks every hit (stat); execute takes the plan's hits without checking them again."""
    cache = ArtifactCache(tmp_path)
    execute(_chain([]), cache, log=lambda s: None)
    checked: list[Path] = []
    real = ArtifactCache._checked
    monkeypatch.setattr(ArtifactCache, "_checked", lambda self, p, v: checked.append(p) or real(self, p, v))
    specs = _chain([])
    planned = plan(specs, ArtifactCache(tmp_path))
    assert len(checked) == len(specs) and all(p.cached for p in planned)
    results = execute(specs, ArtifactCache(tmp_path), log=lambda s: None, planned=planned)
    assert len(checked) == len(specs) and all(a.cached for a, _ in results.values())
    # after a crash the plan is not trusted: every hit is checked again, by hash
    (tmp_path / ".runs").mkdir(exist_ok=True)
    (tmp_path / ".runs" / "999999999").write_text("")
    checked.clear()
    execute(specs, ArtifactCache(tmp_path), log=lambda s: None, planned=planned)
    assert len(checked) == len(specs)


# ------------------------------------------------------------------ jobs > 1: nodes run beside
# produce functions at module level: a worker process (spawn) unpickles them by name
def _timed(name: str, seconds: float, out: Path, deps) -> dict:
    import os
    import time

    from pipeline import stages

    t0 = time.time()
    time.sleep(seconds)
    text = name + "".join((d.path / "out.txt").read_text() for d in sorted(deps.values(), key=lambda a: a.stage))
    (out / "out.txt").write_text(text)
    (out / "ran.json").write_text(__import__("json").dumps(
        {"pid": os.getpid(), "threads": stages.worker_threads, "t0": t0, "t1": time.time()}))
    return {"n": len(text)}


def _fails(out: Path, deps) -> dict:
    raise ValueError("detector exploded on frame 000007")


def _beside_chain(fail: bool = False) -> list[StageSpec]:
    from functools import partial

    return [
        StageSpec("depth", "depth", "1", {}, (), ("data:abc",), partial(_timed, "depth", 0.0)),
        StageSpec("det/a", "detect", "1", {"c": "a"}, ("depth",), (), partial(_timed, "a", 1.0), beside=True),
        StageSpec("det/b", "detect", "1", {"c": "b"}, ("depth",), (), _fails if fail else partial(_timed, "b", 1.0),
                  beside=True),
        StageSpec("det/c", "detect", "1", {"c": "c"}, (), ("data:abc",), partial(_timed, "c", 0.2), beside=True),
        StageSpec("report", "eval", "1", {}, ("det/a", "det/b", "det/c"), (), partial(_timed, "report", 0.0)),
    ]


def test_jobs_run_beside_nodes_two_at_a_time_in_workers_and_the_rest_alone(tmp_path):
    import json
    import os

    one = execute(_beside_chain(), ArtifactCache(tmp_path / "one"), log=lambda s: None)
    two = execute(_beside_chain(), ArtifactCache(tmp_path / "two"), log=lambda s: None, jobs=2, cores=4)
    assert list(two) == list(one)  # every node, in the chain's order
    for name in one:  # same keys and the same files as one job
        assert two[name][0].key == one[name][0].key, name
        assert (two[name][0].path / "out.txt").read_text() == (one[name][0].path / "out.txt").read_text()
    ran = {name: json.loads((art.path / "ran.json").read_text()) for name, (art, _) in two.items()}
    for name in ("depth", "report"):  # alone, in this process, all threads
        assert ran[name]["pid"] == os.getpid() and ran[name]["threads"] is None
    for name in ("det/a", "det/b", "det/c"):  # in a worker, on cores / jobs threads
        assert ran[name]["pid"] != os.getpid() and ran[name]["threads"] == 2
    a, b = ran["det/a"], ran["det/b"]
    assert a["t0"] < b["t1"] and b["t0"] < a["t1"]  # a and b overlapped
    assert ran["depth"]["t1"] <= min(r["t0"] for r in (a, b)) and ran["report"]["t0"] >= max(a["t1"], b["t1"])
    # a second run finds everything cached, jobs or not
    again = execute(_beside_chain(), ArtifactCache(tmp_path / "two"), log=lambda s: None, jobs=2, cores=4)
    assert all(art.cached for art, _ in again.values())


def test_jobs_a_failing_worker_node_raises_its_error_after_the_others_finish(tmp_path):
    cache = ArtifactCache(tmp_path)
    with pytest.raises(ValueError, match="exploded on frame 000007"):
        execute(_beside_chain(fail=True), cache, log=lambda s: None, jobs=2, cores=2)
    built = {r["label"] for r in cache.ls()}
    assert {"depth", "det/a"} <= built and "det/b" not in built and "report" not in built
    assert not list((tmp_path / "detect").glob("*.tmp-*"))  # nothing half-written left
