"""render_dataset: layout, readability by the kitti core and the evaluator, determinism, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from kitti import KittiRoot, check_depth_map
from synth import CODE_VERSION, dataset_is_current, render_dataset
from synth.writer import frame_jobs, template_calibration

_KINDS = ("image_2", "calib", "label_2", "velodyne", "depth_2")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "synth.json"}


def test_render_dataset_layout_read_by_kitti_core(tiny_root, tiny_settings):
    root, summary = tiny_root
    kr = KittiRoot(root)
    train, val = kr.split("train"), kr.split("val")
    assert train == ("000000", "000001") and val == ("000002",)
    kr.check(train + val, _KINDS)
    h, w = tiny_settings.image_hw
    for fid in train + val:
        assert kr.image_hw(fid) == (h, w)
        assert kr.image(fid).shape == (h, w, 3)
        depth = kr.depth(fid)
        check_depth_map(depth, image_hw=(h, w))
        assert (depth > 0).mean() > 0.5  # sky is the only "no data"
        pts = kr.velodyne(fid)
        assert pts.shape[1] == 4 and pts.shape[0] > 1000
        assert np.all((pts[:, 3] >= 0) & (pts[:, 3] <= 1))
        assert np.abs(kr.calib(fid).P2 - template_calibration(tiny_settings.image_scale).P2).max() < 1e-9
        kr.labels(fid)
    meta = json.loads((root / "synth.json").read_text())
    assert meta["code_version"] == CODE_VERSION and meta["summary"]["frames"] == 3
    assert summary["frames"] == 3 and 0 < summary["fg_fraction"] < 1
    assert sum(summary["hist_fg"]) + sum(summary["hist_bg"]) > 0


def test_render_dataset_labels_have_objects(tiny_root):
    root, summary = tiny_root
    kr = KittiRoot(root)
    n = sum(1 for fid in kr.frame_ids() for o in kr.labels(fid) if o.type != "DontCare")
    assert n >= 3
    assert summary["labels"].get("Car", 0) >= 1


def test_render_dataset_is_deterministic(tiny_root, tiny_settings, tmp_path):
    root, _ = tiny_root
    # frame 000000 of a 1-frame render is the same job as in the 2 + 1 render: same bytes
    again = tmp_path / "again"
    render_dataset(again, tiny_settings.with_(frames_train=1, frames_val=0), workers=1, progress=False)
    first = {k: v for k, v in _hashes(root).items() if "000000" in k}
    assert len(first) == 5 and {k: v for k, v in _hashes(again).items() if "000000" in k} == first
    other = tmp_path / "other"
    render_dataset(other, tiny_settings.with_(frames_train=1, frames_val=0, seed=8), workers=1, progress=False)
    assert (other / "training/image_2/000000.png").read_bytes() != (root / "training/image_2/000000.png").read_bytes()


@pytest.mark.slow
def test_render_dataset_same_bytes_with_process_pool(tiny_root, tiny_settings, tmp_path):
    root, _ = tiny_root
    render_dataset(tmp_path / "pool", tiny_settings, workers=2, progress=False)
    assert _hashes(tmp_path / "pool") == _hashes(root)


def test_frame_jobs_val_uses_other_drives(tiny_settings):
    s = tiny_settings.with_(frames_train=45, frames_val=7, frames_per_drive=20)
    jobs = frame_jobs(s)
    assert [j.frame_id for j in jobs] == [f"{i:06d}" for i in range(52)]
    assert {j.drive for j in jobs if j.split == 0} == {0, 1, 2}
    assert all(j.split == 1 for j in jobs[45:])


def test_dataset_is_current_after_render_and_not_after_change(tiny_root, tiny_settings):
    root, _ = tiny_root
    assert dataset_is_current(root, tiny_settings)
    assert not dataset_is_current(root, tiny_settings.with_(seed=99))
    assert not dataset_is_current(root / "missing", tiny_settings)


def test_kitti_eval_reads_synthetic_labels(tiny_root, tmp_path):
    kitti_eval = pytest.importorskip("kitti_eval")
    root, _ = tiny_root
    kr = KittiRoot(root)
    ids = kr.frame_ids()
    det = tmp_path / "det"
    det.mkdir()
    for fid in ids:
        lines = [o.with_(score=0.9).to_line() for o in kr.labels(fid) if o.type != "DontCare"]
        (det / f"{fid}.txt").write_text("".join(line + "\n" for line in lines))
    result = kitti_eval.evaluate_folders(kr.folder("label_2"), det, ids)
    assert result.n_frames == len(ids)


def test_synth_command_renders_then_says_cached(tmp_path):
    from click.testing import CliRunner

    from pipeline.commands.synth_cmd import synth_command

    args = ["--out", str(tmp_path / "cli"), "--frames-train", "1", "--frames-val", "0",
            "--image-scale", "0.25", "--workers", "1", "--quiet"]
    first = CliRunner().invoke(synth_command, args)
    assert first.exit_code == 0, first.output
    assert "synth: 1 frames" in first.output
    second = CliRunner().invoke(synth_command, args)
    assert second.exit_code == 0 and "cached" in second.output
    bad = CliRunner().invoke(synth_command, args + ["--image-scale", "9"])
    assert bad.exit_code != 0


def test_figures_from_root_writes_montage_and_histograms(tiny_root, tmp_path):
    from synth.figures import figures_from_root

    root, _ = tiny_root
    figures_from_root(root, tmp_path, ["000000", "000002"])
    for name in ("synth_montage.png", "synth_depth_hist.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
