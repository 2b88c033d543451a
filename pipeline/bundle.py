"""A model bundle: every model ``foresee predict`` needs, taken from a run, in one file.

The bundle is an uncompressed tar file (``.foresee``) whose first member is ``manifest.json``::

    manifest.json        format, format_version, foresee version, every other member's sha256 and size
    depth.safetensors    the depth network's weights          depth.json     its settings and depth bins
    detect2d.safetensors the 2D detector's weights            detect2d.json  its settings, reference image size
    detect3d.safetensors the 3D detector's weights            detect3d.json  detector name, settings (+ AVOD anchor sizes)
    pseudolidar.json     the pseudo-LiDAR settings the 3D detector was trained on
    geometry.json        the training data's geometry: image size, focal length, principal point,
                         camera height and LiDAR height above the road, the LiDAR's offset

**Loading runs no code.** Weights are safetensors (a JSON header and raw little-endian buffers,
parsed by the ``safetensors`` package: no pickle), everything else is JSON. A member that is not
valid safetensors (a pickle, say, with a manifest hash made to match it) is refused; so is a
member the manifest does not list, a member whose bytes do not hash to the manifest's sha256, a
missing member and an unknown format version. Each refusal is one :class:`BundleError` line
naming the bundle and the member.

:func:`materialize` then writes the models as the model files the stages read (depth
``checkpoint.pt``, ``model.pt``), built by this process from the checked tensors and settings.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from kitti.errors import KittiFormatError

FORMAT = "foresee-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: every member of a bundle, after the manifest
MEMBERS = ("depth.safetensors", "depth.json", "detect2d.safetensors", "detect2d.json",
           "detect3d.safetensors", "detect3d.json", "pseudolidar.json", "geometry.json")
WEIGHTS = ("depth", "detect2d", "detect3d")


class BundleError(KittiFormatError):
    """A bundle that cannot be used (one line: the bundle, the member, what is wrong)."""

    def __init__(self, bundle: Path, member: str | None, msg: str) -> None:
        where = f"{bundle}" + (f" [{member}]" if member else "")
        super().__init__(Path(where), None, msg)


@dataclass(frozen=True)
class Geometry:
    """The geometry the models were trained on (or one's own camera's).

    Attributes:
        image_hw: image size (H, W) in pixels.
        fx, fy, cx, cy: intrinsics of image_2 in pixels.
        camera_height_m: the camera above the road.
        lidar_height_m: the (pseudo-)LiDAR origin above the road: the height cut of pseudo-LiDAR
            (``max_height_m``) is measured from it.
        lidar_forward_m: the LiDAR origin's offset along the camera's optical axis (KITTI: -0.27 m,
            behind the camera).
    """

    image_hw: tuple[int, int]
    fx: float
    fy: float
    cx: float
    cy: float
    camera_height_m: float
    lidar_height_m: float
    lidar_forward_m: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "image_hw": list(self.image_hw)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Geometry":
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(int(x) for x in v) if k == "image_hw" else float(v))
                      for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Bundle:
    """A loaded, checked bundle: weights (name -> tensor) and JSON metadata per model."""

    path: Path
    manifest: Mapping[str, Any]
    weights: Mapping[str, Mapping[str, Any]]   # "depth"/"detect2d"/"detect3d" -> state dict
    meta: Mapping[str, Mapping[str, Any]]      # "depth"/"detect2d"/"detect3d"/"pseudolidar"/"geometry"

    @property
    def detector(self) -> str:
        return str(self.meta["detect3d"]["detector"])

    @property
    def variant(self) -> str:
        return str(self.meta["depth"]["settings"]["variant"])

    @property
    def geometry(self) -> Geometry:
        return Geometry.from_json(self.meta["geometry"])

    @property
    def sha256(self) -> str:
        """The manifest's hash: one identity for the whole bundle (its members' hashes are in it)."""
        return hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------- writing
def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def _tensor_bytes(state: Mapping[str, Any]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def write_bundle(path: Path, *, weights: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Mapping[str, Any]],
                 source: Mapping[str, Any] | None = None) -> Path:
    """Write a bundle atomically (temporary file, then rename). ``weights``: the three state
    dicts by :data:`WEIGHTS` name; ``meta``: the JSON members by name (without ``.json``)."""
    from kitti.fileio import atomic_write_bytes
    from pipeline import __version__

    members: dict[str, bytes] = {}
    for name in WEIGHTS:
        members[f"{name}.safetensors"] = _tensor_bytes(weights[name])
        members[f"{name}.json"] = _json_bytes(meta[name])
    for name in ("pseudolidar", "geometry"):
        members[f"{name}.json"] = _json_bytes(meta[name])
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "foresee_version": __version__,
                "source": dict(source or {}),
                "members": {n: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for n, b in members.items()}}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST, _json_bytes(manifest)), *((n, members[n]) for n in MEMBERS)]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


# ------------------------------------------------------------------------------------- reading
def _read_members(path: Path) -> dict[str, bytes]:
    """Every member's bytes, in order; a cut-off member or header is named."""
    out: dict[str, bytes] = {}
    last = None
    try:
        with tarfile.open(path, mode="r:") as tar:
            while True:
                try:
                    info = tar.next()
                except tarfile.ReadError as e:
                    raise BundleError(path, f"after {last}" if last else MANIFEST,
                                      f"damaged or truncated bundle: no member header ({e})") from None
                if info is None:
                    break
                if not info.isfile():
                    raise BundleError(path, info.name, "not a plain file member")
                if info.name in out:
                    raise BundleError(path, info.name, "member appears twice")
                last = info.name  # the member being read: a cut inside it names it
                fh = tar.extractfile(info)
                data = fh.read() if fh is not None else b""
                if len(data) != info.size:
                    raise BundleError(path, info.name, f"truncated member ({len(data)} of {info.size} bytes)")
                out[info.name] = data
                last = info.name
    except FileNotFoundError:
        raise BundleError(path, None, "bundle not found") from None
    except (tarfile.ReadError, EOFError, OSError) as e:
        raise BundleError(path, last or MANIFEST, f"damaged or truncated member ({e})") from None
    return out


def _load_json(path: Path, name: str, data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(path, name, f"not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise BundleError(path, name, "expected a JSON object")
    return obj


def _load_tensors(path: Path, name: str, data: bytes) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as e:
        raise BundleError(path, name, f"not a safetensors file, refused (a bundle holds no pickle): {e}") from None


def load_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle: format version, every member present, listed and hashing to the
    manifest's sha256, weights parsed as safetensors (no code runs).

    Raises:
        BundleError: one line naming the bundle and the member.
    """
    path = Path(path)
    members = _read_members(path)
    if MANIFEST not in members:
        raise BundleError(path, MANIFEST, "missing (not a foresee bundle)")
    manifest = _load_json(path, MANIFEST, members.pop(MANIFEST))
    if manifest.get("format") != FORMAT:
        raise BundleError(path, MANIFEST, f"not a foresee bundle (format {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(path, MANIFEST, f"bundle format version {manifest.get('format_version')!r}; this "
                          f"foresee reads version {FORMAT_VERSION}")
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise BundleError(path, MANIFEST, "no member list")
    for name in MEMBERS:
        if name not in listed:
            raise BundleError(path, name, "not listed in the manifest")
        if name not in members:
            raise BundleError(path, name, "missing (truncated bundle?)")
    for name in members:
        if name not in MEMBERS:
            raise BundleError(path, name, "unknown member, refused")
    for name in MEMBERS:
        data, want = members[name], listed[name]
        got = hashlib.sha256(data).hexdigest()
        if got != want.get("sha256") or len(data) != want.get("bytes"):
            raise BundleError(path, name, f"sha256 {got[:12]}… differs from the manifest's "
                              f"{str(want.get('sha256'))[:12]}… (edited or damaged)")
    weights = {w: _load_tensors(path, f"{w}.safetensors", members[f"{w}.safetensors"]) for w in WEIGHTS}
    meta = {n: _load_json(path, f"{n}.json", members[f"{n}.json"]) for n in (*WEIGHTS, "pseudolidar", "geometry")}
    return Bundle(path, manifest, weights, meta)


# ------------------------------------------------------------------------------------- settings
def decode_settings(cls: type, d: Mapping[str, Any]) -> Any:
    """A settings dataclass from its JSON form or from a cache manifest's canonical form (floats
    written as ``repr`` strings, tuples as lists): each value converted back by its field's type."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        v, kind = d[f.name], str(f.type)
        if isinstance(v, str) and "float" in kind and "str" not in kind:
            v = float(v)
        elif isinstance(v, list):
            v = tuple(float(x) if isinstance(x, str) and "float" in kind else x for x in v)
        kwargs[f.name] = v
    return cls(**kwargs)


# ------------------------------------------------------------------------------------- models on disk
@dataclass(frozen=True)
class ModelFiles:
    """The model files the stage functions read, and the settings they run with."""

    depth_checkpoint: Path
    detect2d_model: Path
    detect2d_options: Mapping[str, Any]
    detect2d_threads: int
    detector: str
    detect3d_model: Path
    detect3d_settings: Any
    pseudolidar: Any
    geometry: Geometry
    identity: str


def materialize(bundle: Bundle, folder: Path) -> ModelFiles:
    """Write the bundle's models into ``folder`` in the stages' own file formats (built here from
    the checked tensors and JSON settings)."""
    import torch

    from depth.model import CHECKPOINT_FORMAT
    from detect2d.settings import Detect2DSettings
    from pipeline.detectors import settings_from_dict
    from pseudolidar.settings import PseudoLidarSettings

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = bundle.meta["depth"]
    torch.save({"format": CHECKPOINT_FORMAT, "code_version": d.get("code_version"), "settings": d["settings"],
                "bins": d["bins"], "model": dict(bundle.weights["depth"]), "step": 0, "epoch": 0,
                "optimizer": None, "extra": {}}, folder / "depth.pt")
    m2 = bundle.meta["detect2d"]
    torch.save({"state_dict": dict(bundle.weights["detect2d"]), "settings": m2["settings"],
                "reference_hw": m2["reference_hw"], "code_version": m2.get("code_version")}, folder / "detect2d.pt")
    s2 = decode_settings(Detect2DSettings, m2["settings"])
    m3 = bundle.meta["detect3d"]
    blob = {"state_dict": dict(bundle.weights["detect3d"]), "settings": m3["settings"],
            "code_version": m3.get("code_version")}
    if "anchor_sizes_lwh" in m3:
        blob["anchor_sizes_lwh"] = m3["anchor_sizes_lwh"]
    torch.save(blob, folder / "detect3d.pt")
    settings3 = settings_from_dict(str(m3["detector"]), m3["settings"])
    return ModelFiles(folder / "depth.pt", folder / "detect2d.pt", s2.inference_options(), int(s2.num_threads),
                      str(m3["detector"]), folder / "detect3d.pt", settings3,
                      decode_settings(PseudoLidarSettings, bundle.meta["pseudolidar"]["settings"]),
                      bundle.geometry, bundle.sha256[:16])


# ------------------------------------------------------------------------------------- export
def _newest(cache, label: str):
    rows = [r for r in cache.ls() if r["label"] == label and r["state"] == "done"]
    if not rows:
        return None
    row = max(rows, key=lambda r: r["created"])
    return cache.resolve(row["path"])


def run_artifacts(workdir: Path, variant: str, detector: str) -> dict[str, Any]:
    """The artifacts of a run that a bundle is made of: those of the last ``foresee run``'s
    summary (``WORKDIR/report/run_summary.json``) when it names them, else the newest artifact of
    each node name."""
    from pipeline.cache import ArtifactCache, CacheError

    cache = ArtifactCache(workdir)
    names = {"depth": f"depth-train/{variant}", "detect2d": "detect2d-train",
             "detect3d": f"detect-train/{detector}/{variant}", "pseudolidar": f"pseudolidar/{variant}"}
    run_summary = Path(workdir) / "report" / "run_summary.json"
    stages = json.loads(run_summary.read_text()).get("stages", {}) if run_summary.is_file() else {}
    found = {}
    for role, label in names.items():
        path = stages.get(label, {}).get("path")
        art = cache.resolve(path) if path and Path(path).is_dir() else _newest(cache, label)
        if art is None:
            raise CacheError(f"{workdir}: no finished '{label}' artifact (run `foresee run` with "
                             f"--clouds {variant} --boxes2d detector --detector {detector} first)")
        found[role] = art
    return found


def training_geometry(data_root: Path, frames: tuple[str, ...]) -> Geometry:
    """The geometry of a KITTI-format training set: image size and intrinsics of its first frame;
    camera height = the median height of the labelled Cars' bottoms below the camera (the road
    under them); the LiDAR origin from the calibration's Tr_velo_to_cam."""
    import numpy as np

    from kitti import KittiRoot

    root = KittiRoot(data_root)
    calib = root.calib(frames[0])
    ys = [o.y for f in frames[:200] for o in root.labels(f) if o.type == "Car"]
    cam_h = float(np.median(ys)) if ys else 1.65
    origin_rect = calib.velo_to_rect_matrix[:3, 3]  # the LiDAR origin in the rect frame (y down)
    return Geometry(root.image_hw(frames[0]), calib.fu, calib.fv, calib.cu, calib.cv, round(cam_h, 3),
                    round(cam_h - float(origin_rect[1]), 3), round(float(origin_rect[2]), 3))


def export_bundle(workdir: Path, out: Path, *, variant: str = "foresee", detector: str = "fpointnet") -> dict[str, Any]:
    """Make a bundle from a run's artifacts; returns a summary (members, sizes, source)."""
    import torch

    arts = run_artifacts(Path(workdir), variant, detector)
    depth_ck = torch.load(arts["depth"].path / "checkpoint.pt", map_location="cpu", weights_only=False)
    d2 = torch.load(arts["detect2d"].path / "model.pt", map_location="cpu", weights_only=False)
    from pipeline.detectors import get as get_detector

    d3 = torch.load(arts["detect3d"].path / get_detector(detector).model_file, map_location="cpu",
                    weights_only=False)
    if not arts["depth"].manifest.get("data_root"):
        from pipeline.cache import CacheError

        raise CacheError(f"{arts['depth'].path}: the manifest does not name its data root (made by a stage "
                         "command, not `foresee run`): export takes the artifacts of a run")
    data_root = Path(arts["depth"].manifest["data_root"])
    train_frames = _train_frames(arts["detect2d"])
    meta = {
        "depth": {"settings": _plain(depth_ck["settings"]), "bins": list(depth_ck["bins"]),
                  "code_version": depth_ck.get("code_version"), "format": depth_ck.get("format")},
        "detect2d": {"settings": _plain(d2["settings"]), "reference_hw": list(d2["reference_hw"]),
                     "code_version": d2.get("code_version")},
        "detect3d": {"detector": detector, "settings": _plain(d3["settings"]), "code_version": d3.get("code_version"),
                     **({"anchor_sizes_lwh": d3["anchor_sizes_lwh"]} if "anchor_sizes_lwh" in d3 else {})},
        "pseudolidar": {"settings": arts["pseudolidar"].manifest["settings"]},
        "geometry": training_geometry(data_root, train_frames).to_json(),
    }
    source = {"workdir": str(Path(workdir).resolve()), "data_root": str(data_root), "variant": variant,
              "detector": detector, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "artifacts": {role: a.ref for role, a in arts.items()}}
    write_bundle(Path(out), weights={"depth": depth_ck["model"], "detect2d": d2["state_dict"],
                                     "detect3d": d3["state_dict"]}, meta=meta, source=source)
    return {"bundle": str(out), "bytes": Path(out).stat().st_size, **source}


def _train_frames(detect2d_art) -> tuple[str, ...]:
    """The frames the run trained on: its data root's train split (as the manifest recorded it)."""
    from kitti import KittiRoot

    root = KittiRoot(Path(detect2d_art.manifest.get("data_root", "")))
    return root.split("train")


def _plain(obj: Any) -> Any:
    """JSON-able: dataclasses and tuples to dicts and lists, numpy numbers to Python numbers."""
    import numpy as np

    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj
