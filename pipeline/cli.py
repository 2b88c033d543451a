"""The ``foresee`` command line: one sub-command per stage.

Commands are loaded lazily so that ``foresee --help`` does not import torch or numba.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from pipeline import __version__
from kitti.errors import KittiFormatError, MissingDependencyError
from pipeline.cache import CacheError
from pipeline.detectors import DETECTORS

# command name -> (module, attribute, one-line help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "cache": ("pipeline.commands.cache_cmd", "cache_group", "List, inspect, verify and clean the artifact cache."),
}


def register(name: str, module: str, attr: str, short_help: str) -> None:
    _COMMANDS[name] = (module, attr, short_help)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="foresee")
def main() -> None:
    """foresee: monocular 3D object detection on KITTI, ForeSeE depth -> pseudo-LiDAR -> 3D boxes.

    Every stage caches its artifact under --workdir (default ./work); re-running a command with
    the same inputs and settings is a no-op that says "cached".
    """


def _load_stage_commands() -> None:
    # each stage adds its commands here (kept in one list so `foresee --help` stays fast)
    for name, module, attr, short in (
        ("eval", "pipeline.commands.eval_cmd", "eval_command", "Evaluate KITTI results (AP 2D/BEV/3D/AOS) like the devkit."),
        ("synth", "pipeline.commands.synth_cmd", "synth_command", "Render the embedded KITTI-format benchmark."),
        ("pseudolidar", "pipeline.commands.pseudolidar_cmd", "pseudolidar_command", "Depth maps -> pseudo-LiDAR velodyne .bin."),
        ("show", "pipeline.commands.show_cmd", "show_command", "Render a cached point cloud (BEV / front view / PLY / open3d)."),
        ("depth", "pipeline.commands.depth_cmd", "depth_group", "ForeSeE depth: train, infer, eval, stats."),
        ("kod", "pipeline.commands.depth_cmd", "kod_group", "Build the KITTI-Object-Depth dataset."),
        ("detect", "pipeline.commands.detect_cmd", "detect_group",
         f"3D detectors ({', '.join(d.title for d in DETECTORS.values())}; --detector "
         f"{'|'.join(DETECTORS)}): train, infer, baseline."),
        ("detect2d", "pipeline.commands.detect2d_cmd", "detect2d_group", "2D detector (torchvision): train, infer."),
        ("run", "pipeline.commands.run_cmd", "run_command",
         f"Run the whole chain, cached (--detector {'|'.join(DETECTORS)}|all)."),
        ("table4", "pipeline.commands.run_cmd", "table4_command", "The paper's Table 4 (and Table 2) for a run."),
        ("backbones", "pipeline.commands.backbones_cmd", "backbones_group", "ImageNet encoders: fetch their weights (the only command that downloads)."),
        ("settings", "pipeline.commands.settings_cmd", "settings_command", "Every --set STAGE.FIELD setting, its preset values and meaning."),
        ("export", "pipeline.commands.predict_cmd", "export_command", "A run's models as one bundle file."),
        ("predict", "pipeline.commands.predict_cmd", "predict_command", "The trained chain on frames without labels."),
    ):
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            register(name, module, attr, short)


_load_stage_commands()


#: commands after which the console-script process ends without Python's teardown (output
#: flushed, then ``os._exit``): their files are written and closed, their worker processes joined,
#: and freeing the modules of torch, torchvision and numba costs ~1 CPU-second, 5 % of predicting
#: 100 frames (docs/performance.md)
NO_TEARDOWN = frozenset({"predict"})


def cli_entry() -> None:
    """Console-script entry: bad input ends with one line on stderr and exit code 2."""
    try:
        rc = main(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        if command in NO_TEARDOWN:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (KittiFormatError, CacheError, MissingDependencyError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: no half-written artifact was kept; re-run to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    cli_entry()
