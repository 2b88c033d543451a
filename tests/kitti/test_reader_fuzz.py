"""Every reader of input files, fuzzed (hypothesis): a malformed file ends in one
``KittiFormatError`` naming the file (and the line, for a line's problem), never another
exception; what a reader does accept equals an independent parse of the same bytes."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitti import Calibration, KittiFormatError, read_label_file
from kitti.depth_io import read_depth_npz, read_depth_png
from kitti.layout import read_split_file
from kitti.velodyne import read_velodyne

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "kitti_sample" / "training"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Tokens that must never be read as a plain number.
BAD_TOKENS = ["nan", "NaN", "inf", "-inf", "1e999", "abc", "1,5", "0x10", "--1", "1..2", "\u221e", "1e"]


@st.composite
def mutated_text(draw, text: str):
    """``(mutated text, line number of the change or None)``: a token replaced by a bad one,
    dropped, or doubled; a line cut; raw bytes (maybe not UTF-8) inserted."""
    lines = text.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    tokens = lines[i].split(" ")
    j = draw(st.integers(0, len(tokens) - 1))
    kind = draw(st.sampled_from(["replace", "drop", "double", "cut", "bytes"]))
    if kind == "replace":
        tokens[j] = draw(st.sampled_from(BAD_TOKENS))
    elif kind == "drop":
        del tokens[j]
    elif kind == "double":
        tokens.insert(j, tokens[j])
    elif kind == "cut":
        tokens = tokens[:j]
    if kind == "bytes":
        raw = draw(st.binary(min_size=1, max_size=8))
        data = "\n".join(lines).encode()
        k = draw(st.integers(0, len(data)))
        return data[:k] + raw + data[k:], None
    lines[i] = " ".join(tokens)
    return ("\n".join(lines) + "\n").encode(), i + 1


def _floats(tokens: list[str]) -> list[float] | None:
    try:
        vals = [float(t) for t in tokens]
    except ValueError:
        return None
    return vals if all(math.isfinite(v) for v in vals) else None


def _check_error(e: KittiFormatError, path: Path) -> None:
    msg = str(e)
    assert str(path) in msg and "\n" not in msg, msg


def _run(reader, path: Path):
    try:
        return reader(path)
    except KittiFormatError as e:
        _check_error(e, path)
        return e


def _accepted(reader, path: Path, data: bytes):
    """Write ``data`` to ``path`` and read it: the value when accepted, None after a proper error."""
    path.write_bytes(data)
    got = _run(reader, path)
    return None if isinstance(got, KittiFormatError) else got


# ------------------------------------------------------------------------- text readers
LABEL = (SAMPLE / "label_2" / "000001.txt").read_text()
CALIB = (SAMPLE / "calib" / "000001.txt").read_text()


@FUZZ
@given(m=mutated_text(LABEL))
def test_label_reader(tmp_path, m):
    data, _ = m
    got = _accepted(read_label_file, tmp_path / "000001.txt", data)
    if got is None:
        return
    # accepted: the values are the lines' numbers, finite (an independent split of the bytes)
    lines = [ln.split() for ln in data.decode().splitlines() if ln.strip()]
    assert len(got) == len(lines)
    for obj, tokens in zip(got, lines):
        assert len(tokens) in (15, 16) and obj.type == tokens[0]
        vals = _floats(tokens[1:])
        assert vals is not None
        assert [obj.truncated, obj.occluded, obj.alpha, *obj.bbox, *obj.hwl, *obj.loc_rect, obj.ry] == vals[:14]


@FUZZ
@given(m=mutated_text(CALIB))
def test_calib_reader(tmp_path, m):
    data, _ = m
    got = _accepted(Calibration.from_file, tmp_path / "000001.txt", data)
    if got is None:
        return
    rows = {ln.partition(":")[0].strip(): ln.partition(":")[2].split() for ln in data.decode().splitlines()}
    for key, attr in (("P2", "P2"), ("R0_rect", "R0_rect"), ("Tr_velo_to_cam", "Tr_velo_to_cam")):
        vals = _floats(rows[key])
        assert vals is not None and np.array_equal(np.asarray(getattr(got, attr)).ravel(), vals)


@FUZZ
@given(m=mutated_text("000001\n000004\n000012\n"), extra=st.sampled_from(["", "12 13\n", "-5\n", "7.0\n", "\t\n"]))
def test_split_reader(tmp_path, m, extra):
    data, _ = m
    got = _accepted(read_split_file, tmp_path / "val.txt", data + extra.encode())
    if got is None:
        return
    tokens = (data + extra.encode()).decode().split()
    assert all(t.isdigit() for t in tokens) and got == tuple(t.zfill(6) for t in tokens)


RGB_DET = "".join(f"dataset/KITTI/object/training/image_2/00000{f}.png {t} {s} 100.5 120.0 300.25 200.0\n"
                  for f, t, s in (("1", 2, 0.9), ("2", 1, 0.4), ("2", 3, 0.7)))


@FUZZ
@given(m=mutated_text(RGB_DET))
def test_rgb_detection_reader(tmp_path, m):
    from detection.frustum_pointnet.boxes2d import read_rgb_detection_file

    data, _ = m
    got = _accepted(lambda q: read_rgb_detection_file(q, [f"{i:06d}" for i in range(9)],
                                                      ("Car", "Pedestrian", "Cyclist")),
                    tmp_path / "rgb_detection_val.txt", data)
    if got is None:
        return
    lines = [ln.split() for ln in data.decode().splitlines() if ln.strip()]
    assert sum(len(v) for v in got.values()) == len(lines)
    for tokens in lines:
        vals = _floats(tokens[2:])
        assert vals is not None and vals[3] >= vals[1] and vals[4] >= vals[2]


@FUZZ
@given(m=mutated_text(LABEL.replace("\n", " 0.75\n")))
def test_result_and_2d_folder_readers(tmp_path, m):
    """KITTI results (kitti_eval's fast tokenizer and its careful fallback) and KITTI-format 2D
    detection folders read the same file."""
    from detection.frustum_pointnet.boxes2d import read_kitti_2d_folder
    from kitti_eval.loading import read_label_folder

    data, _ = m
    p = tmp_path / "000001.txt"
    p.write_bytes(data)
    got = _run(lambda q: read_label_folder(q.parent, ["000001"], detections=True), p)
    if not isinstance(got, KittiFormatError):
        lines = [ln.split() for ln in data.decode().splitlines() if ln.strip()]
        assert all(len(t) == 16 and _floats(t[1:]) is not None for t in lines)
    got2 = _run(lambda q: read_kitti_2d_folder(q.parent, ["000001"], ("Car", "Pedestrian", "Cyclist")), p)
    if not isinstance(got2, KittiFormatError):
        lines = [ln.split() for ln in data.decode().splitlines() if ln.strip()]
        assert all(len(t) == 16 for t in lines)


# ------------------------------------------------------------------------- binary readers
@FUZZ
@given(n=st.integers(0, 50), cut=st.integers(0, 15), bad=st.sampled_from([None, np.nan, np.inf, -np.inf]),
       at=st.integers(0, 199))
def test_velodyne_reader(tmp_path, n, cut, bad, at):
    pts = np.random.default_rng(n).normal(size=(n, 4)).astype("<f4")
    if bad is not None and n:
        pts.ravel()[at % pts.size] = bad
    p = tmp_path / "000001.bin"
    data = pts.tobytes()[: max(0, pts.nbytes - cut)]
    p.write_bytes(data)
    got = _run(read_velodyne, p)
    kept = np.frombuffer(data[: len(data) // 16 * 16], dtype="<f4")
    if isinstance(got, KittiFormatError):
        assert len(data) % 16 or not np.isfinite(kept).all()
        return
    assert len(data) % 16 == 0 and np.isfinite(got).all()
    assert np.array_equal(got.ravel(), kept)


def _png_bytes(depth: np.ndarray, dtype) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", depth.astype(dtype))
    assert ok
    return buf.tobytes()


@FUZZ
@given(dtype=st.sampled_from([np.uint16, np.uint8]), cut=st.integers(0, 200), junk=st.binary(max_size=8),
       at=st.integers(0, 10_000))
def test_depth_png_reader(tmp_path, dtype, cut, junk, at):
    depth = np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 7
    data = _png_bytes(depth, dtype)
    data = data[: len(data) - cut]
    k = at % (len(data) + 1)
    data = data[:k] + junk + data[k + len(junk):]
    p = tmp_path / "000001.png"
    p.write_bytes(data)
    got = _run(read_depth_png, p)
    if isinstance(got, KittiFormatError):
        return
    # accepted: exactly the encoded map (PNG chunks carry CRCs, so damage is not silent)
    assert dtype == np.uint16 and np.array_equal(got, depth.astype(np.float32) / 256.0)


@FUZZ
@given(kind=st.sampled_from(["ok", "nan", "neg", "3d", "key", "cut", "junk"]), cut=st.integers(1, 300))
def test_depth_npz_reader(tmp_path, kind, cut):
    depth = np.linspace(0.0, 80.0, 60, dtype=np.float32).reshape(6, 10)
    buf = io.BytesIO()
    if kind == "nan":
        depth = depth.copy()
        depth[2, 3] = np.nan
    if kind == "neg":
        depth = -depth
    np.savez(buf, **{("other" if kind == "key" else "depth_m"): depth[None] if kind == "3d" else depth})
    data = buf.getvalue()
    if kind == "cut":
        data = data[: len(data) - cut]
    if kind == "junk":
        data = b"\x93NUMPY" + data[cut:]
    p = tmp_path / "000001.npz"
    p.write_bytes(data)
    got = _run(read_depth_npz, p)
    if isinstance(got, KittiFormatError):
        assert kind != "ok"
        return
    # accepted: the stored map itself (a cut that spares the data is harmless), never NaN/negative
    assert kind in ("ok", "cut") and np.array_equal(got, depth)


# ------------------------------------------------------------------------- the CLI: exit 2, one line
@pytest.mark.parametrize("bad", ["Car 0 0 0 1 2 3 4 1.5 1.6 3.9 1 2 nan 0.1 0.9\n", b"\xff\xfe\x00garbage\n"])
def test_cli_bad_result_file_is_one_line_exit_2(tmp_path, bad):
    root = tmp_path / "kitti"
    shutil.copytree(SAMPLE / "label_2", root / "training" / "label_2")
    det = tmp_path / "det"
    det.mkdir()
    for f in ("000000", "000001"):
        (det / f"{f}.txt").write_text("")
    (det / "000001.txt").write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    r = subprocess.run([sys.executable, "-m", "pipeline", "eval", "--gt", str(root), "--det", str(det)],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(det / "000001.txt") in r.stderr
