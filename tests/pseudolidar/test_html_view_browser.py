"""The 3D page in a real browser: headless Chromium renders every layer where it belongs, the
buttons work, and the page makes no network request (NetLog of a browser whose network is cut).

Needs Debian's ``chromium`` package (``apt-get install -y chromium``) or FORESEE_CHROMIUM; skipped
without it. Slow: each browser run takes 5-20 s on a loaded 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kitti import Boxes3D, KittiRoot
from pseudolidar import html_view, viz
from pseudolidar.html_browser import chromium_binary, run_headless

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_binary() is None,
                       reason="no Chromium: install Debian's `chromium` package (or set FORESEE_CHROMIUM)"),
]

WINDOW = (1200, 800)
# velodyne (x, y) centres of what the page draws, and its colour
BLUE, RED, YELLOW = (40, 120, 255), (240, 40, 40), (255, 225, 0)
CLOUDS = {"lidar": ((50.0, 20.0), BLUE), "baseline": ((50.0, -20.0), RED), "foresee": ((20.0, 0.0), YELLOW)}
GT_XY, DET_XY = (35.0, 25.0), (35.0, -25.0)
# the legend sits in the top-right corner of the window: its swatches are left out of the analysis
LEGEND = (slice(0, 200), slice(820, WINDOW[0]))


def _blob(xy, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform([-3, -3, -1.5], [3, 3, -0.5], size=(n, 3)) + [xy[0], xy[1], 0.0]
    return np.concatenate([p, np.ones((n, 1))], axis=1).astype(np.float32)


def _box(calib, xy, score):
    loc = calib.velo_to_rect(np.array([[xy[0], xy[1], -html_view.GROUND_BELOW_LIDAR_M]]))
    return Boxes3D(loc, np.array([[1.5, 1.6, 4.0]]), np.array([np.pi / 2]), np.array([score]))


@pytest.fixture(scope="module")
def page(tmp_path_factory, sample_root) -> Path:
    calib = KittiRoot(sample_root).calib("000008")
    clouds = [viz.CloudLayer(_blob(xy, seed=i), rgb, name) for i, (name, (xy, rgb)) in enumerate(CLOUDS.items())]
    boxes = [viz.BoxLayer(_box(calib, GT_XY, np.nan), viz.GT_BOX_RGB, "ground truth", ("Car",)),
             viz.BoxLayer(_box(calib, DET_XY, 0.9), viz.DET_BOX_RGB, "detections", ("Car",))]
    path = tmp_path_factory.mktemp("page") / "page.html"
    path.write_text(html_view.build_page(clouds, boxes, calib, view=html_view.HtmlView(point_size_px=3)))
    return path


def _mask(img: np.ndarray, rgb, tol: int = 30) -> np.ndarray:
    m = np.all(np.abs(img.astype(int) - np.array(rgb)) <= tol, axis=2)
    m[LEGEND] = False
    return m


def _shot(url: str, out: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    run = run_headless(url, screenshot=out, window_wh=WINDOW)
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    return img, run.requests


def test_page_renders_every_layer_where_it_belongs_without_network(page, tmp_path):
    img, requests = _shot(page.as_uri(), tmp_path / "bev.png")
    assert requests == (), f"the page asked the network for {requests}"
    things = {**{n: (xy, rgb) for n, (xy, rgb) in CLOUDS.items()},
              "ground truth": (GT_XY, viz.GT_BOX_RGB), "detections": (DET_XY, viz.DET_BOX_RGB)}
    rows, xy = [], []
    for name, (centre, rgb) in things.items():
        m = _mask(img, rgb)
        assert m.sum() > 100, f"{name}: {m.sum()} pixels of its colour"
        r, c = np.nonzero(m)
        rows.append((c.mean(), r.mean()))
        xy.append(centre)
    # BEV: col = c0 - s·y (left is +y), row = r0 - s·x (forward is up), one scale s for both
    xy, px = np.array(xy), np.array(rows)
    a = np.zeros((2 * len(xy), 3))
    a[0::2, 0], a[0::2, 2] = 1.0, -xy[:, 1]
    a[1::2, 1], a[1::2, 2] = 1.0, -xy[:, 0]
    sol, *_ = np.linalg.lstsq(a, px.reshape(-1), rcond=None)
    c0, r0, s = sol
    resid = np.abs(a @ sol - px.reshape(-1)).max()
    assert s > 3.0 and resid < 6.0, f"layers not where the BEV puts them: scale {s:.2f} px/m, residual {resid:.1f} px"
    # the ego car (white) around the fitted origin
    white = _mask(img, (255, 255, 255), tol=20)
    r, c = np.nonzero(white)
    near = (np.abs(c - c0) < 2 * s) & (np.abs(r - r0 - 0.7 * s) < 3.5 * s)
    assert near.sum() > 20, "no ego car at the LiDAR"


def test_buttons_toggle_layers_and_switch_to_the_drivers_view(page, tmp_path):
    click = """<script>
window.foreseeReady.then(function () {
  function press(label) {
    var b = Array.prototype.find.call(document.querySelectorAll("g.updatemenu-button"),
                                      function (el) { return el.textContent === label; });
    b.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  }
  press("toggle lidar");
  press("toggle baseline");
  press("toggle baseline");  // hidden, then shown again
  press("driver's view");
});
</script></body>"""
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.read_text().replace("</body>", click))
    img, requests = _shot(clicked.as_uri(), tmp_path / "driver.png")
    assert requests == ()
    assert _mask(img, BLUE).sum() == 0, "the lidar layer is still drawn after its toggle"
    assert _mask(img, RED).sum() > 50, "baseline not shown again after its second toggle"
    centre_col = WINDOW[0] / 2
    cols = {}
    for name, rgb in (("baseline", RED), ("foresee", YELLOW), ("gt", viz.GT_BOX_RGB), ("det", viz.DET_BOX_RGB)):
        r, c = np.nonzero(_mask(img, rgb))
        assert len(r) > 50, f"{name} missing in the driver's view"
        cols[name] = (c.mean(), r.mean())
    # seen from the driver's seat: +y (left) on the left, -y on the right, the near blob lower down
    assert cols["gt"][0] < centre_col < cols["det"][0]
    assert cols["baseline"][0] > cols["foresee"][0]
    assert cols["foresee"][1] > cols["baseline"][1]


def test_network_check_sees_a_page_that_loads_from_the_network(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><img src="http://example.invalid/a.png">'
                   '<script>fetch("https://example.org/b.json").catch(function () {});</script></body></html>')
    run = run_headless(bad.as_uri())
    assert set(run.requests) == {"http://example.invalid/a.png", "https://example.org/b.json"}
