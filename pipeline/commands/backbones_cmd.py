"""``foresee backbones fetch NAME``: download an encoder's ImageNet weights into timm's cache, on request."""

from __future__ import annotations

import click


@click.group("backbones")
def backbones_group() -> None:
    """ImageNet encoders: fetch their weights (the only command that downloads)."""


@backbones_group.command("fetch")
@click.argument("name")
def fetch_command(name: str) -> None:
    """Download NAME's ImageNet weights into timm's Hugging Face cache (needs internet).

    NAME: a registry name of docs/backbones.md, e.g. resnext101_32x4d (the paper preset's encoder).
    Weights already on this machine (installed package or cache) are not downloaded again.
    """
    from backbones.fetch import fetch_weights

    path, downloaded = fetch_weights(name)
    click.echo(f"{name}: {'downloaded to' if downloaded else 'already present:'} {path}")
