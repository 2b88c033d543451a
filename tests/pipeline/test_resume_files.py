"""pipeline.resume: an interrupted or killed training build resumes from its temp folder's
checkpoint, the same way for the four trainers (a stand-in trainer here; tests/engine/test_resume.py
runs the real ones)."""

from __future__ import annotations

import pytest

from pipeline.cache import ArtifactCache, make_key
from pipeline.resume import resumable

SETTINGS = {"steps": 6}


def _build(cache: ArtifactCache, starts: list, *, fail_after: int | None = None, artifact_checkpoint=False):
    """A stand-in training: starts at the step in its resume checkpoint (0 without), writes
    checkpoint.pt each step, raises KeyboardInterrupt after step ``fail_after``."""

    def train(tmp, start):
        starts.append(start)
        step = int(start.read_text()) if start is not None else 0
        while step < SETTINGS["steps"]:
            step += 1
            (tmp / "checkpoint.pt").write_text(str(step))
            if step == fail_after:
                raise KeyboardInterrupt
        (tmp / "model.pt").write_text("weights")
        return {"first_step": int(starts[-1].read_text()) + 1 if starts[-1] else 1}

    def produce(tmp):
        return resumable(tmp, lambda start: train(tmp, start), artifact_checkpoint=artifact_checkpoint)

    return cache.build("toy-train", code_version="1", settings=SETTINGS, inputs=[], produce=produce)


def test_an_interrupted_build_resumes_from_its_checkpoint_and_cleans_up(tmp_path):
    cache, starts = ArtifactCache(tmp_path / "work"), []
    with pytest.raises(KeyboardInterrupt):
        _build(cache, starts, fail_after=2)
    key = make_key("toy-train", "1", SETTINGS, [])
    resume = tmp_path / "work" / "toy-train" / f"{key}.resume.pt"
    assert resume.read_text() == "2"
    art = _build(cache, starts)
    assert starts == [None, resume] and art.manifest["summary"]["first_step"] == 3
    assert not resume.exists()
    assert sorted(p.name for p in art.path.iterdir()) == ["manifest.json", "model.pt"]  # no optimiser state


def test_a_killed_writers_checkpoint_is_kept_when_its_temp_folder_goes(tmp_path):
    cache, starts = ArtifactCache(tmp_path / "work"), []
    key = make_key("toy-train", "1", SETTINGS, [])
    dead = tmp_path / "work" / "toy-train" / f"{key}.tmp-999999999-deadbeef"  # no such process
    dead.mkdir(parents=True)
    (dead / "checkpoint.pt").write_text("4")
    art = _build(cache, starts, artifact_checkpoint=True)
    assert not dead.exists() and art.manifest["summary"]["first_step"] == 5
    assert (art.path / "checkpoint.pt").read_text() == "6"  # depth: the checkpoint is the artifact
