"""The artifact cache: content-addressed stage outputs that are never half-written.

Layout: ``<workdir>/<stage>/<key>/`` where ``key`` is a short hash of (stage name, stage code
version, settings, the keys of its input artifacts or the fingerprint of raw data).

Writing protocol (see :meth:`ArtifactCache.build`):

1. the stage writes into ``<workdir>/<stage>/<key>.tmp-<pid>-<nonce>/``;
2. ``manifest.json`` is written last (inputs, settings, every file with size and hash, timings,
   versions) through a temp file and a rename;
3. the folder is renamed to ``<key>/``.

An interrupted stage therefore leaves only a ``.tmp-*`` folder, which is never taken as done and
is removed by the next build of the same key (when its writer is gone; a training's
``checkpoint.pt`` in it is kept as ``<key>.resume.pt``, see :mod:`pipeline.resume`) or by
``foresee cache gc``.

Verifying a hit (``verify=``):

* ``"stat"`` (the default, what ``foresee run`` plans and executes with): the manifest parses and
  every file it lists exists with the recorded size and ``st_mtime_ns``; a file whose size
  matches but whose mtime differs (touched, copied without ``-p``, rewritten) is re-hashed and
  accepted only if its blake2b hash matches. Cost: one ``stat`` per file, no reads.
* ``"hash"``: every file is re-hashed (``foresee cache verify``). ``ArtifactCache`` switches to
  it by itself **after a crash**: when a dead writer's ``.tmp-*`` folder or a dead run's marker
  (``<workdir>/.runs/<pid>``, see :meth:`ArtifactCache.running`) is found, because a machine
  crash can leave a renamed folder whose files have their size but not their data.
* ``"size"``: sizes only (``foresee cache ls``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

from pipeline import __version__

MANIFEST = "manifest.json"
Verify = Literal["hash", "stat", "size"]
RUNS = ".runs"


class CacheError(RuntimeError):
    """A cache entry is corrupt or a build failed in a way the cache cannot recover."""


def _canonical(obj: Any) -> Any:
    """JSON-able canonical form of settings (dataclasses, tuples, Paths, floats)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, PathLike):
        return os.fspath(obj)
    if isinstance(obj, float):
        return repr(obj)
    return obj


def make_key(stage: str, code_version: str, settings: Any, inputs: Sequence[str]) -> str:
    """The cache key: 16 hex digits of sha256 over the canonical JSON of everything that decides
    the artifact's content."""
    blob = json.dumps({"stage": stage, "code_version": code_version,
                       "settings": _canonical(settings), "inputs": list(inputs)},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """blake2b-128 hex digest of a file."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A finished, verified artifact.

    Attributes:
        stage: the stage that made it.
        key: its cache key.
        path: the artifact folder (read-only by convention).
        manifest: the parsed ``manifest.json``.
        cached: True when this call found it in the cache, False when it was just built.
    """

    stage: str
    key: str
    path: Path
    manifest: Mapping[str, Any]
    cached: bool = True

    @property
    def ref(self) -> str:
        """``stage/key``, the id other artifacts use as an input reference."""
        return f"{self.stage}/{self.key}"


class ArtifactCache:
    """Content-addressed, atomically written artifacts under one work folder.

    Args:
        workdir: the cache root (created on demand).
        verify: how a hit is verified (module docstring): ``"stat"`` (default; ``"hash"`` after a
            crash), ``"hash"`` or ``"size"``.
    """

    def __init__(self, workdir: str | PathLike[str], verify: Verify = "stat", *, wait: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.workdir = Path(workdir)
        self.verify = verify
        self.wait = wait
        self.log = log if log is not None else (lambda line: print(line, file=sys.stderr, flush=True))
        self._after_crash: bool | None = None

    # ------------------------------------------------------------------ crash evidence
    def after_crash(self) -> bool:
        """True when a writer or a run of this workdir died without cleaning up (checked once)."""
        if self._after_crash is None:
            dead = [p for p in self._run_markers() if not _pid_alive(_int(p.name))]
            if not dead and self.workdir.is_dir():
                for stage_dir in (p for p in self.workdir.iterdir() if p.is_dir() and p.name != RUNS):
                    for entry in stage_dir.glob("*.tmp-*"):
                        pid = _pid_of_tmp(entry.name)
                        if pid is None or not _pid_alive(pid):
                            dead.append(entry)
                            break
                    if dead:
                        break
            self._after_crash = bool(dead)
        return self._after_crash

    def _run_markers(self) -> list[Path]:
        d = self.workdir / RUNS
        return sorted(d.iterdir()) if d.is_dir() else []

    def _effective_verify(self, verify: Verify | None) -> Verify:
        verify = verify or self.verify
        return "hash" if verify == "stat" and self.after_crash() else verify

    @contextmanager
    def running(self) -> Iterator[None]:
        """Mark a run in progress (``<workdir>/.runs/<pid>``): a marker left behind by a killed run
        makes the next run verify its hits by hash. A run that ends (even by an exception)
        removes its marker and, having verified by hash what it used, the dead runs' markers.
        On a workdir this process cannot write (a shared, read-only cache) nothing is marked:
        such a run can only read, and a build raises "workdir W is not writable"."""
        if not workdir_writable(self.workdir):
            yield
            return
        runs = self.workdir / RUNS
        runs.mkdir(parents=True, exist_ok=True)
        mine = runs / str(os.getpid())
        mine.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        try:
            yield
            for p in self._run_markers():
                if p != mine and not _pid_alive(_int(p.name)):
                    p.unlink(missing_ok=True)
        finally:
            mine.unlink(missing_ok=True)

    # ------------------------------------------------------------------ lookup
    def entry_path(self, stage: str, key: str) -> Path:
        return self.workdir / stage / key

    def lookup(self, stage: str, key: str) -> Artifact | None:
        """The verified artifact for (stage, key), or None when absent or corrupt.

        A corrupt entry (manifest missing or unreadable, a file missing or changed) is moved
        aside to ``<key>.corrupt-<nonce>`` so that it is rebuilt, never trusted.
        """
        path = self.entry_path(stage, key)
        if not path.is_dir():
            return None
        manifest, problem = self._checked(path, self._effective_verify(None))
        if problem is not None:
            self.move_aside(path)
            return None
        return Artifact(stage, key, path, manifest, cached=True)

    def move_aside(self, path: Path) -> Path | None:
        """Rename a corrupt entry to ``<key>.corrupt-<nonce>`` (never trusted, removed by gc)."""
        aside = path.with_name(f"{path.name}.corrupt-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(path, aside)
        except OSError:
            return None
        return aside

    def check(self, path: Path, verify: Verify | None = None) -> str | None:
        """None when the artifact at ``path`` is intact, else a one-line description."""
        return self._checked(path, self._effective_verify(verify))[1]

    def stat_verified_manifest(self, path: Path) -> dict | None:
        """The manifest of the intact artifact at ``path`` checked by size and mtime (re-hashing
        only files whose mtime changed), never upgraded to a full re-hash; None when it is not
        intact. What planning uses."""
        if not path.is_dir():
            return None
        manifest, problem = self._checked(path, "stat")
        return manifest if problem is None else None

    def planned_hit(self, stage: str, key: str, manifest: Mapping[str, Any]) -> Artifact | None:
        """The artifact a plan of this run found intact by stat, without checking it again, or
        None after a crash (then every hit must be re-hashed by :meth:`lookup`)."""
        if self.after_crash():
            return None
        return Artifact(stage, key, self.entry_path(stage, key), manifest, cached=True)

    def _checked(self, path: Path, verify: Verify) -> tuple[dict, str | None]:
        mpath = path / MANIFEST
        try:
            manifest = json.loads(mpath.read_text())
            files = manifest["files"]
            items = files.items()
        except FileNotFoundError:
            return {}, f"{mpath}: manifest missing"
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return {}, f"{mpath}: manifest unreadable ({e})"
        for rel, meta in items:
            p = path / rel
            try:
                st = os.stat(p)
            except FileNotFoundError:
                return manifest, f"{p}: listed in the manifest but missing"
            if st.st_size != meta["size"]:
                return manifest, f"{p}: size {st.st_size} != {meta['size']} in the manifest"
            rehash = verify == "hash" or (verify == "stat" and st.st_mtime_ns != meta.get("mtime_ns"))
            if rehash and file_digest(p) != meta["blake2b"]:
                return manifest, f"{p}: content differs from the manifest's hash"
        return manifest, None

    def verify_all(self) -> list[tuple[str, str]]:
        """Re-hash every finished entry (``foresee cache verify``); corrupt ones are moved aside.
        Returns ``(stage/key, problem)`` of each corrupt entry."""
        bad = []
        for stage, name, path in list(self.entries()):
            if ".tmp-" in name or ".corrupt-" in name:
                continue
            problem = self._checked(path, "hash")[1]
            if problem is not None:
                self.move_aside(path)
                bad.append((f"{stage}/{name}", problem))
        return bad

    # ------------------------------------------------------------------ build
    def build(self, stage: str, *, code_version: str, settings: Any, inputs: Sequence[str],
              produce: Callable[[Path], Mapping[str, Any] | None],
              extra_manifest: Mapping[str, Any] | None = None) -> Artifact:
        """Return the cached artifact for these inputs, or build it.

        A build holds the artifact's lock (:mod:`pipeline.lock`): when another process is
        building the same key, this one waits for it (one line through ``log``) and takes its
        artifact from the cache, or, with ``wait=False``, raises :class:`CacheError`.

        Args:
            stage: stage name (a folder name).
            code_version: the stage's code version string (bump it when outputs change).
            settings: the stage's frozen settings dataclass (or a mapping).
            inputs: references of the input artifacts (``stage/key``) and raw-data fingerprints.
            produce: writes the artifact's files into the folder it is given; may return a
                mapping of summary figures recorded in the manifest under ``summary``.
            extra_manifest: more fields to record in the manifest.
        """
        from pipeline.lock import LockBusy, artifact_lock

        key = make_key(stage, code_version, settings, inputs)
        hit = self.lookup(stage, key)
        if hit is not None:
            return hit
        check_writable(self.workdir)
        try:
            with artifact_lock(self.workdir, stage, key, wait=self.wait, on_wait=self.log):
                hit = self.lookup(stage, key)  # built by the run we waited for
                if hit is not None:
                    return hit
                return self._build_locked(stage, key, code_version, settings, inputs, produce, extra_manifest)
        except LockBusy as e:
            raise CacheError(f"{e}; not waiting (--no-wait)") from None

    def _build_locked(self, stage: str, key: str, code_version: str, settings: Any, inputs: Sequence[str],
                      produce: Callable[[Path], Mapping[str, Any] | None],
                      extra_manifest: Mapping[str, Any] | None) -> Artifact:
        stage_dir = self.workdir / stage
        stage_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmp(stage_dir, key)
        tmp = stage_dir / f"{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        t0 = time.time()
        try:
            summary = produce(tmp) or {}
            files = {}
            for p in sorted(tmp.rglob("*")):
                if p.is_file() and p.name != MANIFEST:
                    rel = p.relative_to(tmp).as_posix()
                    st = p.stat()
                    files[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "blake2b": file_digest(p)}
            manifest = {
                "stage": stage, "key": key, "code_version": code_version,
                "settings": _canonical(settings), "inputs": list(inputs),
                "summary": _canonical(dict(summary)), "files": files,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.time() - t0, 3),
                "versions": {"foresee": __version__, "python": sys.version.split()[0], "platform": platform.platform()},
                **dict(extra_manifest or {}),
            }
            mtmp = tmp / f".{MANIFEST}.tmp"
            mtmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            os.replace(mtmp, tmp / MANIFEST)
            final = stage_dir / key
            try:
                os.rename(tmp, final)
            except OSError:
                # another writer finished the same key first: theirs is as good as ours
                if self.lookup(stage, key) is None:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Artifact(stage, key, final, manifest, cached=False)

    def _remove_stale_tmp(self, stage_dir: Path, key: str) -> None:
        from pipeline.resume import keep_checkpoint

        for p in stage_dir.glob(f"{key}.tmp-*"):
            pid = _pid_of_tmp(p.name)
            if pid is None or not _pid_alive(pid):
                keep_checkpoint(p)  # a killed training resumes from it (pipeline.resume)
                shutil.rmtree(p, ignore_errors=True)

    # ------------------------------------------------------------------ listing / gc
    def entries(self) -> Iterator[tuple[str, str, Path]]:
        """(stage, name, path) of every folder in the cache, finished or not."""
        if not self.workdir.is_dir():
            return
        # dot-folders are not stages: .parts/ holds the shards of unfinished sharded artifacts
        for stage_dir in sorted(p for p in self.workdir.iterdir()
                                if p.is_dir() and p.name != RUNS and not p.name.startswith(".")):
            for entry in sorted(p for p in stage_dir.iterdir() if p.is_dir()):
                yield stage_dir.name, entry.name, entry

    def ls(self) -> list[dict[str, Any]]:
        """One row per entry: stage, key, state (done/partial/corrupt), size, created, summary."""
        rows = []
        for stage, name, path in self.entries():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            if ".tmp-" in name:
                state = "partial"
            elif ".corrupt-" in name:
                state = "corrupt"
            else:
                state = "done" if self.check(path, verify="size") is None else "corrupt"
            created, summary, label = "", {}, ""
            if state == "done":
                m = json.loads((path / MANIFEST).read_text())
                created, summary = m.get("created", ""), m.get("summary", {})
                # what the artifact is: the chain's node name, or the role a stage command recorded
                label = str(m.get("node") or m.get("role") or "")
            rows.append({"stage": stage, "key": name, "state": state, "bytes": size,
                         "created": created, "summary": summary, "path": str(path), "label": label})
        return rows

    def resolve(self, ref: str) -> Artifact:
        """An artifact from ``stage/key``, a unique key prefix, or a folder path."""
        p = Path(ref)
        if (p / MANIFEST).is_file():
            m = json.loads((p / MANIFEST).read_text())
            return Artifact(m["stage"], m["key"], p, m)
        matches = [(s, n, path) for s, n, path in self.entries()
                   if ".tmp-" not in n and ".corrupt-" not in n
                   and (f"{s}/{n}".startswith(ref) or n.startswith(ref))]
        if len(matches) != 1:
            what = "no artifact" if not matches else f"{len(matches)} artifacts"
            raise CacheError(f"{self.workdir}: {what} match {ref!r}")
        s, n, _ = matches[0]
        art = self.lookup(s, n)
        if art is None:
            raise CacheError(f"{self.workdir / s / n}: artifact is corrupt and was moved aside")
        return art

    def gc(self, *, keep: set[str] | None = None, dry_run: bool = False) -> list[Path]:
        """Remove partial and corrupt entries (and, when ``keep`` is given, every finished
        entry whose ``stage/key`` is not in it). Returns the removed paths."""
        removed = []
        for stage, name, path in self.entries():
            if ".tmp-" in name:
                pid = _pid_of_tmp(name)
                if pid is not None and _pid_alive(pid):
                    continue
                doomed = True
            elif ".corrupt-" in name:
                doomed = True
            else:
                doomed = keep is not None and f"{stage}/{name}" not in keep
            if doomed:
                removed.append(path)
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
        return removed


def workdir_writable(workdir: Path) -> bool:
    """True when files can be created in ``workdir`` (or in the nearest existing folder above
    it, which ``mkdir -p`` would create it in)."""
    p = Path(workdir).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


def check_writable(workdir: Path) -> None:
    """Raise :class:`CacheError` ("workdir W is not writable") unless :func:`workdir_writable`."""
    if not workdir_writable(workdir):
        raise CacheError(f"workdir {workdir} is not writable")


def _pid_of_tmp(name: str) -> int | None:
    try:
        return int(name.split(".tmp-")[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
