"""kitti.settings_record.SettingsRecord: the copy and the strict reader every stage's settings share."""

from dataclasses import asdict, dataclass

import pytest

from kitti.settings_record import SettingsRecord


@dataclass(frozen=True)
class _S(SettingsRecord):
    a: int = 1
    b: str = "x"

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("a must be >= 0")


def test_with_copies_and_validates_again():
    s = _S()
    assert s.with_(a=3) == _S(3, "x") and s == _S()
    with pytest.raises(ValueError, match="a must be"):
        s.with_(a=-1)


def test_from_dict_round_trip_and_unknown_keys_named():
    assert _S.from_dict(asdict(_S(5, "y"))) == _S(5, "y")
    with pytest.raises(ValueError, match=r"_S: unknown fields \['c'\]"):
        _S.from_dict({"a": 1, "c": 2})


@pytest.mark.parametrize("module, cls", [("detect2d.settings", "Detect2DSettings"),
                                         ("detection.avod.settings", "AvodSettings"),
                                         ("detection.frustum_pointnet.settings", "FPointNetSettings")])
def test_stage_settings_round_trip(module, cls):
    import importlib

    mod = importlib.import_module(module)
    s = mod.preset("cpu-small")
    assert getattr(mod, cls).from_dict(asdict(s)) == s
