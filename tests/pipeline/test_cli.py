"""The `foresee` console script: help, version, cache commands, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipeline import __version__
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_version_and_help():
    r = _run("--version")
    assert r.returncode == 0 and __version__ in r.stdout
    r = _run("--help")
    assert r.returncode == 0 and "cache" in r.stdout


def test_cache_ls_empty(tmp_path):
    r = CliRunner().invoke(main, ["cache", "ls", "--workdir", str(tmp_path)])
    assert r.exit_code == 0 and "empty cache" in r.output


def test_cache_show_unknown_ref_is_one_line_error(tmp_path):
    r = _run("cache", "show", "nope", "--workdir", str(tmp_path))
    assert r.returncode != 0
    assert "no artifact match 'nope'" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
