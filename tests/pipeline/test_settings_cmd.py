"""``foresee settings``: every field of every stage's settings, its preset values and a meaning."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.commands.settings_cmd import settings_rows, stage_presets
from pipeline.stages import OVERRIDABLE, DETECTORS
from kitti.settings_record import field_docs


def _presets():
    from depth.settings import preset as depth
    from pseudolidar.settings import preset as pl
    from detect2d.settings import preset as d2
    out = {"depth": lambda p: depth(p), "pseudolidar": pl, "detect2d": d2}
    out.update({k: d.preset for k, d in DETECTORS.items()})
    return out


def test_every_overridable_stage_is_listed():
    # `detect` is the alias for every 3D detector; the others are stages of their own
    assert set(stage_presets()) == (set(OVERRIDABLE) - {"detect"}) | set(DETECTORS)


@pytest.mark.parametrize("stage", sorted(_presets()))
def test_every_field_has_a_meaning(stage):
    """A new settings field without an ``Attributes:`` entry in its class docstring fails here."""
    cls = type(_presets()[stage]("cpu-small"))
    docs = field_docs(cls)
    missing = [f.name for f in fields(cls) if not docs.get(f.name, "").strip()]
    assert not missing, f"{cls.__name__}: document {missing} in its docstring's Attributes"


def _parse(out: str) -> dict[str, dict[str, list[str]]]:
    """stage -> field -> [cpu-small, paper, meaning] from the printed columns."""
    tables: dict[str, dict[str, list[str]]] = {}
    stage = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            stage = line.split(" ")[0]
            tables[stage] = {}
        elif line.strip() and not line.strip().startswith("field "):
            cells = line.split()
            tables[stage][cells[0]] = line
    return tables


@pytest.mark.parametrize("stage", sorted(_presets()))
def test_cli_prints_each_field_with_both_preset_values(stage):
    r = CliRunner().invoke(main, ["settings", stage])
    assert r.exit_code == 0, r.output
    lines = _parse(r.output)[stage]
    small, paper = _presets()[stage]("cpu-small"), _presets()[stage]("paper")
    assert list(lines) == [f.name for f in fields(small)]
    for f in fields(small):
        cells = lines[f.name].split(None, 1)[1]
        for value in (getattr(small, f.name), getattr(paper, f.name)):
            # the value as `--set` reads it: JSON, tuples as lists, plain strings bare
            text = value if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)
            assert text in cells, (f.name, text, cells)


def test_known_values_by_hand():
    rows = {r.field: r for r in settings_rows(_presets()["pseudolidar"])}
    # pseudolidar.settings: cpu-small takes every second pixel up to 80 m, paper all pixels, no cut
    assert rows["stride_px"].values == {"cpu-small": "2", "paper": "1"}
    assert rows["max_depth_m"].values == {"cpu-small": "80.0", "paper": "null"}
    assert rows["stride_px"].meaning.startswith("keep every `stride_px`-th row")
    depth = {r.field: r for r in settings_rows(_presets()["depth"], ("paper",))}
    assert depth["scales"].values == {"paper": "[1.0, 1.2, 1.5, 1.8, 2.0]"}
    assert depth["max_steps"].meaning != "?"


def test_values_parse_back_through_set(tmp_path):
    """Every printed value, fed to ``--set``'s parser, gives the preset's value back."""
    from pipeline.commands.run_cmd import _parse_overrides

    for stage, fn in _presets().items():
        small = fn("cpu-small")
        for row in settings_rows(fn, ("cpu-small",)):
            got = _parse_overrides([f"{stage}.{row.field}={row.values['cpu-small']}"])[stage][row.field]
            assert got == getattr(small, row.field), (stage, row.field, got)


def test_preset_option_and_unknown_stage():
    r = CliRunner().invoke(main, ["settings", "pseudolidar", "--preset", "paper"])
    assert r.exit_code == 0
    header = r.output.splitlines()[1].split()
    assert header == ["field", "paper", "meaning"]
    bad = CliRunner().invoke(main, ["settings", "nope"])
    assert bad.exit_code == 2 and "unknown stage 'nope'" in bad.output


def test_field_docs_groups_and_continuations():
    @dataclass(frozen=True)
    class S:
        """Doc.

        Attributes:
            a, b: sizes
                in px.
            c: count. More text.

        Returns nothing.
        """

        a: int = 1
        b: int = 2
        c: int = 3
        d: int = 4

    assert field_docs(S) == {"a": "sizes in px.", "b": "sizes in px.", "c": "count. More text."}
