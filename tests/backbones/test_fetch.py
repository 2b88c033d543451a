"""``foresee backbones fetch NAME``: the one explicit download, and its one-line failures."""

from __future__ import annotations

import sys

import pytest
import torch

import backbones
import backbones.fetch
from backbones import BackboneWeightsError, create_encoder, weights_source
from backbones.fetch import fetch_weights


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    return tmp_path


def test_missing_weights_error_names_the_fetch_command(empty_caches):
    with pytest.raises(BackboneWeightsError) as e:
        weights_source("resnext101_32x4d")
    msg = str(e.value)
    assert "\n" not in msg and "run `foresee backbones fetch resnext101_32x4d`" in msg


def test_fetch_fills_timm_hub_cache_where_the_lookup_finds_it(empty_caches, monkeypatch):
    """The hub client is replaced by one that writes what the real one writes (the HF cache layout)."""
    import huggingface_hub
    from safetensors.torch import save_file

    sd = create_encoder("resnet18", weights="none", features_only=False).state_dict()
    calls = []

    def fake_download(repo_id, filename):
        calls.append((repo_id, filename))
        repo = empty_caches / "hf" / ("models--" + repo_id.replace("/", "--"))
        snap = repo / "snapshots" / "abc123"
        snap.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("abc123")
        save_file({k: v.contiguous() for k, v in sd.items()}, str(snap / filename))
        return str(snap / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(backbones.fetch, "_unreachable", lambda endpoint: None)
    path, downloaded = fetch_weights("resnet18")
    assert downloaded and calls == [(f"timm/{backbones.fetch.pretrained_tag('resnet18')}", "model.safetensors")]
    assert weights_source("resnet18") == path
    enc = create_encoder("resnet18", features_only=False)
    assert torch.equal(enc.state_dict()["conv1.weight"], sd["conv1.weight"])
    # a second fetch finds the file and downloads nothing
    assert fetch_weights("resnet18") == (path, False) and len(calls) == 1


def test_present_weights_are_not_downloaded(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("downloaded"))
    path, downloaded = fetch_weights("tf_efficientnet_lite0")
    assert not downloaded and path == weights_source("tf_efficientnet_lite0")


def test_unreachable_network_is_one_line(empty_caches, monkeypatch):
    import huggingface_hub.constants

    # port 9 on this machine: nothing listens, the connection is refused at once
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    with pytest.raises(BackboneWeightsError) as e:
        fetch_weights("resnext101_32x4d")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("could not download resnext101_32x4d.gluon_in1k: 127.0.0.1:9 unreachable")


def test_cli_offline_exits_2_with_one_line(empty_caches, monkeypatch, capsys):
    """HF_HUB_OFFLINE=1 (read by huggingface_hub into this constant at import): exit 2, one line."""
    import huggingface_hub.constants
    from pipeline.cli import cli_entry

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(sys, "argv", ["foresee", "backbones", "fetch", "resnext101_32x4d"])
    with pytest.raises(SystemExit) as e:
        cli_entry()
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: could not download resnext101_32x4d.gluon_in1k: HF_HUB_OFFLINE is set "
        "(unset it where there is internet; docs/backbones.md)"]
