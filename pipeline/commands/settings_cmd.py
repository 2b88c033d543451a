"""``foresee settings [STAGE] [--preset P]``: every field that ``foresee run --set STAGE.FIELD=VALUE``
accepts, with its value in each preset and one line of meaning.

Everything printed comes from the settings dataclasses themselves: the fields and values from
each stage's ``preset(name)``, the meaning from the dataclass docstring's ``Attributes:`` section
(:func:`kitti.settings_record.field_docs`). A field without a docstring entry prints ``?`` and is
a test failure (tests/pipeline/test_settings_cmd.py), so a new field cannot go undocumented.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Callable

import click

from kitti.settings_record import field_docs

PRESETS = ("cpu-small", "paper")


@dataclass(frozen=True)
class SettingsRow:
    """One field of one stage's settings.

    Attributes:
        field: the field name (``--set STAGE.field=VALUE``).
        values: preset name -> the value as ``--set`` reads it (JSON; a bare string stays bare).
        meaning: the first sentence of the field's docstring entry ("?" when it has none).
    """

    field: str
    values: dict[str, str]
    meaning: str


def _depth(name: str) -> Any:
    from depth.settings import preset
    return preset(name)


def _pseudolidar(name: str) -> Any:
    from pseudolidar.settings import preset
    return preset(name)


def _detect2d(name: str) -> Any:
    from detect2d.settings import preset
    return preset(name)


def stage_presets() -> dict[str, Callable[[str], Any]]:
    """``--set`` stage name -> preset function; the 3D detectors from the chain's registry."""
    from pipeline.stages import DETECTORS

    out: dict[str, Callable[[str], Any]] = {"depth": _depth, "pseudolidar": _pseudolidar, "detect2d": _detect2d}
    out.update({name: det.preset for name, det in DETECTORS.items()})
    return out


def format_value(value: Any) -> str:
    """A settings value as ``--set`` parses it back: JSON, except a plain string stays bare."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
        return json.dumps(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def first_sentence(text: str) -> str:
    """Text up to and including its first full stop followed by a space (or all of it)."""
    cut = text.find(". ")
    return text if cut < 0 else text[:cut + 1]


def settings_rows(preset_fn: Callable[[str], Any], presets: tuple[str, ...] = PRESETS) -> list[SettingsRow]:
    """One row per field of the stage's settings class, in declaration order."""
    records = {p: preset_fn(p) for p in presets}
    cls = type(next(iter(records.values())))
    docs = field_docs(cls)
    return [SettingsRow(f.name, {p: format_value(getattr(r, f.name)) for p, r in records.items()},
                        first_sentence(docs[f.name].replace("``", "`")) if f.name in docs else "?")
            for f in fields(cls)]


def render(stage: str, rows: list[SettingsRow], cls_name: str) -> str:
    """A stage's rows as aligned text columns under a one-line heading."""
    presets = list(rows[0].values) if rows else []
    head = ["field", *presets, "meaning"]
    table = [head] + [[r.field, *r.values.values(), r.meaning] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    lines = [f"{stage} ({cls_name}; --set {stage}.FIELD=VALUE)"]
    for row in table:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return "\n".join(lines)


@click.command("settings")
@click.argument("stage", required=False)
@click.option("--preset", "presets", type=click.Choice(PRESETS), multiple=True,
              help="Show this preset's column only (repeatable) [both].")
def settings_command(stage: str | None, presets: tuple[str, ...]) -> None:
    """Every setting `foresee run --set STAGE.FIELD=VALUE` accepts, with its preset values.

    STAGE: depth, pseudolidar, detect2d, or a 3D detector (fpointnet, avod); all when left out.
    `--set detect.FIELD=...` reaches every 3D detector of the run that has FIELD. Depth values are
    the `foresee` variant's (the chain sets `variant` per depth model).
    """
    stages = stage_presets()
    if stage is not None and stage not in stages:
        known = ", ".join(stages)
        raise click.BadParameter(f"unknown stage {stage!r}; known: {known} (detect.X: every 3D detector)",
                                 param_hint="STAGE")
    chosen = presets or PRESETS
    blocks = []
    for name in ([stage] if stage else list(stages)):
        rows = settings_rows(stages[name], chosen)
        blocks.append(render(name, rows, type(stages[name](chosen[0])).__name__))
    click.echo("\n\n".join(blocks))
