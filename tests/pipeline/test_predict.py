"""``foresee export`` / ``foresee predict``: the bundle (round trip, tampering, truncation, a
pickle payload), predict on a root without labels, the submission zip, one's own camera, and
predict == the run's detect-infer files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.run import run_chain
from pipeline.stages import RunConfig

D2D = {"encoder": "test_resnet", "encoder_weights": "none", "max_steps": 2, "batch_size": 2, "num_threads": 1,
       "score_thresh": 0.01, "detections_per_img": 20}
#: a 2-step depth model predicts about the mean of its bins everywhere (a wall, ~0.12 depth_max_m):
#: this depth_max_m puts the wall through cars of the render, so the 3D detector has objects to
#: learn and the results are not all empty
DEPTH = {"max_steps": 2, "depth_max_m": 212.0}
#: small boxes kept (the render is at half scale; the 2-step 2D detector's boxes are a few pixels)
DETECT = {"epochs": 1, "min_box_height_px": 0.0, "min_points_detection": 1}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-cloud (foresee) chain with the 2D detector on a tiny render: (root, workdir, summary)."""
    from synth import render_dataset
    from synth.settings import SynthSettings

    base = tmp_path_factory.mktemp("predict")
    root = base / "tiny"
    render_dataset(root, SynthSettings(frames_train=12, frames_val=3, image_scale=0.5, seed=7), workers=1,
                   progress=False)
    cfg = RunConfig(data_root=root, clouds=("foresee",), boxes2d="detector",
                    overrides={"detect": DETECT, "detect2d": D2D, "depth": DEPTH})
    before = torch.get_num_threads()
    summary = run_chain(cfg, base / "work")
    torch.set_num_threads(before)
    return root, base / "work", summary


@pytest.fixture(scope="module")
def bundle(tiny_run, tmp_path_factory) -> Path:
    _, work, _ = tiny_run
    out = tmp_path_factory.mktemp("bundle") / "chain.foresee"
    res = CliRunner().invoke(main, ["export", "--workdir", str(work), "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def _cli(args):
    """Run the console entry in-process: (exit code, stderr+stdout)."""
    import subprocess
    import sys

    code = "import sys; from pipeline.cli import cli_entry; sys.argv = ['foresee'] + sys.argv[1:]; cli_entry()"
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stderr + p.stdout


# ---------------------------------------------------------------------------- bundle
def test_bundle_round_trip(bundle, tiny_run):
    from pipeline.bundle import MEMBERS, load_bundle

    _, work, summary = tiny_run
    b = load_bundle(bundle)
    assert b.detector == "fpointnet" and b.variant == "foresee"
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert names == ["manifest.json", *MEMBERS]
    # the weights are the run's, tensor for tensor
    ck = torch.load(Path(summary["stages"]["depth-train/foresee"]["path"]) / "checkpoint.pt", weights_only=False)
    assert set(b.weights["depth"]) == set(ck["model"])
    for k, v in ck["model"].items():
        assert torch.equal(b.weights["depth"][k], v), k
    m3 = torch.load(Path(summary["stages"]["detect-train/fpointnet/foresee"]["path"]) / "model.pt", weights_only=False)
    for k, v in m3["state_dict"].items():
        assert torch.equal(b.weights["detect3d"][k], v), k
    # the geometry of the render: its image size and P2's focal length
    from kitti import KittiRoot

    kr = KittiRoot(tiny_run[0])
    f0 = kr.split("train")[0]
    g = b.geometry
    assert g.image_hw == kr.image_hw(f0) and g.fx == pytest.approx(kr.calib(f0).fu)
    cars = [o.y for f in kr.split("train") for o in kr.labels(f) if o.type == "Car"]
    assert g.camera_height_m == pytest.approx(np.median(cars), abs=1e-3)


def _member_offset(path: Path, name: str) -> int:
    with tarfile.open(path) as tar:
        return tar.getmember(name).offset_data


@pytest.mark.parametrize("member", ["detect2d.safetensors", "pseudolidar.json"])
def test_one_edited_byte_is_named_and_exits_2(bundle, tmp_path, member):
    bad = tmp_path / "bad.foresee"
    data = bytearray(bundle.read_bytes())
    data[_member_offset(bundle, member) + 40] ^= 0x01
    bad.write_bytes(bytes(data))
    rc, out = _cli(["export", "--help"])  # warm the interpreter's imports once
    rc, out = _cli(["predict", "--models", bad, "--data", tmp_path, "--out", tmp_path / "o"])
    lines = [line for line in out.strip().splitlines() if line]
    assert rc == 2 and len(lines) == 1, out
    assert f"[{member}]" in lines[0] and "sha256" in lines[0]


def test_truncated_bundle_is_named_and_exits_2(bundle, tmp_path):
    cut = tmp_path / "cut.foresee"
    at = _member_offset(bundle, "detect3d.safetensors") + 100
    cut.write_bytes(bundle.read_bytes()[:at])
    rc, out = _cli(["predict", "--models", cut, "--data", tmp_path, "--out", tmp_path / "o"])
    lines = out.strip().splitlines()
    assert rc == 2 and len(lines) == 1, out
    assert "[detect3d.safetensors]" in lines[0] and "truncated" in lines[0]


class _Payload:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_member_is_refused_without_running_it(bundle, tmp_path):
    """A member replaced by a pickle, with the manifest's hash made to match: refused, and the
    pickle's code never runs."""
    from pipeline.bundle import MANIFEST, load_bundle, BundleError

    marker = tmp_path / "code-ran"
    buf = io.BytesIO()
    torch.save({"model": _Payload(marker)}, buf)
    evil = buf.getvalue()
    members = {}
    with tarfile.open(bundle) as tar:
        for info in tar.getmembers():
            members[info.name] = tar.extractfile(info).read()
    members["depth.safetensors"] = evil
    manifest = json.loads(members[MANIFEST])
    manifest["members"]["depth.safetensors"] = {"sha256": hashlib.sha256(evil).hexdigest(), "bytes": len(evil)}
    members[MANIFEST] = json.dumps(manifest).encode()
    crafted = tmp_path / "crafted.foresee"
    with tarfile.open(crafted, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleError, match=r"\[depth.safetensors\].*not a safetensors file"):
        load_bundle(crafted)
    assert not marker.exists()
    # the same payload loaded the old way would have run (the test's payload is live)
    torch.load(io.BytesIO(evil), weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------------------- predict
def test_predict_equals_the_runs_detect_infer_files(bundle, tiny_run, tmp_path):
    root, _, summary = tiny_run
    out = tmp_path / "pred"
    res = CliRunner().invoke(main, ["predict", "--models", str(bundle), "--data", str(root), "--split", "val",
                                    "--out", str(out), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run_dir = Path(summary["stages"]["detect-infer/fpointnet/foresee"]["path"]) / "data"
    run_files = sorted(p.name for p in run_dir.iterdir())
    assert sorted(p.name for p in (out / "data").iterdir()) == run_files and run_files
    for name in run_files:
        assert (out / "data" / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert sum(len((run_dir / n).read_text().splitlines()) for n in run_files) > 0  # not all empty
    d2 = Path(summary["stages"]["detect2d-infer"]["path"]) / "data"
    for name in run_files:
        assert (out / "boxes2d" / name).read_bytes() == (d2 / name).read_bytes(), name
    s = json.loads((out / "summary.json").read_text())
    assert s["frames"] == len(run_files) and set(s["cpu_seconds"]) == {"depth", "pseudolidar", "detect2d", "detect3d"}
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary folder left


def test_workers_write_the_files_of_one_process(bundle, tiny_run, tmp_path, restore_torch_threads):
    """--workers 2 (forked processes, one thread each) == one process on one thread, byte for
    byte; and one process on one thread == the same frames one chunk of one frame at a time."""
    from kitti import KittiRoot
    from pipeline.predict import open_models, predict_frames

    root = tiny_run[0]
    frames = KittiRoot(root).split("val")
    res = {}
    for name, args in (("one", ["--threads", "1"]), ("two", ["--threads", "1", "--workers", "2"])):
        out = tmp_path / name
        r = CliRunner().invoke(main, ["predict", "--models", str(bundle), "--data", str(root), "--split", "val",
                                      "--out", str(out), "--quiet", *args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        res[name] = out
    m = open_models(bundle, tmp_path / "models")
    s = predict_frames(m.files, root, frames, tmp_path / "chunks", progress=False, chunk=1, threads=1)
    res["chunks"] = tmp_path / "chunks"
    assert s["workers"] == 1 and s["frames"] == len(frames)
    assert json.loads((res["two"] / "summary.json").read_text())["workers"] == 2
    for sub in ("data", "boxes2d"):
        names = sorted(p.name for p in (res["one"] / sub).iterdir())
        assert names == [f"{f}.txt" for f in frames]
        for other in ("two", "chunks"):
            assert sorted(p.name for p in (res[other] / sub).iterdir()) == names
            for n in names:
                assert (res[other] / sub / n).read_bytes() == (res["one"] / sub / n).read_bytes(), (other, sub, n)
    assert sum(len((res["one"] / "data" / n).read_text().splitlines()) for n in names) > 0


def test_the_console_entry_ends_predict_without_teardown_and_loses_no_output(bundle, tiny_run, tmp_path):
    """``foresee predict`` (the console script) ends with os._exit: exit code 0, its last line
    printed, every file written (its workers joined before)."""
    root = tiny_run[0]
    out = tmp_path / "pred"
    rc, text = _cli(["predict", "--models", bundle, "--data", root, "--split", "val", "--out", out, "--quiet",
                     "--workers", "2"])
    assert rc == 0, text
    assert text.strip().splitlines()[-1].startswith("predicted 3 frames"), text
    assert len(list((out / "data").iterdir())) == 3 and json.loads((out / "summary.json").read_text())["frames"] == 3


def test_workers_take_one_thread_each():
    res = CliRunner().invoke(main, ["predict", "--models", ".", "--data", ".", "--out", "o", "--workers", "2",
                                    "--threads", "2"])
    assert res.exit_code == 2 and "one thread per worker" in res.output


def test_chunks_cover_the_frames_in_order_and_shrink_for_workers():
    from pipeline.predict import _chunks

    frames = tuple(f"{i:06d}" for i in range(100))
    one = _chunks(frames, 32)
    assert [len(c) for c in one] == [32, 32, 32, 4]
    two = _chunks(frames, 32, workers=2)
    assert sum(two, ()) == frames  # every frame once, in order
    sizes = [len(c) for c in two]
    assert max(sizes) <= 32 and sizes == sorted(sizes, reverse=True) and sizes[-1] == 2
    assert sizes[0] == -(-100 // 8)  # a quarter of each worker's share first


@pytest.mark.parametrize("member", ["depth.pt", "detect2d.pt", "detect3d.pt"])
def test_a_materialized_model_file_with_a_pickle_payload_is_refused(bundle, tiny_run, tmp_path, member):
    """The model files a bundle is written out to are read without running code: one replaced
    by a pickle (a dict whose value runs code when unpickled) is refused, one line naming it,
    and its code never runs — the same payload read the old way does run."""
    from kitti import KittiFormatError, KittiRoot
    from pipeline.predict import open_models, predict_frames

    m = open_models(bundle, tmp_path / "models")
    path = tmp_path / "models" / "models" / member
    assert path.is_file()
    marker = tmp_path / "code-ran"
    torch.save({"state_dict": _Payload(marker), "settings": {}}, path)
    root = tiny_run[0]
    with pytest.raises(KittiFormatError, match="refused") as e:
        predict_frames(m.files, root, KittiRoot(root).split("val")[:1], tmp_path / "out", progress=False, threads=1)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_blas_threads_do_not_change_the_frame_cloud(sample_root):
    """predict runs NumPy's BLAS on one thread: the frame's image-FOV cloud (two matrix products
    per point) is the same, bit for bit, on one BLAS thread and on two."""
    from threadpoolctl import threadpool_limits

    from detection.fov import frame_cloud
    from kitti import KittiRoot

    kr = KittiRoot(sample_root)
    points, calib, hw = kr.velodyne("000006"), kr.calib("000006"), kr.image_hw("000006")
    got = {}
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="blas"):
            got[n] = frame_cloud(points, calib, hw)
    assert len(got[1]) > 10_000
    for name in ("points_rect", "uv_img", "intensity"):
        assert np.array_equal(getattr(got[1], name), getattr(got[2], name)), name


def _testing_root(root: Path, dest: Path, frames) -> Path:
    """A root with only testing/{image_2,calib} (no labels, no velodyne), renumbered 000000…"""
    for kind, suffix in (("image_2", ".png"), ("calib", ".txt")):
        (dest / "testing" / kind).mkdir(parents=True)
        for i, f in enumerate(frames):
            shutil.copy(root / "training" / kind / f"{f}{suffix}", dest / "testing" / kind / f"{i:06d}{suffix}")
    return dest


def test_predict_on_a_testing_root_without_labels_and_the_submission(bundle, tiny_run, tmp_path):
    from kitti import KittiRoot
    from kitti_eval.loading import read_label_folder

    root = tiny_run[0]
    frames = KittiRoot(root).split("val")
    test_root = _testing_root(root, tmp_path / "kitti", frames)
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{i:06d}\n" for i in range(len(frames))))
    out, sub = tmp_path / "pred", tmp_path / "sub.zip"
    res = CliRunner().invoke(main, ["predict", "--models", str(bundle), "--data", str(test_root), "--ids", str(ids),
                                    "--out", str(out), "--submission", str(sub), "--pages", "1", "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert sorted(p.stem for p in (out / "data").iterdir()) == [f"{i:06d}" for i in range(len(frames))]
    assert (out / "pages" / "000000.html").is_file() and (out / "pages" / "000000.png").is_file()
    assert not (out / "velodyne").exists()  # pages only: the clouds are not kept
    with zipfile.ZipFile(sub) as zf:
        names = sorted(zf.namelist())
        assert names == [f"{i:06d}.txt" for i in range(len(frames))]  # every id, in the root folder
        zf.extractall(tmp_path / "unzipped")
    n = 0
    for name in names:
        for line in (tmp_path / "unzipped" / name).read_text().splitlines():
            assert len(line.split()) == 16
            assert line.split()[0] in ("Car", "Pedestrian", "Cyclist")
            n += 1
    back = read_label_folder(tmp_path / "unzipped", [Path(nm).stem for nm in names])
    assert len(back.types) == n and not np.isnan(back.score).any()


def test_submission_every_id_and_the_scored_classes(tmp_path):
    from kitti import Object3d, write_label_file
    from kitti_eval.loading import read_label_folder
    from pipeline.submission import write_submission

    res = tmp_path / "data"
    res.mkdir()
    car = Object3d("Car", -1.0, -1, 0.1, 10, 20, 110, 80, 1.5, 1.6, 3.9, 1.0, 1.7, 20.0, 0.2, 0.9)
    van = car.with_(type="Van")
    off = car.with_(x1=-300.0, x2=-50.0)  # not visible on the image plane
    write_label_file(res / "000000.txt", [car, van, off])
    write_label_file(res / "000001.txt", [])
    zp = tmp_path / "s.zip"
    got = write_submission(res, ("000000", "000001"), zp, image_hw=lambda f: (375, 1242))
    assert got == {"frames": 2, "objects": 1, "dropped": 2}
    with zipfile.ZipFile(zp) as zf:
        assert sorted(zf.namelist()) == ["000000.txt", "000001.txt"]
        assert zf.read("000001.txt") == b""
        line = zf.read("000000.txt").decode().strip()
        zf.extractall(tmp_path / "u")
    assert len(line.split()) == 16 and float(line.split()[-1]) == pytest.approx(0.9)
    back = read_label_folder(tmp_path / "u", ["000000", "000001"])
    assert back.types == ("Car",) and list(back.offsets) == [0, 1, 1] and back.score[0] == pytest.approx(0.9)
    # a frame of the split without a result file is an error naming it
    from kitti import KittiFormatError

    with pytest.raises(KittiFormatError, match="000002"):
        write_submission(res, ("000000", "000001", "000002"), tmp_path / "t.zip")
    assert not (tmp_path / "t.zip").exists()


def test_the_full_test_split_has_7518_ids():
    from kitti import builtin_split

    ids = builtin_split("test")
    assert len(ids) == 7518 and ids[0] == "000000" and ids[-1] == "007517"


# ---------------------------------------------------------------------------- own camera
def test_calibration_from_intrinsics_matches_kitti_convention():
    from kitti.frames_source import calibration_from_intrinsics

    c = calibration_from_intrinsics(700.0, 710.0, 600.0, 180.0, camera_height_m=1.5, lidar_height_m=1.73,
                                    lidar_forward_m=-0.27)
    # a point 10 m ahead of the camera on the road: camera (0, 1.5, 10) -> velo x 10.27, z -1.73
    velo = c.rect_to_velo(np.array([[0.0, 1.5, 10.0]]))[0]
    np.testing.assert_allclose(velo, [10.27, 0.0, -1.73], atol=1e-12)
    # a point 2 m to the camera's right is 2 m to the LiDAR's -y; projection is K
    velo = c.rect_to_velo(np.array([[2.0, 0.0, 10.0]]))[0]
    assert velo[1] == pytest.approx(-2.0)
    uv, _ = c.rect_to_img(np.array([[1.0, 0.5, 10.0]]))
    np.testing.assert_allclose(uv[0], [600 + 70.0, 180 + 35.5])


def test_geometry_warnings_name_what_differs():
    from pipeline.bundle import Geometry
    from pipeline.predict import geometry_warnings

    trained = Geometry((375, 1242), 721.5, 721.5, 609.6, 172.9, 1.65, 1.73, -0.27)
    assert geometry_warnings(trained, trained) == []
    own = Geometry((720, 1280), 1000.0, 1000.0, 640, 360, 1.2, 1.73)
    lines = geometry_warnings(trained, own)
    assert any("camera height 1.20 m vs 1.65 m" in x for x in lines)
    assert any("focal length 1000.0 px vs 721.5 px" in x and "+39%" in x for x in lines)
    assert any("image height 720 px vs 375 px" in x for x in lines)
    assert not any("image width" in x for x in lines)  # 1280 vs 1242: +3 %, within 10 %


def _plane_depth(calib, hw, objects) -> np.ndarray:
    """A depth map of the sample frame: the road (camera 1.65 m above it), 60 m above the
    horizon, each labelled object's 2D box at its label depth (nearest first)."""
    h, w = hw
    v = np.arange(h, dtype=np.float64)[:, None].repeat(w, 1)
    below = v > calib.cv + 1.0
    depth = np.full((h, w), 60.0)
    depth[below] = np.minimum(60.0, calib.fv * 1.65 / (v[below] - calib.cv))
    for o in sorted(objects, key=lambda o: -o.z):
        if o.type == "DontCare":
            continue
        x1, y1, x2, y2 = (int(round(c)) for c in (o.x1, o.y1, o.x2, o.y2))
        depth[y1:y2 + 1, x1:x2 + 1] = o.z
    return depth.astype(np.float32)


def test_own_camera_intrinsics_give_the_boxes_of_the_frames_own_calib(sample_root, tmp_path, restore_torch_threads):
    """A real KITTI frame through pseudo-LiDAR and F-PointNet (a seeded untrained network, the
    frame's ground-truth 2D boxes, the same depth map), once with its own calibration and once with a calibration
    built from its intrinsics and KITTI's rig heights: the same boxes to 1 cm, once the
    own-camera boxes (camera 2's frame) are moved into KITTI's rect frame (camera 0's)."""
    from detection.frustum_pointnet.infer import build_model, infer_fpointnet, save_model
    from detection.frustum_pointnet.settings import preset as fpn_preset
    from detect2d.infer import detection_object
    from kitti import KittiRoot, read_label_file, write_depth_npz, write_label_file
    from kitti.frames_source import (KITTI_CAMERA_HEIGHT_M, KITTI_LIDAR_FORWARD_M, KITTI_LIDAR_HEIGHT_M,
                                     calibration_from_intrinsics, images_view)
    from pseudolidar.settings import preset as pl_preset
    from pseudolidar.stage import run_pseudolidar

    kr = KittiRoot(sample_root)
    frame = "000006"  # four cars at 20-38 m
    calib, hw, labels = kr.calib(frame), kr.image_hw(frame), kr.labels(frame)
    cars = [o for o in labels if o.type == "Car" and o.y2 - o.y1 >= 25]
    assert cars
    own = calibration_from_intrinsics(calib.fu, calib.fv, calib.cu, calib.cv, camera_height_m=KITTI_CAMERA_HEIGHT_M,
                                      lidar_height_m=KITTI_LIDAR_HEIGHT_M, lidar_forward_m=KITTI_LIDAR_FORWARD_M)
    own_root, ids = images_view([kr.path("image_2", frame)], own, tmp_path / "own")
    # the same depth map for both: it is what the depth network makes of the image alone
    depth_dir = tmp_path / "depth"
    depth_dir.mkdir()
    write_depth_npz(depth_dir / f"{frame}.npz", _plane_depth(calib, hw, labels))
    boxes = tmp_path / "boxes2d"
    boxes.mkdir()
    assert ids == (frame,)  # a numbered image keeps its id (and so its sampling seed)
    write_label_file(boxes / f"{frame}.txt", [detection_object("Car", o.bbox, 0.9) for o in cars])
    settings = fpn_preset("cpu-small").with_(num_threads=1)
    torch.manual_seed(0)
    model = build_model(settings).eval()
    # segmentation "every point is object": the box then depends on the cloud only through its
    # centroid and centred points, so this checks the geometry (clouds, frames, height cut), not
    # how a learned segmentation reacts to camera 2's 6 cm offset
    with torch.no_grad():
        model.seg_out.weight.zero_()
        model.seg_out.bias.copy_(torch.tensor([0.0, 1.0]))
    save_model(tmp_path / "model.pt", model, settings)
    results = {}
    for name, root, fid in (("kitti", sample_root, frame), ("own", own_root, ids[0])):
        clouds = tmp_path / name / "clouds"
        run_pseudolidar(depth_dir, root, [fid], clouds, pl_preset("cpu-small"), workers=1, progress=False)
        infer_fpointnet(root, clouds, [fid], tmp_path / "model.pt", settings, tmp_path / name / "out", boxes2d=boxes,
                        progress=False)
        results[name] = read_label_file(tmp_path / name / "out" / f"{fid}.txt")
    assert len(results["kitti"]) == len(results["own"]) == len(cars)
    # camera 2's centre in KITTI's rect frame: P2 = K [I | t] -> t = K^-1 P2[:, 3]
    cam2_in_rect = -np.linalg.solve(calib.P2[:, :3], calib.P2[:, 3])
    for a, b in zip(results["kitti"], results["own"]):
        np.testing.assert_allclose(np.array(b.loc_rect) + cam2_in_rect, a.loc_rect, atol=0.01)
        np.testing.assert_allclose(b.hwl, a.hwl, atol=0.01)
        assert abs(b.ry - a.ry) < 0.01


# ---------------------------------------------------------------------------- cache, shards, memory
def _many_frames_root(root: Path, dest: Path, n: int) -> tuple[Path, Path]:
    """A testing/ root of ``n`` frames (the render's val frames repeated, images linked) and its ids file."""
    import os

    from kitti import KittiRoot

    src = KittiRoot(root).split("val")
    for kind in ("image_2", "calib"):
        (dest / "testing" / kind).mkdir(parents=True)
    for i in range(n):
        f = src[i % len(src)]
        os.symlink(root / "training" / "image_2" / f"{f}.png", dest / "testing" / "image_2" / f"{i:06d}.png")
        shutil.copy(root / "training" / "calib" / f"{f}.txt", dest / "testing" / "calib" / f"{i:06d}.txt")
    ids = dest / "ids.txt"
    ids.write_text("".join(f"{i:06d}\n" for i in range(n)))
    return dest, ids


@pytest.mark.slow
def test_two_torchrun_ranks_write_the_files_of_one_process_and_the_cache_hits(bundle, tiny_run, tmp_path):
    import subprocess
    import sys

    root, ids = _many_frames_root(tiny_run[0], tmp_path / "kitti", 6)
    common = ["-m", "pipeline.cli", "predict", "--models", str(bundle), "--data", str(root), "--ids", str(ids),
              "--quiet"]
    one = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          *common, "--out", str(tmp_path / "two"), "--workdir", str(tmp_path / "work")],
                         capture_output=True, text=True)
    assert two.returncode == 0, two.stderr
    a = sorted((tmp_path / "one" / "data").iterdir())
    b = sorted((tmp_path / "two" / "data").iterdir())
    assert [p.name for p in a] == [p.name for p in b] == [f"{i:06d}.txt" for i in range(6)]
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.name
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["shards"] == 2 and summary["frames"] == 6
    # the same call again is a cache hit
    again = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "three"), "--workdir",
                            str(tmp_path / "work")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "three" / "summary.json").read_text())["cached"] is True


def _peak_rss_mib(args) -> float:
    import subprocess
    import sys

    code = ("import resource, sys; from pipeline.cli import main; "
            "main(sys.argv[1:], standalone_mode=False); "
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return float(p.stdout.split("RSS")[-1])


@pytest.mark.slow
def test_memory_does_not_grow_with_the_frames(bundle, tiny_run, tmp_path):
    """Peak RSS of predict on 400 frames within 10 % of 40 frames (chunks of 32)."""
    root, _ = _many_frames_root(tiny_run[0], tmp_path / "kitti", 400)
    rss = {}
    for n in (40, 400):
        ids = tmp_path / f"ids{n}.txt"
        ids.write_text("".join(f"{i:06d}\n" for i in range(n)))
        rss[n] = _peak_rss_mib(["predict", "--models", bundle, "--data", root, "--ids", ids, "--out",
                                tmp_path / f"out{n}", "--threads", "1", "--quiet"])
    assert rss[400] <= 1.10 * rss[40], rss
