"""One version: `foresee --version`, pyproject, CHANGELOG.md's newest entry and every manifest agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from pipeline import __version__
from pipeline.cache import ArtifactCache
from pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_foresee_version_prints_the_package_version():
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"foresee, version {__version__}"


def test_changelog_newest_entry_is_this_version_and_pyproject_reads_it():
    headings = re.findall(r"^## (\d+\.\d+\.\d+)", (REPO / "CHANGELOG.md").read_text(), flags=re.M)
    assert headings and __version__.split(".dev")[0] == headings[0]
    assert len(set(headings)) == len(headings)  # one entry per version
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = {attr = "pipeline.__version__"}' in pyproject


def test_every_manifest_records_the_foresee_version(tmp_path):
    art = ArtifactCache(tmp_path).build("pl", code_version="1", settings={"a": 1}, inputs=[],
                                        produce=lambda out: (out / "x.txt").write_text("x") and None)
    manifest = json.loads((art.path / "manifest.json").read_text())
    assert manifest["versions"]["foresee"] == __version__
