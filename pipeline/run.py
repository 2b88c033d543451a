"""``foresee run``: plan, execute and report the chain (library side of the click command)."""

from __future__ import annotations

import json
import platform
import resource
import time
from pathlib import Path

import click

from kitti import KittiFormatError
from kitti.fileio import atomic_write_text
from pipeline.cache import ArtifactCache, CacheError
from pipeline.stages import RunConfig, build_chain
from pipeline.executor import execute, plan


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} PB"


def synth_default(data_root: Path, preset: str) -> None:
    """Render the embedded benchmark (its ``cpu-small`` preset) into ``data_root``."""
    from synth import render_dataset
    from synth.settings import preset as synth_preset

    click.echo(f"[synth] {data_root} does not exist: rendering the embedded benchmark ({preset})")
    t0 = time.time()
    summary = render_dataset(data_root, synth_preset("cpu-small" if preset == "cpu-small" else "full"))
    click.echo(f"[synth] done in {time.time() - t0:.0f} s: {summary.get('frames', '?')} frames")


def print_plan(cfg: RunConfig, cache: ArtifactCache, specs: list | None = None) -> list:
    """Print the plan of ``cfg`` (its chain built unless ``specs`` is given); returns the plan."""
    specs = build_chain(cfg, cache.workdir) if specs is None else specs
    planned = plan(specs, cache)
    n_run = sum(not p.cached for p in planned)
    click.echo(f"plan for {cfg.data_root} (preset {cfg.preset}, workdir {cache.workdir}): "
               f"{len(planned)} stages, {len(planned) - n_run} cached, {n_run} to run")
    width = max((len(p.spec.name) for p in planned), default=0)
    ref_width = max((len(p.spec.stage) + 17 for p in planned), default=0)
    for p in planned:
        state = "cached" if p.cached else "run"
        ref = f"{p.spec.stage}/{p.key}"
        click.echo(f"  {p.spec.name:<{width}}  {ref:<{ref_width}}  {state:<6}  ~{_human(p.spec.est_bytes)}")
    return planned


def run_chain(cfg: RunConfig, workdir: Path, *, dry_run: bool = False,
              report_dir: Path | None = None, specs: list | None = None, wait: bool = True) -> dict:
    """Plan, then run or reuse every stage, then write the reports; returns the run summary.

    The chain is built (raw data fingerprinted) once, unless ``specs`` of ``cfg`` are given, and
    every artifact is checked once: the plan's stat check is what execution and the report use.
    A stage another run is building is waited for and taken from the cache (``wait=False``: a
    ``CacheError`` instead). A workdir this process cannot write is enough when every stage is
    cached and ``report_dir`` is elsewhere; otherwise "workdir W is not writable" before any work."""
    from pipeline.cache import check_writable, workdir_writable

    cache = ArtifactCache(workdir, wait=wait, log=click.echo)
    specs = build_chain(cfg, workdir) if specs is None else specs
    planned = print_plan(cfg, cache, specs)
    if dry_run:
        return {}
    if not workdir_writable(cache.workdir):
        if not all(p.cached for p in planned):
            check_writable(cache.workdir)
        if report_dir is None:
            raise CacheError(f"workdir {cache.workdir} is not writable (its stages are all cached: "
                             f"give --report a folder elsewhere)")
    if report_dir is not None and not workdir_writable(Path(report_dir)):
        raise CacheError(f"report folder {report_dir} is not writable")
    t0 = time.time()
    from kitti import KittiRoot

    root = KittiRoot(cfg.data_root)
    results = execute(specs, cache, log=click.echo, planned=planned,
                      extra_manifest={"dataset_id": root.dataset_id(), "data_root": str(root.root.resolve())})
    total = time.time() - t0
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = {
        "data": str(cfg.data_root), "preset": cfg.preset, "seconds_total": round(total, 1),
        "peak_rss_mb": round(max(peak_self, peak_children), 1),
        "machine": f"{platform.node()} {platform.machine()} ({_cpu_count()} cores)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "stages": {name: {"path": str(art.path), "cached": art.cached, "seconds_here": round(dt, 1),
                          "seconds_built": art.manifest.get("seconds"),
                          "summary": art.manifest.get("summary", {})}
                   for name, (art, dt) in results.items()},
    }
    click.echo(f"chain finished in {total:.0f} s (peak RSS {summary['peak_rss_mb']:.0f} MB)")
    out = write_reports(cfg, workdir, report_dir=report_dir, run_summary=summary,
                        built=(specs, {name: art for name, (art, _) in results.items()}))
    click.echo("artifacts:")
    width = max((len(n) for n in results), default=0)
    for name, (art, _) in results.items():
        click.echo(f"  {name:<{width}} {art.path}")
    click.echo(f"report: {out}")
    return summary


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write_reports(cfg: RunConfig, workdir: Path, *, report_dir: Path | None = None,
                  run_summary: dict | None = None, built: tuple[list, dict] | None = None) -> Path:
    """Table 4 / Table 2 / figures from the cached artifacts of ``cfg`` (all must exist).

    ``built``: (specs, name -> Artifact) of the run that just made them (else planned here)."""
    if built is None:
        cache = ArtifactCache(workdir)
        specs = build_chain(cfg, workdir)
        planned = plan(specs, cache)
        missing = [p.spec.name for p in planned if not p.cached]
        if missing:
            raise KittiFormatError(workdir, None, f"run not finished: {len(missing)} stage(s) not cached "
                                   f"({', '.join(missing[:3])}...); run `foresee run` first")
        arts = {p.spec.name: cache.lookup(p.spec.stage, p.key) for p in planned}
    else:
        specs, arts = built
    out = Path(report_dir) if report_dir else Path(workdir) / "report"
    from pipeline.cache import workdir_writable

    if not workdir_writable(out):
        raise CacheError(f"report folder {out} is not writable (give --report a folder elsewhere)")
    out.mkdir(parents=True, exist_ok=True)
    if cfg.seeds > 1:
        return _write_seed_reports(cfg, specs, arts, out, run_summary)
    report = _write_one(cfg, specs, arts, out, run_summary)
    click.echo(report)
    return out


def _write_one(cfg: RunConfig, specs: list, arts: dict, out: Path, run_summary: dict | None,
               title_suffix: str = "") -> str:
    """One seed's report (Table 4, AP_2D, Table 2, timings, figures) into ``out``; returns it.
    ``specs`` / ``arts`` are that seed's, named as in the one-seed chain."""
    from pipeline.report import write_table4

    out.mkdir(parents=True, exist_ok=True)
    # Table 4: every detector's rows in --detector order, labelled by its registry prefix
    from pipeline.detectors import get as get_detector

    both = {d: _evals(cfg, specs, arts, d) for d in cfg.detectors}
    note = boxes2d_source(cfg)
    for d in cfg.detectors:
        if not get_detector(d).uses_boxes2d:
            note += f"; {get_detector(d).label} uses no 2D boxes"
    md = write_table4({d: e[0] for d, e in both.items()}, out,
                      title=f"Table 4 — {cfg.data_root.name}, preset {cfg.preset}{title_suffix}", note=note,
                      evals_loose={d: e[1] for d, e in both.items()})
    parts = [md]
    if "detect2d-infer" in arts:
        ap2d = (arts["detect2d-infer"].path / "ap2d.md").read_text()
        atomic_write_text(out / "ap2d.md", ap2d)
        parts.append(f"### 2D boxes of every row: {note}; AP_2D on the val split\n\n{ap2d}")
    depth_md = _table2(cfg, arts, out)
    if depth_md:
        parts.append(depth_md)
    if run_summary is not None:
        atomic_write_text(out / "run_summary.json", json.dumps(run_summary, indent=1))
        parts.append(_timings_md(run_summary))
    curves = _training_curves_md(arts, out)
    if curves:
        parts.append(curves)
    try:
        from pipeline.figures import figures_markdown, make_figures, pr_curves_markdown, write_pr_curves

        figs = make_figures(cfg, arts, out)
        if figs:
            parts.append(figures_markdown(figs))
        prs = write_pr_curves(cfg, arts, out)
        if prs:
            parts.append(pr_curves_markdown(prs))
    except ImportError as e:  # a stage package without its viz yet
        parts.append(f"(figures skipped: {e})\n")
    report = "\n".join(parts)
    atomic_write_text(out / "report.md", report)
    return report


def _training_curves_md(arts: dict, out: Path) -> str:
    """Links to every training artifact's loss curve and per-step log (docs/training.md)."""
    import os

    lines = []
    for name, art in sorted(arts.items()):
        png = art.path / "train_loss.png"
        stage = getattr(art, "stage", name.split("/")[0])  # node names are <stage>/<...>
        if stage.endswith("-train") and png.is_file():
            rel = Path(os.path.relpath(art.path, out)).as_posix()
            lines.append(f"- {name}: [loss curve]({rel}/train_loss.png), [per-step log]({rel}/train_log.csv)")
    return "### Training curves\n\n" + "\n".join(lines) + "\n" if lines else ""


def _write_seed_reports(cfg: RunConfig, specs: list, arts: dict, out: Path, run_summary: dict | None) -> Path:
    """``--seeds N``: each seed's full report in ``out/s<seed>/`` (its chain view: its own nodes and
    the shared ones, under their one-seed names), then every seed's Table 2 / Table 4 figure with
    mean ± std and ForeSeE − baseline (with foresee-obj also ForeSeE-obj − baseline and ForeSeE-obj
    − ForeSeE) against the spread (seeds.md / seeds.csv / seeds_diff.csv) and report.md in ``out``."""
    from pipeline.detectors import DETECTORS
    from pipeline.stages import DEPTH_VARIANTS, base_name, chain_seeds, find, seed_view
    from pipeline.report import ROW_ORDER, table2_seed_rows, table4_seed_rows, write_seeds

    seeds = [s for s in chain_seeds(cfg) if s is not None]
    per_seed_specs, links = {}, []
    for s in seeds:
        view = seed_view(specs, s)
        per_seed_specs[s] = view
        view_arts = {}  # under the node's name and its one-seed name (what the figures look up)
        for sp in view:
            view_arts[sp.name] = view_arts[base_name(sp.name, s)] = arts[sp.name]
        _write_one(cfg, view, view_arts, out / f"s{s}", None, title_suffix=f", seed {s}")
        links.append(f"- seed {s}: [s{s}/report.md](s{s}/report.md)")

    def load(spec, name: str) -> dict:
        return json.loads((arts[spec.name].path / name).read_text())

    rows = table2_seed_rows({v: [load(find(per_seed_specs[s], "depth-eval", cloud=v), "depth_metrics.json")
                                 for s in seeds]
                             for v in DEPTH_VARIANTS if v in cfg.clouds})
    for iou, name in (("0.7", "eval.json"), ("0.5", "eval_loose.json")):
        for d in cfg.detectors:
            for c in ROW_ORDER:
                if c in cfg.clouds:
                    rows += table4_seed_rows(DETECTORS[d].label, c, iou,
                                             [load(find(per_seed_specs[s], "eval", detector=d, cloud=c), name)
                                              for s in seeds])
    note = (f"seed s trains every depth variant and the 3D detector of every cloud; shared by all seeds: the "
            f"render, depth ground truth (oracle cloud), the LiDAR scans and the 2D boxes: {boxes2d_source(cfg)}")
    md = write_seeds(rows, seeds, out, title=f"Seeds — {cfg.data_root.name}, preset {cfg.preset}", note=note)
    parts = [md, "### Each seed's report", "", *links, ""]
    if run_summary is not None:
        atomic_write_text(out / "run_summary.json", json.dumps(run_summary, indent=1))
        parts.append(_timings_md(run_summary))
    report = "\n".join(parts)
    atomic_write_text(out / "report.md", report)
    click.echo(report)
    return out


def boxes2d_source(cfg: RunConfig) -> str:
    """The report's name for where the 2D boxes of every row come from."""
    if cfg.boxes2d == "detector":
        return "2D detector detect2d (trained on the train split; torchvision, from the image alone)"
    if cfg.boxes2d == "simulated":
        return "simulated 2D detector (derived from the ground truth, seeded; not a real detector)"
    if cfg.boxes2d == "gt":
        return "ground-truth 2D boxes"
    return f"2D boxes from {cfg.boxes2d}"


def _evals(cfg: RunConfig, specs: list, arts: dict, detector: str) -> tuple[dict, dict]:
    """cloud -> eval.json and cloud -> eval_loose.json of one detector's eval nodes."""
    from pipeline.stages import find

    strict, loose = {}, {}
    for c in cfg.clouds:
        spec = find(specs, "eval", detector=detector, cloud=c)
        if spec is not None:
            path = arts[spec.name].path
            strict[c] = json.loads((path / "eval.json").read_text())
            loose[c] = json.loads((path / "eval_loose.json").read_text())
    return strict, loose


def _table2(cfg: RunConfig, arts: dict, out: Path) -> str:
    from pipeline.stages import DEPTH_VARIANTS

    rows = {}
    for cloud in DEPTH_VARIANTS:
        art = arts.get(f"depth-eval/{cloud}")
        if art is not None:
            rows[cloud] = art
    if not rows:
        return ""
    from depth.metrics import DepthEvalResult, format_objects, format_table2

    results = {name: DepthEvalResult.from_json(json.loads((a.path / "depth_metrics.json").read_text()))
               for name, a in rows.items()}
    md = format_table2(results)
    atomic_write_text(out / "table2.md", md)
    parts = ["### Table 2 — depth on the val split\n\n" + md + "\n"]
    objects_md = format_objects(results)
    if objects_md:  # the objects themselves (docs/depth-power.md): what the boxes are built from
        atomic_write_text(out / "objects.md", objects_md)
        parts.append("#### The objects\n\n" + objects_md)
    return "\n".join(parts)


def _timings_md(summary: dict) -> str:
    lines = ["### Timings", "", f"{summary['machine']}, {summary['date']}; total "
             f"{summary['seconds_total']:.0f} s, peak RSS {summary['peak_rss_mb']:.0f} MB", "",
             "| stage | built in (s) | this run |", "|---|---|---|"]
    for name, s in summary["stages"].items():
        built = s["seconds_built"]
        lines.append(f"| {name} | {built if built is not None else '?'} | "
                     f"{'cached' if s['cached'] else 'built'} |")
    return "\n".join(lines) + "\n"
