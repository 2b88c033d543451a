"""``foresee cache ls|show|verify|gc``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.cache import ArtifactCache

DEFAULT_WORKDIR = Path("work")


def dataset_fields(root) -> dict:
    """Manifest fields naming the dataset an artifact was made from (see ``check_same_dataset``)."""
    return {"dataset_id": root.dataset_id(), "data_root": str(root.root.resolve())}


def check_same_dataset(art, root, what: str) -> None:
    """Stop before any work when ``art`` was made from another dataset than ``root``."""
    from kitti import KittiFormatError

    made_from = art.manifest.get("dataset_id")
    if made_from is not None and made_from != root.dataset_id():
        raise KittiFormatError(art.path, None, f"{what} {art.ref} was made from another dataset "
                               f"({art.manifest.get('data_root')}), not from {root.root}")


def not_found(ref: str, workdir: Path, option: str):
    """The one-line error for an option's value that is neither a file or folder nor an artifact
    of the cache (raise it: ``raise not_found(...) from None``)."""
    from kitti import KittiFormatError

    return KittiFormatError(ref, None, f"{option}: no such file or folder, and no artifact of {workdir} "
                                       "matches it (stage/key or a key prefix)")


def echo_artifact(art, describe) -> None:
    """One summary line for a stage command: ``PATH cached`` on a hit, else ``PATH <describe(summary)>``."""
    if art.cached:
        click.echo(f"{art.path} cached")
    else:
        click.echo(f"{art.path} {describe(art.manifest['summary'])}")


def echo_sharded(art, status: str, describe) -> None:
    """:func:`echo_artifact` for a stage that may run in shards: the shard's status while the
    artifact is incomplete, a short line for a merged one (its summary sums the shards' counts)."""
    if art is None:
        click.echo(status)
    elif not art.cached and "shards" in art.manifest["summary"]:
        click.echo(f"{art.path} {status}, {art.manifest['summary'].get('frames')} frames")
    else:
        echo_artifact(art, describe)


def workdir_option(f):
    return click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR,
                        show_default=True, envvar="FORESEE_WORKDIR",
                        help="Artifact cache folder (env FORESEE_WORKDIR).")(f)


@click.group("cache")
def cache_group() -> None:
    """List, inspect, verify and clean the artifact cache."""


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cache_group.command("ls")
@workdir_option
def cache_ls(workdir: Path) -> None:
    """One line per artifact: stage, key, state, size, creation time."""
    rows = ArtifactCache(workdir).ls()
    if not rows:
        click.echo(f"{workdir}: empty cache")
        return
    for r in rows:
        click.echo(f"{r['stage']:<14} {r['key']:<34} {r['state']:<8} {_human(r['bytes']):>9}  "
                   f"{r['created']:<24}  {r['label']}")


@cache_group.command("show")
@click.argument("ref")
@workdir_option
def cache_show(ref: str, workdir: Path) -> None:
    """Print one artifact's manifest (REF: stage/key, key prefix or folder); verifies it first."""
    art = ArtifactCache(workdir).resolve(ref)
    m = dict(art.manifest)
    n_files = len(m.pop("files", {}))
    click.echo(json.dumps(m, indent=1))
    click.echo(f"{art.path}: {n_files} files, verified")


@cache_group.command("verify")
@workdir_option
def cache_verify(workdir: Path) -> None:
    """Re-hash every file of every artifact; corrupt entries are moved aside (rebuilt next run).

    Exits with 1 when any entry was corrupt."""
    import sys
    import time

    cache = ArtifactCache(workdir)
    t0 = time.time()
    n = sum(1 for _, name, _ in cache.entries() if ".tmp-" not in name and ".corrupt-" not in name)
    bad = cache.verify_all()
    for ref, problem in bad:
        click.echo(f"corrupt {ref}: {problem} (moved aside)")
    click.echo(f"verified {n} artifact(s) in {time.time() - t0:.1f} s: {n - len(bad)} intact, {len(bad)} corrupt")
    if bad:
        sys.exit(1)


@cache_group.command("gc")
@workdir_option
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def cache_gc(workdir: Path, dry_run: bool) -> None:
    """Remove interrupted (partial) and corrupt entries."""
    removed = ArtifactCache(workdir).gc(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for p in removed:
        click.echo(f"{verb} {p}")
    click.echo(f"{verb} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}")
