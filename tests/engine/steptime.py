"""CPU milliseconds per training step of one trainer on the tests' tiny fixtures, for comparing two
trees of the code side by side (docs/performance.md): a warm-up run of N steps, then N and 2N
steps timed; the figure is (CPU(2N) - CPU(N)) / N, so set-up and the end of a run cancel.

    CODE=$TREE PYTHONPATH=$TREE python tests/engine/steptime.py depth|detect2d|fpointnet|avod OUT_DIR 12

``WORKERS=N`` (2D detector, the engine's code): images read in N DataLoader workers; the figure is
then the main process's CPU time (the workers' is not counted).
"""
import os, sys, time, json
from pathlib import Path
code = Path(os.environ["CODE"]); sys.path[:0] = [str(code / "tests/depth"), str(code / "tests/detect2d")]
import torch, numpy as np
torch.set_num_threads(1)
name, out = sys.argv[1], Path(sys.argv[2])
N = int(sys.argv[3]) if len(sys.argv) > 3 else 10
SAMPLE = code / "tests/data/kitti_sample"
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot  # noqa: the new code plots; import outside the timing
except ImportError:
    pass
if name == "depth":
    from depth_fixtures import tiny_settings, write_synthetic_root
    from depth.train import train_depth
    from kitti import KittiRoot
    write_synthetic_root(out / "root"); ids = KittiRoot(out / "root").split("train")
    run = lambda n, o: train_depth(out / "root", ids, tiny_settings("foresee", max_steps=n), o, progress=False)
elif name == "detect2d":
    from d2d_fixtures import TINY_SCENES, TinyEncoder, tiny_settings, write_root
    from detect2d.train import train_detector
    root = write_root(out / "root")
    def run(n, o):
        torch.manual_seed(0)
        workers = {"num_workers": int(os.environ["WORKERS"])} if "WORKERS" in os.environ else {}  # new code only
        return train_detector(root, tuple(TINY_SCENES), tiny_settings(max_steps=n, checkpoint_every_steps=10), o,
                              progress=False, encoder=TinyEncoder(), **workers)
elif name == "fpointnet":
    from detection.frustum_pointnet.settings import preset
    from detection.frustum_pointnet.train import train_fpointnet
    s = preset("cpu-small").with_(width=0.25, num_points=128, num_object_points=64, batch_size=4, augment_x=1,
                                  holdout_fraction=0.0, num_threads=1, checkpoint_every_epochs=2, device="cpu")
    run = lambda n, o: train_fpointnet(SAMPLE, SAMPLE / "training/velodyne", tuple(f"{i:06d}" for i in range(9)), s.with_(epochs=n // 3), o, progress=False)
elif name == "avod":
    from detection.avod.settings import AvodSettings
    from detection.avod.train import train_avod
    s = AvodSettings(x_range_m=(-20.0, 20.0), z_range_m=(0.0, 40.0), cell_m=0.5, use_image=True, image_hw=(96, 320),
                     channels=(4, 8, 8, 8), decoder_channels=8, rpn_fc=16, pre_nms_top=500, proposals_train=64, proposals_test=32,
                     fc_layers=(64, 64), dropout=0.1, rpn_batch=128, roi_batch=64, add_gt_to_proposals=True, learning_rate=3e-3,
                     lr_decay_steps=1000, weight_decay=0.0, steps=30, flip=True, pca_jitter=True, checkpoint_every=10,
                     num_threads=1, device="cpu")
    run = lambda n, o: train_avod(SAMPLE, SAMPLE / "training/velodyne", ("000006", "000008", "000001"), s.with_(steps=n), o, progress=False)
run(N, out / "warm")
c0 = time.process_time(); a = run(N, out / "a"); ca = time.process_time() - c0
c0 = time.process_time(); b = run(2 * N, out / "b"); cb = time.process_time() - c0
print(json.dumps({"name": name, "code": str(code), "steps": [a["steps"], b["steps"]], "cpu_s": [round(ca, 3), round(cb, 3)],
                  "cpu_ms_per_step": round(1000 * (cb - ca) / (b["steps"] - a["steps"]), 1)}))
