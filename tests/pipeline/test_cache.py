"""The artifact cache (pipeline/cache.py): keys, atomic builds, verified hits, gc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cache import ArtifactCache, CacheError, make_key


@dataclass(frozen=True)
class _Settings:
    max_height_m: float = 1.0
    name: str = "x"


def _produce(text: str = "hello"):
    def produce(out: Path):
        (out / "sub").mkdir()
        (out / "sub" / "a.txt").write_text(text)
        (out / "b.bin").write_bytes(b"\0" * 100)
        return {"frames": 2}
    return produce


def test_make_key_depends_on_every_part():
    base = make_key("pl", "1", _Settings(), ["depth/abc"])
    assert base == make_key("pl", "1", _Settings(), ["depth/abc"])
    assert len({base, make_key("pl", "2", _Settings(), ["depth/abc"]),
                make_key("pl", "1", _Settings(max_height_m=2.0), ["depth/abc"]),
                make_key("pl", "1", _Settings(), ["depth/abd"]),
                make_key("xx", "1", _Settings(), ["depth/abc"])}) == 5


def test_build_then_hit(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def produce(out):
        calls.append(1)
        return _produce()(out)

    a = cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=produce)
    assert not a.cached and (a.path / "manifest.json").is_file()
    assert a.manifest["summary"] == {"frames": 2}
    assert set(a.manifest["files"]) == {"sub/a.txt", "b.bin"}
    b = cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=produce)
    assert b.cached and b.path == a.path and len(calls) == 1


def test_failed_build_leaves_nothing(tmp_path):
    cache = ArtifactCache(tmp_path)

    def produce(out):
        (out / "half.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=produce)
    assert list((tmp_path / "pl").iterdir()) == []


def test_corrupted_file_is_not_a_hit(tmp_path):
    cache = ArtifactCache(tmp_path)
    a = cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=_produce())
    (a.path / "sub" / "a.txt").write_text("HELLO")  # same size, other content
    assert cache.lookup("pl", a.key) is None
    b = cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=_produce())
    assert not b.cached and (b.path / "sub" / "a.txt").read_text() == "hello"
    assert any(r["state"] == "corrupt" for r in cache.ls())
    assert len(cache.gc()) == 1


def test_missing_manifest_is_not_a_hit(tmp_path):
    cache = ArtifactCache(tmp_path)
    a = cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=_produce())
    (a.path / "manifest.json").unlink()
    assert cache.lookup("pl", a.key) is None


_WRITER = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    from pipeline.cache import ArtifactCache

    # a process started in the background (nohup, CI runners) inherits SIGINT ignored: restore
    # Python's KeyboardInterrupt so the test sends the Ctrl-C a user would
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def produce(out: Path):
        for i in range(1000):
            (out / f"{i:06d}.bin").write_bytes(b"x" * 1000)
            if i == 5:
                Path(sys.argv[2]).write_text("started")
            time.sleep(0.01)

    ArtifactCache(sys.argv[1]).build("pl", code_version="1", settings={"a": 1}, inputs=[],
                                     produce=produce)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_writer_leaves_nothing_that_looks_done(tmp_path, sig):
    flag = tmp_path / "started"
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(work), str(flag)], env=env)
    deadline = time.time() + 60
    while not flag.exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    cache = ArtifactCache(work)
    key = make_key("pl", "1", {"a": 1}, [])
    assert cache.lookup("pl", key) is None
    states = {r["state"] for r in cache.ls()}
    assert "done" not in states
    # the next run resumes cleanly: stale temp folders of dead writers are removed
    art = cache.build("pl", code_version="1", settings={"a": 1}, inputs=[],
                      produce=lambda out: (out / "ok.txt").write_text("ok") and None)
    assert not art.cached and [r["state"] for r in cache.ls()] == ["done"]


def test_resolve_by_ref_prefix_and_path(tmp_path):
    cache = ArtifactCache(tmp_path)
    a = cache.build("pl", code_version="1", settings=_Settings(), inputs=[], produce=_produce())
    assert cache.resolve(a.ref).path == a.path
    assert cache.resolve(a.key[:6]).path == a.path
    assert cache.resolve(str(a.path)).key == a.key
    with pytest.raises(CacheError, match="no artifact match"):
        cache.resolve("nothing")


def test_manifest_records_inputs_and_settings(tmp_path):
    cache = ArtifactCache(tmp_path)
    a = cache.build("pl", code_version="7", settings=_Settings(), inputs=["depth/k1"], produce=_produce())
    m = json.loads((a.path / "manifest.json").read_text())
    assert m["inputs"] == ["depth/k1"] and m["code_version"] == "7"
    assert m["settings"]["max_height_m"] == "1.0"
