"""Stage graph: keys known before running, invalidation flows downstream only, resumable runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cache import ArtifactCache
from pipeline.executor import StageSpec, execute, plan


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
