"""depth.power: the accuracy-per-CPU-second measurements (cost part; the accuracy part is train +
infer + evaluate, each tested on its own)."""

from __future__ import annotations

import json

from depth.model import DepthNet, count_parameters
from depth.power import _settings, main


def test_power_step_writes_one_json_line_per_case_for_the_settings_network(tmp_path, capsys):
    tiny = {"encoder": "test_resnet", "neck_channels": 16, "lateral_channels": [8, 8, 8, 8],
            "decoder_channels": [16, 8, 8, 8, 8], "crop_hw": [32, 64], "resize_factor": 0.1, "batch_size": 2}
    out = tmp_path / "step.jsonl"
    main(["step", "--jsonl", str(out), "--case", "a", "baseline", json.dumps(tiny),
          "--case", "b", "foresee", json.dumps(tiny)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["tag"], r["variant"]) for r in rows] == [("a", "baseline"), ("b", "foresee")]
    for row in rows:
        net = DepthNet(_settings("cpu-small", row["variant"], row["overrides"]))
        assert row["params"] == count_parameters(net)
        assert row["cpu_s_per_step"] > 0 and row["cpu_s_per_infer_frame"] > 0
    assert rows[0]["overrides"]["encoder_weights"] == "none"
    assert capsys.readouterr().out.count("\n") == 2
