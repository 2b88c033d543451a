"""``foresee detect train|infer|baseline`` through the artifact cache."""

from __future__ import annotations

import re

import pytest
import torch
from click.testing import CliRunner

from pipeline.commands.detect_cmd import detect_group


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_detect_cmd_train_infer_cached(tmp_path, sample_root):
    split = tmp_path / "split.txt"
    split.write_text("000001\n000002\n000003\n000004\n000006\n")
    work = tmp_path / "work"
    common = ["--data", str(sample_root), "--points", str(sample_root / "training/velodyne"),
              "--split", str(split), "--workdir", str(work), "--quiet", "--num-points", "64", "--threads", "1"]
    runner = CliRunner()
    r = runner.invoke(detect_group, ["train", *common, "--epochs", "1", "--batch-size", "4"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ref = re.search(r"(detect-train/[0-9a-f]{16}) \(built\)", r.output).group(1)
    assert (work / ref / "model.pt").is_file()
    again = runner.invoke(detect_group, ["train", *common, "--epochs", "1", "--batch-size", "4"])
    assert f"{ref} (cached)" in again.output

    r = runner.invoke(detect_group, ["infer", *common, "--model", ref, "--boxes2d", "gt"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (work / "detect-infer").glob("*/data/*.txt"))
    assert files == ["000001.txt", "000002.txt", "000003.txt", "000004.txt", "000006.txt"]

    r = runner.invoke(detect_group, ["baseline", *common, "--boxes2d", "simulated"], catch_exceptions=False)
    assert r.exit_code == 0 and "simulated" in r.output


def test_resolve_points_accepts_cache_ref_and_plain_folder(tmp_path, sample_root):
    import shutil

    from kitti.errors import KittiFormatError
    from pipeline.cache import ArtifactCache
    from pipeline.commands.detect_cmd import _resolve_points

    from kitti import KittiRoot

    cache = ArtifactCache(tmp_path / "work")
    root = KittiRoot(sample_root)

    def produce(tmp):
        (tmp / "velodyne").mkdir()
        shutil.copy(sample_root / "training/velodyne/000001.bin", tmp / "velodyne/000001.bin")

    art = cache.build("pseudolidar", code_version="1", settings={}, inputs=[], produce=produce)
    folder, ref = _resolve_points(cache, art.ref, ("000001",), root)
    assert folder == art.path / "velodyne" and ref == art.ref
    folder, ref = _resolve_points(cache, str(sample_root / "training"), ("000001",), root)
    assert folder == sample_root / "training/velodyne" and ref.startswith("points-folder:")
    with pytest.raises(KittiFormatError, match="000009"):
        _resolve_points(cache, str(sample_root / "training/velodyne"), ("000009",), root)
