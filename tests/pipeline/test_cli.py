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


def test_artifact_from_another_dataset_is_refused_before_work(tmp_path):
    """A cloud artifact made from one dataset cannot be fed to a stage on another."""
    import shutil

    from click.testing import CliRunner

    from kitti import KittiRoot, read_velodyne

    sample = ROOT / "tests" / "data" / "kitti_sample"
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(sample, a)
    shutil.copytree(sample, b)
    # dataset b differs in one label file
    lbl = b / "training" / "label_2" / "000000.txt"
    lbl.write_text(lbl.read_text().replace("Pedestrian", "Cyclist"))
    work = tmp_path / "work"
    # a "pseudo-LiDAR" artifact of dataset a: its own scans, through the real command's cache
    from pipeline.cache import ArtifactCache
    from pipeline.commands.cache_cmd import dataset_fields

    root_a = KittiRoot(a)

    def produce(out):
        (out / "velodyne").mkdir()
        for f in root_a.frame_ids():
            shutil.copy(root_a.path("velodyne", f), out / "velodyne" / f"{f}.bin")

    art = ArtifactCache(work).build("pseudolidar", code_version="1", settings={}, inputs=[],
                                    produce=produce, extra_manifest=dataset_fields(root_a))
    assert read_velodyne(art.path / "velodyne" / "000001.bin").shape[1] == 4
    ok = CliRunner().invoke(main, ["show", art.ref, "000001", "--data", str(a), "--png",
                                   str(tmp_path / "ok.png"), "--workdir", str(work)])
    assert ok.exit_code == 0, ok.output
    r = _run("show", art.ref, "000001", "--data", str(b), "--png", str(tmp_path / "x.png"),
             "--workdir", str(work))
    assert r.returncode == 2
    assert "was made from another dataset" in r.stderr and not (tmp_path / "x.png").exists()
