"""Issue 26's smaller ones: one-line errors for a missing --checkpoint / --depth, ``--points
lidar`` in ``foresee detect``, zeros in evals.json for a cloud without detections, progress bars
only on a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _foresee(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)


def test_missing_checkpoint_or_depth_is_one_line_naming_the_path(sample_root, tmp_path):
    work = tmp_path / "work"
    res = _foresee("depth", "infer", "--data", str(sample_root), "--split", str(_split(tmp_path)),
                   "--checkpoint", "missing.pth", "--workdir", str(work))
    assert res.returncode == 2
    assert res.stderr == (f"error: missing.pth: --checkpoint: no such file or folder, and no artifact of {work} "
                          "matches it (stage/key or a key prefix)\n")
    res = _foresee("pseudolidar", "--data", str(sample_root), "--split", str(_split(tmp_path)),
                   "--depth", "nowhere", "--workdir", str(work))
    assert res.returncode == 2 and res.stderr.startswith("error: nowhere: --depth: no such file or folder")
    assert res.stderr.count("\n") == 1


def _split(tmp_path: Path) -> Path:
    p = tmp_path / "three.txt"
    p.write_text("000000\n000001\n000002\n")
    return p


def test_points_lidar_is_the_roots_velodyne(sample_root, tmp_path):
    from kitti import KittiRoot
    from pipeline.cache import ArtifactCache
    from pipeline.commands.detect_cmd import _resolve_points

    root = KittiRoot(sample_root)
    frames = ("000000", "000001")
    cache = ArtifactCache(tmp_path / "work")
    assert _resolve_points(cache, "lidar", frames, root) == _resolve_points(cache, str(root.folder("velodyne")),
                                                                            frames, root)
    assert _resolve_points(cache, "lidar", frames, root)[0] == root.folder("velodyne")


def test_evals_json_holds_zeros_for_a_cloud_without_detections(tmp_path):
    from pipeline.report import write_table4

    car = {"bev": {"R11": [50.0, 40.0, 30.0], "R40": [51.0, 41.0, 31.0]},
           "3d": {"R11": [20.0, 10.0, 5.0], "R40": [21.0, 11.0, 6.0]}}
    write_table4({"fpointnet": {"lidar": {"Car": car}, "foresee": {}}}, tmp_path, title="t")
    evals = json.loads((tmp_path / "evals.json").read_text())["fpointnet"]
    zeros = {m: {r: [0.0, 0.0, 0.0] for r in ("R11", "R40")} for m in ("2d", "bev", "3d", "aos")}
    assert evals["lidar"] == {"Car": car, "Pedestrian": zeros, "Cyclist": zeros}  # Car untouched
    assert evals["foresee"] == {c: zeros for c in ("Car", "Pedestrian", "Cyclist")}
    table = (tmp_path / "table4.md").read_text()
    assert "0.0 / 0.0" in table


_PROGRESS = """
import sys
from pathlib import Path
import numpy as np
from kitti import KittiRoot, write_depth_npz
from pseudolidar.settings import preset
from pseudolidar.stage import run_pseudolidar
root, tmp = KittiRoot(sys.argv[1]), Path(sys.argv[2])
for f in ("000000", "000001"):
    write_depth_npz(tmp / "depth" / f"{f}.npz", np.full(root.image_hw(f), 10.0, np.float32))
run_pseudolidar(tmp / "depth", root.root, ("000000", "000001"), tmp / "out", preset("paper"), workers=1, progress=True)
"""


def test_progress_bars_only_on_a_terminal(sample_root, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    def run(tmp: Path, stderr) -> int:
        tmp.mkdir()
        (tmp / "depth").mkdir()
        return subprocess.run([sys.executable, "-c", _PROGRESS, str(sample_root), str(tmp)], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL,
                              stderr=stderr, timeout=300).returncode

    log = tmp_path / "log.txt"
    with open(log, "w") as f:  # a log file: no bar, no \r
        assert run(tmp_path / "a", f) == 0
    assert log.read_text() == ""
    master, slave = pty.openpty()  # a terminal (80 columns: tqdm draws nothing in 0): the bar
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        assert run(tmp_path / "b", slave) == 0
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert b"pseudo-LiDAR" in shown and b"2/2" in shown
