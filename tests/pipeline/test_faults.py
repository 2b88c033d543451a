"""Fault injection: a run killed (SIGKILL) at random points and re-run gives the artifacts of an
uninterrupted run; a corrupted cached file is detected and rebuilt; hits are checked by stat,
by hash after a crash and in ``foresee cache verify``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cache import ArtifactCache

REPO = Path(__file__).resolve().parents[2]

#: A 4-stage chain of deterministic, slow-ish stages (each writes 25 files, 5 ms apart), run by
#: pipeline.executor.execute in a subprocess; argv: workdir.
_CHAIN = textwrap.dedent("""
    import hashlib, sys, time
    from pathlib import Path
    from pipeline.cache import ArtifactCache
    from pipeline.executor import StageSpec, execute

    def make(name):
        def produce(out, deps):
            seed = name + "".join(sorted((d.path / "000.txt").read_text() for d in deps.values()))
            for i in range(25):
                (out / f"{i:03d}.txt").write_text(hashlib.sha256(f"{seed}{i}".encode()).hexdigest())
                time.sleep(0.005)
            return {"files": 25}
        return produce

    specs = [
        StageSpec("depth", "depth", "1", {"v": 1}, (), ("data:x",), make("depth")),
        StageSpec("pl", "pseudolidar", "1", {"h": 1.0}, ("depth",), (), make("pl")),
        StageSpec("det", "detect", "1", {}, ("pl",), (), make("det")),
        StageSpec("eval", "eval", "1", {}, ("det",), ("data:lbl",), make("eval")),
    ]
    execute(specs, ArtifactCache(sys.argv[1]), log=lambda s: print(s, flush=True))
""")


def _count_written(work: Path) -> int:
    return sum(1 for _ in work.rglob("*.txt")) if work.exists() else 0


def _run_killed(cmd: list[str], timeout: float, *, kill_after: float | None = None,
                kill_at_files: int | None = None, work: Path | None = None) -> int:
    """Run ``cmd`` (repo on PYTHONPATH) and SIGKILL it after ``kill_after`` seconds, or once
    ``kill_at_files`` new .txt files exist under ``work`` (progress, not wall time: a loaded machine
    still kills mid-run); its return code."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = _count_written(work) if work is not None else 0
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while (kill_after is not None or kill_at_files is not None) and proc.poll() is None:
        now = time.monotonic()
        if now - t0 > timeout:
            break
        if (kill_after is not None and now - t0 >= kill_after) or (
                kill_at_files is not None and _count_written(work) - start >= kill_at_files):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    return proc.wait(timeout=timeout)


def _run_chain(work: Path, kill_at_files: int | None = None) -> int:
    return _run_killed([sys.executable, "-c", _CHAIN, str(work)], 120, kill_at_files=kill_at_files, work=work)


def _final_files(work: Path) -> dict[str, str]:
    """relative path -> content of every finished artifact's files (manifests left out: they
    carry times)."""
    out = {}
    for stage, name, path in ArtifactCache(work).entries():
        assert ".tmp-" not in name, name
        if ".corrupt-" in name:
            continue
        for p in sorted(path.rglob("*.txt")):
            out[f"{stage}/{name}/{p.relative_to(path)}"] = p.read_text()
    return out


def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(tmp_path):
    ref = tmp_path / "ref"
    assert _run_chain(ref) == 0
    expected = _final_files(ref)
    assert len(expected) == 4 * 25
    rng = random.Random(15)
    work = tmp_path / "work"
    kills = 0
    for _ in range(3):  # kill at random points of progress (files written), then go on
        if _run_chain(work, kill_at_files=rng.randint(1, 30)) == -signal.SIGKILL:
            kills += 1
        # nothing half-written ever looks finished
        for r in ArtifactCache(work).ls():
            assert r["state"] in ("done", "partial"), r
    assert kills >= 1
    assert _run_chain(work) == 0
    assert _final_files(work) == expected
    assert not (work / ".runs").exists() or not list((work / ".runs").iterdir())


def test_corrupt_byte_is_detected_and_rebuilt(tmp_path):
    work = tmp_path / "work"
    assert _run_chain(work) == 0
    expected = _final_files(work)
    victim = next(p for p in (work / "pseudolidar").rglob("017.txt"))
    with open(victim, "r+b") as f:  # one byte changed in place: same size, new mtime
        f.seek(3)
        b = f.read(1)
        f.seek(3)
        f.write(bytes([b[0] ^ 0x01]))
    assert _run_chain(work) == 0
    assert _final_files(work) == expected  # rebuilt; the corrupt copy is moved aside...
    assert any(r["state"] == "corrupt" for r in ArtifactCache(work).ls())
    assert ArtifactCache(work).gc()  # ... and removed by gc


def _artifact(work: Path):
    return ArtifactCache(work).build("pl", code_version="1", settings={"a": 1}, inputs=[],
                                     produce=lambda out: (out / "a.bin").write_bytes(b"\0" * 4096) and None)


def _corrupt_keeping_mtime(path: Path) -> None:
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_hits_are_checked_by_stat_without_reading_files(tmp_path, monkeypatch):
    import pipeline.cache as cache_mod

    a = _artifact(tmp_path)
    calls = []
    real = cache_mod.file_digest
    monkeypatch.setattr(cache_mod, "file_digest", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    assert ArtifactCache(tmp_path).lookup("pl", a.key) is not None
    assert calls == []
    os.utime(a.path / "a.bin")  # touched: re-hashed (once), still intact
    assert ArtifactCache(tmp_path).lookup("pl", a.key) is not None and len(calls) == 1


def test_after_a_crash_hits_are_rehashed_and_cache_verify_finds_what_stat_cannot(tmp_path):
    from pipeline.cli import main

    a = _artifact(tmp_path)
    _corrupt_keeping_mtime(a.path / "a.bin")  # what a power loss can leave: size and mtime intact
    assert ArtifactCache(tmp_path).lookup("pl", a.key) is not None  # stat cannot see it
    # a run that died (its marker left behind, pid gone) -> the next hit is verified by hash
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / ".runs").mkdir()
    (tmp_path / ".runs" / dead).write_text("")
    assert ArtifactCache(tmp_path).after_crash()
    assert ArtifactCache(tmp_path).lookup("pl", a.key) is None  # corrupt: moved aside

    b = _artifact(tmp_path)
    _corrupt_keeping_mtime(b.path / "a.bin")
    r = CliRunner().invoke(main, ["cache", "verify", "--workdir", str(tmp_path)])
    assert r.exit_code == 1
    assert f"corrupt pl/{b.key}" in r.output and "a.bin: content differs" in r.output
    assert ArtifactCache(tmp_path).lookup("pl", b.key) is None
    c = _artifact(tmp_path)
    r = CliRunner().invoke(main, ["cache", "verify", "--workdir", str(tmp_path)])
    assert r.exit_code == 0 and "1 intact, 0 corrupt" in r.output and c.path.is_dir()


@pytest.mark.slow
def test_real_chain_killed_at_random_points_equals_uninterrupted(tmp_path):
    """``foresee run`` (LiDAR + oracle rows, tiny render) SIGKILLed 4 times at random moments."""
    from synth import render_dataset
    from synth.settings import SynthSettings

    root = tmp_path / "tiny"
    render_dataset(root, SynthSettings(frames_train=6, frames_val=3, image_scale=0.5, seed=3),
                   workers=1, progress=False)
    def run(work: Path, kill_after: float | None = None) -> int:
        return _run_killed([sys.executable, "-m", "pipeline", "run", "--data", str(root), "--clouds",
                            "lidar,oracle", "--set", "detect.epochs=1", "--workdir", str(work)], 600,
                           kill_after=kill_after)

    def results(work: Path) -> dict[str, bytes]:
        out = {}
        for stage in ("detect-infer", "eval", "pseudolidar"):
            for p in sorted((work / stage).rglob("*")):
                if p.is_file() and p.name != "manifest.json" and ".corrupt-" not in str(p):
                    assert ".tmp-" not in str(p)
                    out[str(p.relative_to(work))] = p.read_bytes()
        return out

    t0 = time.time()
    assert run(tmp_path / "ref") == 0
    full = time.time() - t0
    expected = results(tmp_path / "ref")
    rng = random.Random(150)
    work = tmp_path / "work"
    for _ in range(4):
        run(work, kill_after=rng.uniform(0.1, 1.0) * full)
    assert run(work) == 0
    assert results(work) == expected
