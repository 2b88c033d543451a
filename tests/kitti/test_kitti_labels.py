"""label_2 records (kitti/labels.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitti import KittiFormatError, KittiRoot, Object3d, parse_label_line, read_label_file, write_label_file
from kitti.labels import Difficulty, format_label_lines


def test_real_labels_round_trip_byte_identical(sample_root, sample_ids, tmp_path):
    for f in sample_ids:
        src = sample_root / "training" / "label_2" / f"{f}.txt"
        objs = read_label_file(src)
        out = tmp_path / f"{f}.txt"
        write_label_file(out, objs)
        assert out.read_bytes() == src.read_bytes(), f


def test_parse_fields_and_convention(sample_root):
    ped = read_label_file(sample_root / "training" / "label_2" / "000000.txt")[0]
    assert ped.type == "Pedestrian" and ped.occluded == 0 and ped.score is None
    assert ped.bbox == (712.40, 143.00, 810.73, 307.92)
    assert ped.hwl == (1.89, 0.48, 1.20) and ped.loc_rect == (1.84, 1.47, 8.41)


def test_dontcare_keeps_its_text():
    line = "DontCare -1 -1 -10 5.00 229.89 214.12 367.61 -1 -1 -1 -1000 -1000 -1000 -10"
    assert parse_label_line(line).to_line() == line


def test_changed_field_is_reformatted():
    line = "Car 0.00 0 1.55 614.24 181.78 727.31 284.77 1.57 1.73 4.15 1.00 1.75 13.22 1.62"
    obj = parse_label_line(line).with_(z=20.0, score=0.5)
    assert obj.to_line() == line.replace("13.22", "20.00") + " 0.5000"


def test_unknown_class_is_kept():
    obj = parse_label_line("Bus 0.00 0 0 1 2 3 4 1 1 1 0 0 10 0")
    assert obj.type == "Bus"


@pytest.mark.parametrize("line, match", [
    ("Car 0.00 0 1.55 614.24 181.78 727.31 284.77 1.57 1.73 4.15 1.00 1.75 13.22",
     r"labels\.txt:7: expected 15 or 16 fields .* got 14"),
    ("Car 0.00 0 1.55 614.24 181.78 727.31 284.77 1.57 x 4.15 1.00 1.75 13.22 1.62",
     r"labels\.txt:7: field 'w' is not a number: 'x'"),
    ("Car 0.00 0 1.55 614.24 181.78 727.31 284.77 1.57 -1.73 4.15 1.00 1.75 13.22 1.62",
     r"labels\.txt:7: negative box size"),
    ("Car 0.00 0.5 1.55 614.24 181.78 727.31 284.77 1.57 1.73 4.15 1.00 1.75 13.22 1.62",
     r"labels\.txt:7: field 'occluded' must be an integer"),
    ("Car 0.00 0 nan 614.24 181.78 727.31 284.77 1.57 1.73 4.15 1.00 1.75 13.22 1.62",
     r"labels\.txt:7: field 'alpha' is not finite"),
])
def test_parse_label_line_errors_name_file_and_line(line, match):
    with pytest.raises(KittiFormatError, match=match):
        parse_label_line(line, path="labels.txt", lineno=7)


def test_read_label_file_errors(tmp_path):
    with pytest.raises(KittiFormatError, match="label file not found"):
        read_label_file(tmp_path / "x.txt")
    p = tmp_path / "d.txt"
    p.write_text("Car 0.00 0 1.55 614.24 181.78 727.31 284.77 1.57 1.73 4.15 1.00 1.75 13.22 1.62\n")
    with pytest.raises(KittiFormatError, match=r"d\.txt:1: detection has no score"):
        read_label_file(p, require_score=True)


def test_empty_file_is_no_objects(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text("")
    assert read_label_file(p) == []


def test_difficulty_rule_uses_devkit_inequalities():
    base = parse_label_line("Car 0.00 0 0 0 100.00 10 140.00 1.5 1.6 4 0 1.7 10 0")
    assert base.height_px == 40.0
    assert base.is_ignored_for(Difficulty.EASY)  # exactly 40 px is not easy (<=)
    assert not base.is_ignored_for(Difficulty.MODERATE)
    assert base.with_(occluded=2).is_ignored_for(Difficulty.MODERATE)
    assert not base.with_(occluded=2).is_ignored_for(Difficulty.HARD)
    assert base.with_(truncated=0.5).is_ignored_for(Difficulty.MODERATE)
    assert not base.with_(truncated=0.5).is_ignored_for(Difficulty.HARD)


finite = st.floats(-1000, 1000, allow_nan=False).map(lambda v: round(v, 2))
positive = st.floats(0, 50, allow_nan=False).map(lambda v: round(v, 2))


@given(st.sampled_from(["Car", "Pedestrian", "Cyclist", "Van"]), st.integers(0, 3),
       st.lists(finite, min_size=9, max_size=9), st.lists(positive, min_size=3, max_size=3),
       st.one_of(st.none(), st.floats(0, 1).map(lambda v: round(v, 4))))
@settings(max_examples=100, deadline=None)
def test_write_read_round_trip(kind, occ, nums, size, score):
    obj = Object3d(kind, 0.0, occ, nums[0], nums[1], nums[2], nums[3], nums[4], size[0], size[1],
                   size[2], nums[5], nums[6], nums[7], nums[8], score)
    text = format_label_lines([obj])
    again = parse_label_line(text.strip())
    assert again == obj
    assert format_label_lines([again]) == text
