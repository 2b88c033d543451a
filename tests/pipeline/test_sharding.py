"""Sharded stages (``--shard i/n``, torchrun ranks): two shards write the same files, byte for byte,
as one run, into one artifact that exists only when every shard is done."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from kitti import write_depth_npz
from kitti.dist import Shard, parse_shard, split_batch
from pipeline.cache import ArtifactCache
from pipeline.cli import main
from pipeline.sharding import PARTS, merge_summaries

IDS = tuple(f"{i:06d}" for i in range(9))
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("split") / "nine.txt"
    p.write_text("\n".join(IDS) + "\n")
    return p


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def _invoke(args: list[str]) -> str:
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def _sharded_equals_unsharded(tmp_path: Path, stage: str, args: list[str], n: int = 2) -> dict[str, bytes]:
    """Run ``args`` once unsharded and as ``n`` shards (other workdirs); compare the artifacts."""
    _invoke([*args, "--workdir", str(tmp_path / "one")])
    (one,) = [r for r in ArtifactCache(tmp_path / "one").ls() if r["stage"] == stage]
    for i in range(n):
        out = _invoke([*args, "--workdir", str(tmp_path / "many"), "--shard", f"{i}/{n}"])
        rows = [r for r in ArtifactCache(tmp_path / "many").ls() if r["stage"] == stage]
        if i < n - 1:  # incomplete: no artifact yet, only parts
            assert rows == [] and "waiting for shard" in out
            assert (tmp_path / "many" / PARTS / stage).is_dir()
    (many,) = [r for r in ArtifactCache(tmp_path / "many").ls() if r["stage"] == stage]
    assert many["key"] == one["key"] and many["state"] == "done"
    assert not any((tmp_path / "many" / PARTS / stage).iterdir())  # parts removed after the merge
    a, b = _files(Path(one["path"])), _files(Path(many["path"]))
    assert list(a) == list(b) and a == b
    assert ArtifactCache(tmp_path / "many").check(Path(many["path"])) is None
    assert many["summary"]["frames"] == len(IDS) and many["summary"]["shards"] == n
    return a


def test_shard_deals_frames_round_robin():
    parts = [Shard(i, 3).take(IDS) for i in range(3)]
    assert sorted(sum(parts, ())) == list(IDS) and parts[1] == ("000001", "000004", "000007")
    assert parse_shard("2/3") == Shard(2, 3)
    for bad in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError, match="expected i/n"):
            parse_shard(bad)
    assert split_batch(8, 2) == [(0, 4), (4, 8)] and split_batch(5, 3) == [(0, 2), (2, 4), (4, 5)]


def test_merge_summaries_sums_counts_keeps_agreed_strings():
    m = merge_summaries([{"frames": 2, "device": "cpu", "seconds": 1.0, "ok": True},
                         {"frames": 3, "device": "cpu", "seconds": 2.0, "ok": True}])
    assert m["frames"] == 5 and m["device"] == "cpu" and m["shards"] == 2
    assert "seconds" not in m and "ok" not in m and [p["seconds"] for p in m["parts"]] == [1.0, 2.0]


def test_pseudolidar_two_shards_same_bytes(tmp_path, sample_root, split):
    from kitti import KittiRoot

    root = KittiRoot(sample_root)
    depth_dir = tmp_path / "maps"
    for fid in IDS:  # a plausible depth map per frame: nearer towards the image bottom
        h, w = root.image_hw(fid)
        rows = np.arange(h, dtype=np.float32)[:, None]
        depth = np.broadcast_to(80.0 / (1.0 + rows / 20.0) + 2.0 + int(fid), (h, w)).astype(np.float32)
        write_depth_npz(depth_dir / f"{fid}.npz", depth)
    files = _sharded_equals_unsharded(tmp_path, "pseudolidar",
                                      ["pseudolidar", "--data", str(sample_root), "--depth", str(depth_dir),
                                       "--split", str(split), "--preset", "cpu-small", "--workers", "1",
                                       "--quiet"])
    assert sorted(files) == [f"velodyne/{f}.bin" for f in IDS] and all(len(v) > 0 for v in files.values())


def test_detect_infer_two_shards_same_bytes(tmp_path, sample_root, split):
    from detection.frustum_pointnet.infer import build_model, save_model
    from detection.frustum_pointnet.settings import preset

    settings = preset("cpu-small").with_(width=0.125, num_points=64, num_object_points=32, device="cpu",
                                         num_threads=1)
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", build_model(settings), settings)
    files = _sharded_equals_unsharded(
        tmp_path, "detect-infer",
        ["detect", "infer", "--data", str(sample_root), "--points", str(sample_root / "training/velodyne"),
         "--split", str(split), "--model", str(tmp_path / "model.pt"), "--num-points", "64",
         "--boxes2d", "gt", "--threads", "1", "--quiet"])
    assert sorted(files) == [f"data/{f}.txt" for f in IDS]
    assert sum(v.count(b"\n") for v in files.values()) > 5  # boxes were written, not empty files


def test_depth_infer_shards_under_torchrun_env(tmp_path, sample_root, split, monkeypatch):
    """Without --shard, torchrun's RANK / WORLD_SIZE choose the shard."""
    from depth.model import DepthNet, checkpoint_bytes
    from depth.settings import preset

    settings = preset("cpu-small", "foresee", encoder="test_resnet", neck_channels=16,
                      lateral_channels=(8, 8, 8, 8), decoder_channels=(16, 8, 8, 8, 8), resize_factor=0.25)
    torch.manual_seed(0)
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(checkpoint_bytes(DepthNet(settings), settings, step=0, epoch=0))
    args = ["depth", "infer", "--data", str(sample_root), "--split", str(split), "--checkpoint", str(ckpt),
            "--threads", "1", "--quiet"]
    _invoke([*args, "--workdir", str(tmp_path / "one")])
    for rank in (1, 0):  # either order: the last one merges
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        _invoke([*args, "--workdir", str(tmp_path / "many")])
    (one,) = ArtifactCache(tmp_path / "one").ls()
    (many,) = ArtifactCache(tmp_path / "many").ls()
    assert one["key"] == many["key"]
    a, b = _files(Path(one["path"])), _files(Path(many["path"]))
    assert sorted(a) == [f"depth/{f}.npz" for f in IDS] and a == b


def test_cached_train_commands_refuse_torchrun(tmp_path, sample_root, monkeypatch):
    """Under torchrun every rank would publish the artifact; the commands point to the module entries."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    for args, entry in ((["depth", "train", "--data", str(sample_root)], "depth.train"),
                        (["detect", "train", "--data", str(sample_root), "--points", str(sample_root)],
                         "detection.frustum_pointnet.train"),
                        (["detect", "train", "--detector", "avod", "--data", str(sample_root), "--points",
                          str(sample_root)], "detection.avod.train"),
                        (["detect2d", "train", "--data", str(sample_root)], "detect2d.train")):
        r = CliRunner().invoke(main, [*args, "--workdir", str(tmp_path)])
        assert r.exit_code == 2 and f"python -m {entry}" in r.output


def test_doctests_of_the_sharding_modules():
    import doctest

    import kitti.dist
    import pipeline.sharding

    for module in (kitti.dist, pipeline.sharding):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted >= 1, module.__name__
