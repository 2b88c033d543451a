"""torchrun on CPU (gloo): two ranks of batch b == one process of batch 2b, and resume across ranks.

F-PointNet v1 on the nine real KITTI frames, tiny network. BatchNorm: SyncBatchNorm needs CUDA, and
with per-rank batch statistics a rank normalises its b rows with other statistics than one process
normalising 2b rows, so the equivalence runs both sides with ``--freeze-batch-norm`` (batch norms in
eval mode). Dropout is 0. What is then left to differ is float summation order (DDP averages two
half-batch gradients; one process differentiates the whole mean), hence the tolerance below
(measured: max |difference| 1.2e-7 after the 4 steps). Four torchrun/python launches: about 75 s
wall (30 s CPU) on a loaded 2-core machine, so the module is marked slow.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SETS = {"width": 0.125, "num_points": 64, "num_object_points": 32, "batch_size": 8, "augment_x": 1,
        "holdout_fraction": 0.0, "dropout": 0.0, "device": "cpu", "num_threads": 1,
        "checkpoint_every_epochs": 1, "max_steps": 0, "learning_rate": 0.002}
#: |w_ddp - w_one| <= ATOL + RTOL |w_one| for every weight after the steps of two epochs
ATOL, RTOL = 1e-6, 1e-5


def _train(sample_root: Path, split: Path, out: Path, *, nproc: int, epochs: int,
           resume: Path | None = None) -> dict:
    args = ["-m", "detection.frustum_pointnet.train", "--data", str(sample_root),
            "--points", str(sample_root / "training/velodyne"), "--split", str(split),
            "--preset", "cpu-small", "--out", str(out), "--quiet", "--freeze-batch-norm",
            *[a for k, v in {**SETS, "epochs": epochs}.items() for a in ("--set", f"{k}={json.dumps(v)}")]]
    if resume is not None:
        args += ["--resume", str(resume)]
    if nproc > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample_root, sample_ids):
    tmp = tmp_path_factory.mktemp("ddp")
    split = tmp / "all.txt"
    split.write_text("\n".join(sample_ids) + "\n")
    one = _train(sample_root, split, tmp / "one", nproc=1, epochs=2)
    two = _train(sample_root, split, tmp / "two", nproc=2, epochs=2)
    half = _train(sample_root, split, tmp / "half", nproc=2, epochs=1)
    ck = torch.load(tmp / "half/checkpoint.pt", weights_only=False)
    ck["settings"]["epochs"] = 2  # the 1-epoch run as the first half of a 2-epoch run
    buf = io.BytesIO()
    torch.save(ck, buf)
    (tmp / "half.pt").write_bytes(buf.getvalue())
    resumed = _train(sample_root, split, tmp / "resumed", nproc=2, epochs=2, resume=tmp / "half.pt")
    return tmp, one, two, half, resumed


def test_two_ranks_of_b_equal_one_process_of_2b(runs):
    tmp, one, two, _, _ = runs
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["effective_batch"] == one["effective_batch"] == 8 and two["batch_per_rank"] == [4, 4]
    assert two["steps"] == one["steps"] >= 4 and two["samples"] == one["samples"]
    w1, w2 = _weights(tmp / "one"), _weights(tmp / "two")
    assert w1.keys() == w2.keys()
    moved = 0
    for name, a in w1.items():
        if not a.is_floating_point():
            continue
        assert torch.allclose(w2[name], a, atol=ATOL, rtol=RTOL), (name, float((w2[name] - a).abs().max()))
        moved += 1
    assert moved > 10
    # the second epoch moved the weights: the comparison is not between two unchanged networks
    init = torch.load(tmp / "half/checkpoint.pt", weights_only=False)["state_dict"]
    assert max(float((w1[k] - init[k]).abs().max()) for k in w1 if w1[k].is_floating_point()) > 1e-3
    log1 = [json.loads(x) for x in (tmp / "one/train_log.jsonl").read_text().splitlines()]
    log2 = [json.loads(x) for x in (tmp / "two/train_log.jsonl").read_text().splitlines()]
    for e1, e2 in zip(log1, log2):  # the log holds the global batch's loss on every world size
        assert e2["total"] == pytest.approx(e1["total"], rel=1e-4)


def test_resumed_ddp_run_continues_identically(runs):
    tmp, _, two, half, resumed = runs
    assert half["steps"] < resumed["steps"] == two["steps"]
    w2, wr = _weights(tmp / "two"), _weights(tmp / "resumed")
    for name, a in w2.items():
        assert torch.equal(wr[name], a), name
    assert (tmp / "resumed/train_log.jsonl").read_text() == (tmp / "two/train_log.jsonl").read_text()


def test_rank0_alone_writes_the_outputs(runs):
    tmp = runs[0]
    assert sorted(p.name for p in (tmp / "two").iterdir()) == ["checkpoint.pt", "model.pt", "summary.json",
                                                                "train_log.csv", "train_log.jsonl",
                                                                "train_loss.png"]
    ck = torch.load(tmp / "two/checkpoint.pt", weights_only=False)
    assert len(ck["rank_rng"]) == 2 and ck["rank_rng"][0]["torch_cpu"].dtype == torch.uint8


def test_depth_training_under_torchrun_resumes(tmp_path):
    """depth.train on two gloo ranks (global batch 2 = 1 per rank): rank 0 writes the checkpoint and
    the log, the summary records the world size; a resumed run continues from the checkpoint's step."""
    sys.path.insert(0, str(REPO / "tests" / "depth"))
    from depth_fixtures import write_synthetic_root

    root = tmp_path / "root"
    ids = write_synthetic_root(root, n_frames=4)
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    sets = {"encoder": "test_resnet", "encoder_weights": "none", "neck_channels": 16, "lateral_channels": [8, 8, 8, 8],
            "decoder_channels": [16, 8, 8, 8, 8], "crop_hw": [32, 64], "resize_factor": 1.0, "scales": [1.0],
            "batch_size": 2, "epochs": 10, "lr": 0.002, "seed": 0, "num_workers": 0}

    def run(out: str, steps: int, *extra: str) -> dict:
        args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                "depth.train", "--data", str(root), "--split", str(tmp_path / "ids.txt"), "--variant", "foresee",
                "--preset", "cpu-small", "--out", str(tmp_path / out), "--quiet", *extra,
                *[a for k, v in {**sets, "max_steps": steps}.items() for a in ("--set", f"{k}={json.dumps(v)}")]]
        done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])

    first = run("a", 2)
    assert first["world_size"] == 2 and first["effective_batch"] == 2 and first["batch_per_rank"] == 1
    assert first["steps"] == 2 and first["frames"] == 4
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["checkpoint.pt", "train_log.csv", "train_loss.png"]
    more = run("b", 3, "--resume", str(tmp_path / "a/checkpoint.pt"))
    assert more["steps"] == 3
    log = (tmp_path / "b/train_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["1", "2", "3"]
    assert log[1:3] == (tmp_path / "a/train_log.csv").read_text().splitlines()[1:3]


@pytest.mark.gpu
def test_fpointnet_resume_on_cuda(tmp_path, sample_root, sample_ids):
    """The CUDA resume bug: RNG states loaded with map_location=cuda broke torch.set_rng_state."""
    from detection.frustum_pointnet.settings import preset
    from detection.frustum_pointnet.train import train_fpointnet

    settings = preset("cpu-small").with_(**{**SETS, "device": "cuda", "epochs": 1})
    train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids, settings, tmp_path / "a",
                    progress=False)
    ck = torch.load(tmp_path / "a/checkpoint.pt", map_location="cpu", weights_only=False)
    ck["settings"]["epochs"] = 2
    buf = io.BytesIO()
    torch.save(ck, buf)
    (tmp_path / "ck.pt").write_bytes(buf.getvalue())
    summary = train_fpointnet(sample_root, sample_root / "training/velodyne", sample_ids,
                              settings.with_(epochs=2), tmp_path / "b", progress=False, resume=tmp_path / "ck.pt")
    assert summary["epochs"] == 2 and summary["device"].startswith("cuda")
