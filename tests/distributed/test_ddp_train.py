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


#: gloo's teardown at the end of a torchrun job sometimes aborts a rank after the work is done and
#: the outputs are written ("terminate called without an active exception", seen about once in ten
#: 2-rank runs on a loaded 2-core machine; kitti.dist.close_distributed's barrier makes it rarer, not
#: impossible). These tests guard the training's results, not that teardown: such a run is made
#: again once from an empty output folder (docs/scaling.md says so).
_GLOO_TEARDOWN = "terminate called without an active exception"


def _run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    """``cmd`` (a python / torchrun command with ``--out DIR``), once more after a gloo teardown abort."""
    import shutil

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and _GLOO_TEARDOWN in done.stderr and "--out" in cmd:
        shutil.rmtree(cmd[cmd.index("--out") + 1], ignore_errors=True)
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return done


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
    done = _run([sys.executable, *args], env)
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
        done = _run(args, {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
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


def _torchrun(module: str, args: list[str], sets: dict, *, nproc: int, extra_path: str = "") -> dict:
    """``python -m module`` (``nproc`` > 1: under torchrun, gloo) -> the summary rank 0 prints."""
    cmd = [*args, "--quiet", *[a for k, v in sets.items() for a in ("--set", f"{k}={json.dumps(v)}")]]
    head = ["-m", module] if nproc == 1 else ["-m", "torch.distributed.run", "--standalone",
                                              f"--nproc_per_node={nproc}", "-m", module]
    env = {**os.environ, "PYTHONPATH": str(REPO) + extra_path, "OMP_NUM_THREADS": "1"}
    done = _run([sys.executable, *head, *cmd], env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def _assert_close_weights(one: dict, two: dict, *, skip=("running_mean", "running_var", "num_batches_tracked")) -> int:
    """Every floating parameter of ``two`` within ATOL + RTOL |w| of ``one``; returns how many were compared."""
    assert one.keys() == two.keys()
    n = 0
    for name, a in one.items():
        if not a.is_floating_point() or name.endswith(skip):
            continue
        assert torch.allclose(two[name], a, atol=ATOL, rtol=RTOL), (name, float((two[name] - a).abs().max()))
        n += 1
    return n


def test_detect2d_two_ranks_equal_one_process_of_the_global_batch(tmp_path):
    """The 2D detector on two gloo ranks (global batch 2 = 1 image per rank) vs one process of
    batch 2: RetinaNet's losses are means over images and the encoder's batch norms are frozen
    (per-rank statistics would differ on the CPU, where SyncBatchNorm does not exist), so the two
    differ only by float summation order. Rank 0 alone writes; the log holds the global batch's loss."""
    sys.path.insert(0, str(REPO / "tests" / "detect2d"))
    from d2d_fixtures import write_root

    root = write_root(tmp_path / "root")
    (tmp_path / "ids.txt").write_text("000000\n000001\n000002\n000003\n")
    sets = {"architecture": "retinanet", "encoder": "test_resnet", "encoder_weights": "none", "image_scale": 1.0,
            "extra_levels": 0, "anchor_base_px": 32.0, "fpn_channels": 16, "batch_size": 2, "max_steps": 4,
            "warmup_steps": 1, "learning_rate": 0.002, "checkpoint_every_steps": 2, "classes": ["Car", "Pedestrian"],
            "freeze_encoder_bn": True, "feature_levels": [2, 3, 4], "freeze_encoder_stride": 0,
            "device": "cpu", "num_threads": 1, "train_crop_width": 256}
    args = ["--data", str(root), "--split", str(tmp_path / "ids.txt"), "--preset", "cpu-small"]
    one = _torchrun("detect2d.train", [*args, "--out", str(tmp_path / "one")], sets, nproc=1)
    two = _torchrun("detect2d.train", [*args, "--out", str(tmp_path / "two")], sets, nproc=2)
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert two["effective_batch"] == one["effective_batch"] == 2 and two["batch_per_rank"] == [1, 1]
    assert two["steps"] == one["steps"] == 4
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert _assert_close_weights(w1, w2) > 10
    from detect2d.model import build_detector
    from detect2d.settings import preset

    torch.manual_seed(0)  # the untrained network: the 4 steps moved the weights
    init = build_detector(preset("cpu-small").with_(**{k: tuple(v) if isinstance(v, list) else v
                                                      for k, v in sets.items()})).state_dict()
    assert max(float((w1[k] - init[k]).abs().max()) for k in w1 if w1[k].is_floating_point()) > 1e-3
    rows1 = [json.loads(x) for x in (tmp_path / "one/train_log.jsonl").read_text().splitlines()]
    rows2 = [json.loads(x) for x in (tmp_path / "two/train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows1] == [r["step"] for r in rows2] == [2, 4]
    for r1, r2 in zip(rows1, rows2):
        assert r2["total"] == pytest.approx(r1["total"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["checkpoint.pt", "model.pt", "summary.json",
                                                                    "train_log.csv", "train_log.jsonl",
                                                                    "train_loss.png"]


AVOD_SETS = {"x_range_m": [-20.0, 20.0], "z_range_m": [0.0, 40.0], "cell_m": 0.5, "use_image": True,
             "channels": [4, 8, 8, 8], "decoder_channels": 8, "rpn_fc": 16, "pre_nms_top": 500,
             "proposals_train": 64, "proposals_test": 32, "fc_layers": [64, 64], "dropout": 0.0, "rpn_batch": 128,
             "roi_batch": 64, "add_gt_to_proposals": True, "learning_rate": 3e-3, "lr_decay_steps": 1000,
             "weight_decay": 0.0, "flip": True, "pca_jitter": True, "checkpoint_every": 2, "num_threads": 1,
             "device": "cpu"}


@pytest.fixture(scope="module")
def avod_runs(tmp_path_factory, sample_root):
    """AVOD, 4 steps: one process with ``--frames-per-step 2``, and two gloo ranks (one frame each)."""
    tmp = tmp_path_factory.mktemp("avod-ddp")
    (tmp / "ids.txt").write_text("000006\n000008\n000001\n")
    args = ["--data", str(sample_root), "--points", str(sample_root / "training/velodyne"),
            "--split", str(tmp / "ids.txt"), "--preset", "paper"]
    one = _torchrun("detection.avod.train", [*args, "--out", str(tmp / "one"), "--frames-per-step", "2"],
                    {**AVOD_SETS, "steps": 4}, nproc=1)
    two = _torchrun("detection.avod.train", [*args, "--out", str(tmp / "two")], {**AVOD_SETS, "steps": 4}, nproc=2)
    return tmp, args, one, two


def test_avod_two_ranks_equal_one_process_of_two_frames_per_step(avod_runs):
    """AVOD on two gloo ranks (one frame each, 2 frames per step) vs one process with
    ``--frames-per-step 2``: each frame is forwarded alone on both sides (batch norms see the same
    frame), its path-drop and mini-batch draws come from its visit's generator, dropout is 0, so the
    weights differ only by float summation order (the mean of two frames' gradients). The batch
    norms' running statistics are rank 0's (DDP broadcasts its buffers) and are not compared."""
    tmp, _, one, two = avod_runs
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert one["effective_batch"] == two["effective_batch"] == 2 and two["batch_per_rank"] == [1, 1]
    assert one["steps"] == two["steps"] == 4
    w1, w2 = _weights(tmp / "one"), _weights(tmp / "two")
    assert _assert_close_weights(w1, w2) > 10
    assert two["final_total"] == pytest.approx(one["final_total"], rel=1e-4)
    assert sorted(p.name for p in (tmp / "two").iterdir()) == ["checkpoint.pt", "model.pt", "planes",
                                                               "summary.json", "train_log.csv",
                                                               "train_log.jsonl", "train_loss.png"]
    # every frame a rank visited has its ground plane, written by rank 0
    assert sorted(p.name for p in (tmp / "two/planes").iterdir()) == sorted(
        p.name for p in (tmp / "one/planes").iterdir())
    ck = torch.load(tmp / "two/checkpoint.pt", weights_only=False)
    assert ck["frames_per_step"] == 2 and len(ck["rank_rng"]) == 2


def test_avod_ddp_run_resumed_continues_identically(avod_runs):
    """A 2-rank AVOD run resumed from its step-2 checkpoint gives the uninterrupted run's weights
    bit for bit."""
    tmp, args, _, two = avod_runs
    half = _torchrun("detection.avod.train", [*args, "--out", str(tmp / "half")], {**AVOD_SETS, "steps": 2},
                     nproc=2)
    assert half["steps"] == 2
    w2 = _weights(tmp / "two")
    w_half = torch.load(tmp / "half/checkpoint.pt", weights_only=False)["state_dict"]
    # steps 3 and 4 moved the weights: the comparison is not between unchanged networks
    assert max(float((w2[k] - w_half[k]).abs().max()) for k in w2 if w2[k].is_floating_point()) > 1e-3
    resumed = _torchrun("detection.avod.train", [*args, "--out", str(tmp / "resumed"), "--resume",
                                                 str(tmp / "half/checkpoint.pt")], {**AVOD_SETS, "steps": 4},
                        nproc=2)
    assert resumed["steps"] == 4
    wr = _weights(tmp / "resumed")
    for name, a in w2.items():
        assert torch.equal(wr[name], a), name
    # the per-step log too (the jsonl differs: the 2-step run wrote its own mean line at its last step)
    assert (tmp / "resumed/train_log.csv").read_text() == (tmp / "two/train_log.csv").read_text()
