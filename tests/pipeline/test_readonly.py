"""A workdir this process cannot write: a fully cached run reads it (report elsewhere); anything
that would write there stops with one line, "workdir W is not writable", exit code 2.

Tests run as root in some places, where ``chmod`` does not stop writes: the writability check is
``pipeline.cache.workdir_writable`` (``os.access``), so most tests make ``os.access`` say no for
the workdir; the real ``chmod`` test runs only as a normal user."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import pipeline.cache as cache_mod
from pipeline.cache import CacheError, workdir_writable
from pipeline.run import run_chain
from pipeline.stages import RunConfig


def _read_only(monkeypatch, workdir: Path) -> None:
    """``os.access`` says no for ``workdir`` and everything in it (as chmod a-w would)."""
    real = os.access
    top = str(Path(workdir).absolute())

    def access(path, mode, *a, **k):
        p = str(Path(path).absolute())
        if mode & os.W_OK and (p == top or p.startswith(top + os.sep)):
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(cache_mod.os, "access", access)


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_workdir_writable_looks_at_the_nearest_existing_folder(tmp_path, monkeypatch):
    assert workdir_writable(tmp_path / "not" / "yet")
    _read_only(monkeypatch, tmp_path)
    assert not workdir_writable(tmp_path / "not" / "yet")
    assert not workdir_writable(tmp_path)
    with pytest.raises(CacheError, match=f"^workdir {tmp_path} is not writable$"):
        cache_mod.check_writable(tmp_path)


def test_fully_cached_run_reads_a_read_only_workdir(tiny_root, tmp_path, monkeypatch):
    work = tmp_path / "work"
    cfg = RunConfig(data_root=tiny_root, clouds=("lidar",), boxes2d="simulated",
                    overrides={"detect": {"epochs": 1}})
    first = run_chain(cfg, work)
    before = _snapshot(work)
    _read_only(monkeypatch, work)
    report = tmp_path / "elsewhere"
    again = run_chain(cfg, work, report_dir=report)
    assert all(s["cached"] for s in again["stages"].values())
    assert again["stages"].keys() == first["stages"].keys()
    assert (report / "report.md").is_file()
    assert _snapshot(work) == before  # nothing written, not even a run marker
    with pytest.raises(CacheError, match=f"^workdir {work} is not writable .*give --report"):
        run_chain(cfg, work)  # the report would go into the workdir
    from pipeline.run import write_reports

    assert write_reports(cfg, work, report_dir=tmp_path / "table4") == tmp_path / "table4"  # foresee table4
    with pytest.raises(CacheError, match=f"^report folder {work / 'report'} is not writable"):
        write_reports(cfg, work)
    changed = RunConfig(data_root=tiny_root, clouds=("lidar",), boxes2d="simulated",
                        overrides={"detect": {"epochs": 2}})
    with pytest.raises(CacheError, match=f"^workdir {work} is not writable$"):
        run_chain(changed, work, report_dir=report)  # a stage to build: stop before it
    assert _snapshot(work) == before


def test_stage_command_on_read_only_workdir_is_one_line(tiny_root, tmp_path, monkeypatch, capsys):
    from pipeline.cli import cli_entry

    work = tmp_path / "work"
    work.mkdir()
    _read_only(monkeypatch, work)
    monkeypatch.setattr(sys, "argv", ["foresee", "pseudolidar", "--data", str(tiny_root), "--from-gt-depth",
                                      "--workdir", str(work), "--quiet"])
    with pytest.raises(SystemExit) as e:
        cli_entry()
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: workdir {work} is not writable\n"
    assert list(work.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod a-w")
def test_real_chmod(tiny_root, tmp_path):
    import subprocess

    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o555)
    try:
        res = subprocess.run([sys.executable, "-m", "pipeline", "pseudolidar", "--data", str(tiny_root),
                              "--from-gt-depth", "--workdir", str(work), "--quiet"], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    finally:
        work.chmod(0o755)
    assert res.returncode == 2 and res.stderr == f"error: workdir {work} is not writable\n"
