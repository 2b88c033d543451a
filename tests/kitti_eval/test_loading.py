"""read_label_folder / evaluate_folders: bulk reading, and one test per malformed input (path:line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitti.errors import KittiFormatError
from kitti.labels import read_label_file
from kitti_eval import FrameLabels, evaluate_folders, read_label_folder

GOLDEN = Path(__file__).parents[1] / "data" / "golden_kitti_eval"
GT = "Car 0.00 0 0.10 100.00 100.00 300.00 200.00 1.50 1.60 4.00 1.00 1.60 20.00 0.10"
DET = ("Car -1 -1 0.1000 100.0000 100.0000 300.0000 200.0000 1.5000 1.6000 4.0000 1.0000 1.6000 "
       "20.0000 0.1000 0.9000")


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.txt").write_text(text)
    return folder


def test_read_label_folder_matches_kitti_reader(sample_root, sample_ids):
    labels = read_label_folder(sample_root / "training" / "label_2", sample_ids)
    objs = [read_label_file(sample_root / "training" / "label_2" / f"{i}.txt") for i in sample_ids]
    expected = FrameLabels.from_objects(objs, sample_ids)
    assert labels.types == expected.types
    assert labels.offsets.tolist() == expected.offsets.tolist()
    for name in ("truncated", "occluded", "alpha", "box2d", "hwl", "loc_rect", "ry"):
        np.testing.assert_array_equal(getattr(labels, name), getattr(expected, name), err_msg=name)
    assert np.isnan(labels.score).all()


def test_read_label_folder_golden_detections_equal_kitti_reader():
    folder = GOLDEN / "noisy_200" / "det"
    ids = [f"{i:06d}" for i in range(200)]
    got = read_label_folder(folder, ids, detections=True)
    exp = FrameLabels.from_objects(
        [read_label_file(folder / f"{i}.txt", require_score=True) for i in ids], ids)
    for name in ("box2d", "hwl", "loc_rect", "ry", "alpha", "score"):
        np.testing.assert_array_equal(getattr(got, name), getattr(exp, name), err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Car", "Pedestrian", "DontCare", "Misc"]),
                          st.lists(st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 2)),
                                   min_size=14, max_size=14)), max_size=6))
def test_read_label_folder_round_trips_text(tmp_path_factory, objects):
    folder = tmp_path_factory.mktemp("labels")
    lines = [f"{t} {v[0]:.2f} {int(v[1]) % 4} " + " ".join(f"{x:.2f}" for x in v[2:]) for t, v in objects]
    _write(folder, {"000000": "".join(s + "\n" for s in lines)})
    got = read_label_folder(folder, ["000000"])
    assert got.types == tuple(t for t, _ in objects)
    for k, (_, v) in enumerate(objects):
        assert got.box2d[k].tolist() == [float(f"{x:.2f}") for x in v[3:7]]
        assert got.ry[k] == float(f"{v[13]:.2f}")


def test_read_label_folder_empty_file_is_a_frame_without_objects(tmp_path):
    folder = _write(tmp_path, {"000000": "", "000001": GT + "\n\n"})
    got = read_label_folder(folder, ["000000", "000001"])
    assert got.offsets.tolist() == [0, 0, 1]


@pytest.mark.parametrize("line, message", [
    (GT.rsplit(" ", 1)[0], "expected 15 or 16 fields"),
    (GT.replace("1.60 4.00", "1.60 x4.00"), "'l' is not a number"),
    (GT.replace("1.50 1.60 4.00", "1.50 -1.60 4.00"), "negative box size"),
    (GT.replace("0.00 0 0.10", "0.00 0.5 0.10"), "'occluded' must be an integer"),
    (GT.replace("20.00", "nan"), "not finite"),
])
def test_read_label_folder_malformed_label_names_file_and_line(tmp_path, line, message):
    folder = _write(tmp_path, {"000000": GT + "\n", "000001": GT + "\n" + line + "\n"})
    with pytest.raises(KittiFormatError, match=message) as err:
        read_label_folder(folder, ["000000", "000001"])
    assert str(err.value).startswith(f"{folder / '000001.txt'}:2:")


def test_read_label_folder_detection_without_score_names_file_and_line(tmp_path):
    folder = _write(tmp_path, {"000000": DET + "\n" + DET.rsplit(" ", 1)[0] + "\n"})
    with pytest.raises(KittiFormatError, match="no score") as err:
        read_label_folder(folder, ["000000"], detections=True)
    assert str(err.value).startswith(f"{folder / '000000.txt'}:2:")


def test_read_label_folder_non_numeric_score_names_file_and_line(tmp_path):
    folder = _write(tmp_path, {"000000": DET.rsplit(" ", 1)[0] + " high\n"})
    with pytest.raises(KittiFormatError, match="'score' is not a number") as err:
        read_label_folder(folder, ["000000"], detections=True)
    assert str(err.value).startswith(f"{folder / '000000.txt'}:1:")


def test_evaluate_folders_missing_result_file_is_an_error(tmp_path):
    gt = _write(tmp_path / "gt", {"000000": GT + "\n", "000001": GT + "\n"})
    det = _write(tmp_path / "det", {"000000": DET + "\n"})
    with pytest.raises(KittiFormatError, match="missing for frame 000001") as err:
        evaluate_folders(gt, det, ["000000", "000001"])
    assert str(err.value).startswith(str(det / "000001.txt"))


def test_evaluate_folders_missing_as_empty_counts_no_detections(tmp_path):
    gt = _write(tmp_path / "gt", {"000000": GT + "\n", "000001": GT + "\n"})
    det = _write(tmp_path / "det", {"000000": DET + "\n"})
    res = evaluate_folders(gt, det, ["000000", "000001"], missing_as_empty=True)
    both = evaluate_folders(gt, _write(tmp_path / "det2", {"000000": DET + "\n", "000001": ""}),
                            ["000000", "000001"])
    assert res.n_frames == 2 and res.to_dict() == both.to_dict()


def test_evaluate_folders_default_frames_are_the_result_files(tmp_path):
    gt = _write(tmp_path / "gt", {"000000": GT + "\n", "000001": GT + "\n"})
    det = _write(tmp_path / "det", {"000001": DET + "\n"})
    assert evaluate_folders(gt, det).n_frames == 1
    with pytest.raises(KittiFormatError, match="no result files"):
        evaluate_folders(gt, _write(tmp_path / "empty", {}))


def test_evaluate_folders_missing_ground_truth_is_an_error(tmp_path):
    gt = _write(tmp_path / "gt", {"000000": GT + "\n"})
    det = _write(tmp_path / "det", {"000000": DET + "\n", "000007": DET + "\n"})
    with pytest.raises(KittiFormatError, match="label file missing for frame 000007"):
        evaluate_folders(gt, det)


number_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.floats(-1e4, 1e4, allow_nan=False).flatmap(
        lambda v: st.sampled_from([f"{v:.2f}", f"{v:.4f}", f"{v:e}", f"{v:+.1f}", f"{v:.0f}."])),
    st.sampled_from(["-0.00", ".5", "5.", "1E2", "1e-3", "+7", "0000000000000000001.5", "1e", "-",
                     ".", "1.2.3", "1e400", "9007199254740993", "123456789012345.6"]),
)


@settings(max_examples=300, deadline=None)
@given(number_text)
def test_parse_decimal_is_exact_or_declines(text):
    from kitti_eval._kernels import parse_decimal

    buf = np.frombuffer(text.encode(), dtype=np.uint8)
    value, taken = parse_decimal(buf, 0, len(buf))
    if taken:
        expected = float(text)
        assert value == expected and np.signbit(value) == np.signbit(expected), text


def test_read_label_folder_fast_path_equals_careful_path(tmp_path):
    from kitti_eval.loading import _parse_careful, _parse_fast

    text = (GT + "\r\n\r\n" + GT.replace("0.10", "1e-1") + "\r" + "DontCare -1 -1 -10 1 2 3 4 -1 -1 -1 "
            "-1000 -1000 -1000 -10\n\t" + GT.replace("Car", "Van") + " 0.5\n")
    data = [text.encode(), b"", GT.encode()]
    paths = [tmp_path / f"{i}.txt" for i in range(3)]
    fast, careful = _parse_fast(data, paths, False), _parse_careful(data, paths, False)
    assert fast is not None
    np.testing.assert_array_equal(fast[0], careful[0])
    assert fast[1] == careful[1] and fast[2].tolist() == careful[2].tolist() == [0, 4, 4, 5]
