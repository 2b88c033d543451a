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
#: pipeline.executor.execute in a subprocess; argv: workdir [build log [--no-wait [seconds per file]]].
#: Each build appends "<stage> <pid>" to the build log; --no-wait: exit 2 on a busy artifact.
_CHAIN = textwrap.dedent("""
    import hashlib, os, sys, time
    from pathlib import Path
    from pipeline.cache import ArtifactCache, CacheError
    from pipeline.executor import StageSpec, execute

    build_log = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    wait = not (len(sys.argv) > 3 and sys.argv[3] == "--no-wait")
    pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.005

    def make(name):
        def produce(out, deps):
            if build_log is not None:
                with open(build_log, "a") as f:
                    f.write(f"{name} {os.getpid()}\\n")
            seed = name + "".join(sorted((d.path / "000.txt").read_text() for d in deps.values()))
            for i in range(25):
                (out / f"{i:03d}.txt").write_text(hashlib.sha256(f"{seed}{i}".encode()).hexdigest())
                time.sleep(pause)
            return {"files": 25}
        return produce

    specs = [
        StageSpec("depth", "depth", "1", {"v": 1}, (), ("data:x",), make("depth")),
        StageSpec("pl", "pseudolidar", "1", {"h": 1.0}, ("depth",), (), make("pl")),
        StageSpec("det", "detect", "1", {}, ("pl",), (), make("det")),
        StageSpec("eval", "eval", "1", {}, ("det",), ("data:lbl",), make("eval")),
    ]
    log = lambda s: print(s, flush=True)
    try:
        execute(specs, ArtifactCache(sys.argv[1], wait=wait, log=log), log=log)
    except CacheError as e:
        print(f"error: {e}", flush=True)
        sys.exit(2)
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


# ---------------------------------------------------------------- two runs on one workdir (locks)
def _start_chain(work: Path, build_log: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", _CHAIN, str(work), str(build_log), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_a_build(work: Path, timeout: float = 60) -> None:
    """Until some artifact is being written under ``work`` (a ``.tmp-`` folder with a file)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if work.is_dir() and any(p.is_dir() and ".tmp-" in p.name and any(p.iterdir())
                                 for stage in work.iterdir() if stage.is_dir() for p in stage.iterdir()):
            return
        time.sleep(0.005)
    raise AssertionError("no build started")


def test_two_runs_on_one_workdir_build_every_artifact_once(tmp_path):
    work, builds = tmp_path / "work", tmp_path / "builds.log"
    first = _start_chain(work, builds, "--wait", "0.03")  # ~0.75 s per stage
    _wait_for_a_build(work)
    second = _start_chain(work, builds, "--wait", "0.03")
    out1, _ = first.communicate(timeout=120)
    out2, _ = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (out1, out2)
    built = [line.split()[0] for line in builds.read_text().splitlines()]
    assert sorted(built) == ["depth", "det", "eval", "pl"]  # each once, by one run or the other
    waited = [line for line in (out1 + out2).splitlines() if "waiting for it" in line]
    assert waited and all("is being built by pid " in line for line in waited), out2
    assert "cached" in out2
    expected = tmp_path / "ref"
    assert _run_chain(expected) == 0
    assert _final_files(work) == _final_files(expected)


def test_no_wait_stops_with_exit_2_while_another_run_builds(tmp_path):
    work, builds = tmp_path / "work", tmp_path / "builds.log"
    first = _start_chain(work, builds, "--wait", "0.03")
    _wait_for_a_build(work)
    second = _start_chain(work, builds, "--no-wait")
    out2, _ = second.communicate(timeout=120)
    first.communicate(timeout=120)
    assert second.returncode == 2, out2
    assert f"is being built by pid {first.pid} on this workdir; not waiting (--no-wait)" in out2
    assert [line.split()[1] for line in builds.read_text().splitlines()] == [str(first.pid)] * 4


def test_a_holder_killed_by_sigkill_does_not_block_the_next_run(tmp_path):
    work, builds = tmp_path / "work", tmp_path / "builds.log"
    holder = _start_chain(work, builds, "--wait", "0.5")  # 12 s per stage: killed inside the first
    _wait_for_a_build(work)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert list((work / ".locks").iterdir())  # its lock file stays; the kernel dropped the lock
    nxt = _start_chain(work, builds, "--no-wait")
    out, _ = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, out
    assert [line.split()[0] for line in builds.read_text().splitlines()] == ["depth", "depth", "pl", "det", "eval"]
