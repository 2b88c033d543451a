"""The run report's figures: beside each frame's Fig. 6/7 PNGs, one self-contained 3D page, linked
from report.md."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from kitti import KittiRoot, write_label_file, write_velodyne
from pipeline.figures import CLOUD_RGB, figures_markdown, make_figures
from pseudolidar.html_view import decode_array, figure_from_html


def test_make_figures_writes_and_links_a_3d_page_per_frame(sample_subset, tmp_path):
    frame = "000008"
    root = sample_subset([frame])
    lidar = KittiRoot(root).velodyne(frame)
    arts = {}
    for k, cloud in enumerate(("oracle", "baseline", "foresee")):
        art = tmp_path / "art" / cloud
        write_velodyne(art / "velodyne" / f"{frame}.bin", lidar[k::3])  # a different cloud per role
        arts[f"pseudolidar/{cloud}"] = SimpleNamespace(path=art)
    dets = [o.with_(score=0.5) for o in KittiRoot(root).labels(frame) if o.type == "Car"]
    write_label_file(tmp_path / "det" / "data" / f"{frame}.txt", dets)
    arts["detect-infer/fpointnet/foresee"] = SimpleNamespace(path=tmp_path / "det")
    out = tmp_path / "report"
    out.mkdir()

    written = make_figures(SimpleNamespace(data_root=root, val_split="val", detectors=("fpointnet",)), arts, out)
    assert [p.name for p in written] == [f"fig6_{frame}.png", f"fig7_{frame}.png", f"view3d_{frame}.html"]
    fig = figure_from_html((out / f"view3d_{frame}.html").read_text())
    clouds = [t for t in fig["data"] if t["meta"]["kind"] == "cloud"]
    assert [t["meta"]["layer"] for t in clouds] == ["lidar", "oracle", "baseline", "foresee"]
    for trace, k in zip(clouds[1:], range(3)):
        pts = lidar[k::3]
        inside = np.all((pts[:, :3] >= [-5, -40, -3]) & (pts[:, :3] <= [75, 40, 3]), axis=1)
        assert trace["meta"]["points_in_view"] == int(inside.sum()) == len(decode_array(trace["x"]))
        r, g, b = CLOUD_RGB[trace["meta"]["layer"]]
        assert trace["marker"]["color"] == f"rgb({r},{g},{b})"  # the fig6 colours
    boxes = {t["meta"]["layer"]: t["meta"]["boxes"] for t in fig["data"] if t["meta"]["kind"] == "boxes"}
    n_gt = sum(o.type != "DontCare" for o in KittiRoot(root).labels(frame))
    assert boxes == {"ground truth": n_gt, "fpointnet on foresee": len(dets)}

    md = figures_markdown(written)
    assert (f"- frame {frame}: [fig6_{frame}.png](fig6_{frame}.png), [fig7_{frame}.png](fig7_{frame}.png), "
            f"[view3d_{frame}.html](view3d_{frame}.html)") in md.splitlines()
