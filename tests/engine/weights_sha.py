"""Short runs of the four trainers on the tests' fixtures: the first 16 hex digits of the sha256 of the
final weights (every tensor, keys sorted) and of the log, to compare two trees of the code
(docs/training.md, "Same numbers as before")::

    CODE=$TREE PYTHONPATH=$TREE:$TREE/tests/depth:$TREE/tests/detect2d python tests/engine/weights_sha.py OUT_DIR
"""
import hashlib, json, sys, time, os
from pathlib import Path
import torch
torch.set_num_threads(1)
out = Path(sys.argv[1]); which = sys.argv[2:] or ["depth", "detect2d", "avod", "fpn"]
code = Path(os.environ["CODE"])
SAMPLE = code / "tests/data/kitti_sample"

def sd_hash(sd):
    h = hashlib.sha256()
    for k in sorted(sd):
        v = sd[k]
        if torch.is_tensor(v):
            h.update(k.encode()); h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]

res = {}
for w in which:
    o = out / w
    torch.manual_seed(0)
    c0 = time.process_time()
    if w == "depth":
        from depth_fixtures import tiny_settings, write_synthetic_root
        from depth.train import train_depth
        from kitti import KittiRoot
        root = out / "droot"; write_synthetic_root(root)
        s = tiny_settings("foresee", max_steps=6)
        summ = train_depth(root, KittiRoot(root).split("train"), s, o, progress=False)
        ck = torch.load(o / "checkpoint.pt", weights_only=False)
        sd = ck["model"]; log = (o / "train_log.csv").read_text()
        log = "\n".join(",".join(r.split(",")[:-1]) for r in log.splitlines())  # drop seconds
        steps = 6
    elif w == "detect2d":
        from d2d_fixtures import TinyEncoder, tiny_settings, write_root
        from detect2d.train import train_detector
        root = write_root(out / "d2root")
        s = tiny_settings(max_steps=6, checkpoint_every_steps=3)
        torch.manual_seed(0)
        summ = train_detector(root, ("000000", "000001", "000002", "000003"), s, o, progress=False, encoder=TinyEncoder())
        sd = torch.load(o / "model.pt", weights_only=False)["state_dict"]; log = (o / "train_log.jsonl").read_text(); steps = 6
    elif w == "avod":
        sys.path.insert(0, str(code / "tests/detection"))
        from test_avod_train_infer import TINY as AVOD_TINY  # the AVOD tests' tiny network
        from detection.avod.train import train_avod
        TINY = AVOD_TINY.with_(use_image=True, dropout=0.1, steps=8, flip=True, pca_jitter=True, checkpoint_every=4)
        summ = train_avod(SAMPLE, SAMPLE / "training/velodyne", ("000006", "000008"), TINY, o, progress=False)
        sd = torch.load(o / "model.pt", weights_only=False)["state_dict"]; log = (o / "train_log.jsonl").read_text(); steps = 8
    elif w == "fpn":
        from detection.frustum_pointnet.settings import preset
        from detection.frustum_pointnet.train import train_fpointnet
        TINY = preset("cpu-small").with_(width=0.125, num_points=64, num_object_points=32, batch_size=4,
                                 epochs=2, augment_x=1, holdout_fraction=0.3, num_threads=1,
                                 checkpoint_every_epochs=1, device="cpu")
        ids = tuple(f"{i:06d}" for i in range(9))
        summ = train_fpointnet(SAMPLE, SAMPLE / "training/velodyne", ids, TINY, o, progress=False)
        sd = torch.load(o / "model.pt", weights_only=False)["state_dict"]; log = (o / "train_log.jsonl").read_text(); steps = summ["steps"]
    cpu = time.process_time() - c0
    res[w] = {"weights": sd_hash(sd), "log": hashlib.sha256(log.encode()).hexdigest()[:16], "cpu_s": round(cpu, 2), "steps": steps}
    print(w, res[w], flush=True)
(out / "result.json").write_text(json.dumps(res, indent=1))
