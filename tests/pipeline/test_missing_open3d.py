"""A machine where open3d cannot load (no libusb-1.0) gets one line from `foresee synth`, exit 2,
not a traceback per render worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# open3d's import fails as it does without libusb-1.0 (the shared library cannot be opened)
_NO_LIBUSB = textwrap.dedent("""
    import builtins, sys
    real = builtins.__import__
    def fake(name, *a, **k):
        if name == "open3d" or name.startswith("open3d."):
            raise OSError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")
        return real(name, *a, **k)
    builtins.__import__ = fake
    sys.argv = ["foresee", "synth", "--out", sys.argv[1], "--frames-train", "2", "--frames-val", "2",
                "--image-scale", "0.25", "--workers", "2", "--quiet"]
    from pipeline.cli import cli_entry
    cli_entry()
""")


def test_synth_without_libusb_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-c", _NO_LIBUSB, str(tmp_path / "out")], capture_output=True, text=True,
                       cwd=REPO, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "open3d cannot be imported" in lines[0] and "libusb-1.0" in lines[0]
    assert not (tmp_path / "out" / "training" / "image_2").is_dir() or not any(
        (tmp_path / "out" / "training" / "image_2").iterdir())
