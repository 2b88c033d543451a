"""One frame's clouds and boxes as a self-contained 3D page (plotly offline): arrays in, HTML out.

The page is a single ``.html`` file holding plotly.js (the bundle shipped with the ``plotly``
Python package, inlined) and the figure as JSON; opened in a browser it loads nothing from the
network, so it can be copied off a server (``scp``) and opened anywhere.

Conventions (as :mod:`pseudolidar.viz`): clouds are (N, >=3) arrays in the **velodyne** frame
(x forward, y left, z up, metres, the LiDAR at the origin); boxes are :class:`kitti.Boxes3D` in the
rect camera frame (bottom centre, camera y down, yaw about camera y) moved to the velodyne frame
with the frame's :class:`kitti.Calibration`.

What the page shows, one toggle button per layer (the legend toggles them too):

* every cloud in its colour, cropped to the view box and subsampled to ``HtmlView.max_points``
  (a uniform random subset, fixed seed; the cap and the counts are in the legend);
* box layers as 3D wireframes (12 edges), hover on a corner gives class, score, distance, size;
* the ego car (4 m x 1.8 m x 1.5 m around the LiDAR, an arrow forward) and a metres grid on the
  ground plane (``z = -GROUND_BELOW_LIDAR_M``, KITTI's LiDAR mounting height);
* camera presets: bird's-eye view (orthographic, x forward up the screen), the driver's view
  (perspective, from the driver's eyes looking ahead) and a chase view. ``page.html#driver``
  opens on a preset.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Final, Sequence

import numpy as np

from kitti import Calibration
from pseudolidar.viz import BoxLayer, CloudLayer, box_corners_velo

#: Default cap on the points of one cloud layer in a page.
DEFAULT_MAX_POINTS: Final[int] = 200_000
#: KITTI's LiDAR is mounted 1.73 m above the road: the grid and the ego car stand at this z.
GROUND_BELOW_LIDAR_M: Final[float] = 1.73
#: The ego car around the LiDAR (metres, velodyne frame), as the BEV pictures draw it.
EGO_X_M: Final[tuple[float, float]] = (-2.7, 1.3)
EGO_HALF_WIDTH_M: Final[float] = 0.9
EGO_HEIGHT_M: Final[float] = 1.5
#: The driver's-view camera (velodyne frame): a driver's eye height (1.23 m above the road) and
#: lateral seat (left-hand drive, as the KITTI recording car), moved just in front of the ego car's
#: front face so that its wireframe stays behind the camera.
DRIVER_EYE_M: Final[tuple[float, float, float]] = (1.6, 0.37, -0.5)
#: Camera preset names (``page.html#<name>`` opens on one).
#: the share of the page's width (from the left) the 3D scene and its axis labels keep; the legend
#: (about 260 px wide at the default caption) sits in the rest, so it covers no axis label.
LEGEND_FREE_X: Final[float] = 0.78
CAMERAS: Final[tuple[str, ...]] = ("bev", "driver", "chase")
#: The id of the ``<script type="application/json">`` holding the figure.
FIGURE_ID: Final[str] = "foresee-figure"

_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))
_EGO_RGB = (255, 255, 255)
_GRID_RGB = (90, 90, 90)
_CAMERA_LABELS = {"bev": "BEV", "driver": "driver's view", "chase": "chase"}


@dataclass(frozen=True)
class HtmlView:
    """The box shown, the point cap and the look of a page.

    Attributes:
        x_range_m, y_range_m, z_range_m: the view box (velodyne frame, metres); points outside it
            are left out of the page (before the cap).
        max_points: at most this many points per cloud layer (uniform random subset).
        seed: seed of that subset (same inputs, same page).
        grid_m: spacing of the ground grid.
        point_size_px: marker size of the cloud points.
        initial_camera: the preset the page opens on (one of :data:`CAMERAS`).
    """

    x_range_m: tuple[float, float] = (-5.0, 75.0)
    y_range_m: tuple[float, float] = (-40.0, 40.0)
    z_range_m: tuple[float, float] = (-3.0, 3.0)
    max_points: int = DEFAULT_MAX_POINTS
    seed: int = 0
    grid_m: float = 10.0
    point_size_px: float = 1.5
    initial_camera: str = "bev"

    def __post_init__(self) -> None:
        for name in ("x_range_m", "y_range_m", "z_range_m"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"HtmlView.{name}: expected finite lo < hi, got {(lo, hi)}")
        if self.max_points < 1:
            raise ValueError(f"HtmlView.max_points: expected >= 1, got {self.max_points}")
        if not self.grid_m > 0 or not self.point_size_px > 0:
            raise ValueError("HtmlView: grid_m and point_size_px must be positive")
        if self.initial_camera not in CAMERAS:
            raise ValueError(f"HtmlView.initial_camera: {self.initial_camera!r} is not one of {CAMERAS}")

    @property
    def ranges(self) -> np.ndarray:
        """(3, 2) ``[[x0, x1], [y0, y1], [z0, z1]]``."""
        return np.array([self.x_range_m, self.y_range_m, self.z_range_m], dtype=np.float64)

    @property
    def aspect(self) -> np.ndarray:
        """(3,) plotly aspect ratio: metres in proportion, the longer of x and y = 1.8 (plotly's
        orthographic zoom is the aspect ratio's scale; 1.8 fills the page in the BEV preset)."""
        r = self.ranges
        size = r[:, 1] - r[:, 0]
        return 1.8 * size / max(size[0], size[1])

    def to_scene(self, points_m: np.ndarray) -> dict[str, float]:
        """A velodyne point (metres) in plotly's camera coordinates (the box centred at 0, each
        axis spanning its aspect ratio)."""
        r = self.ranges
        p = (np.asarray(points_m, dtype=np.float64) - r.mean(axis=1)) / (r[:, 1] - r[:, 0]) * self.aspect
        return {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])}


def points_in_view(points_velo: np.ndarray, view: HtmlView) -> np.ndarray:
    """(N,) bool: points inside the view box (bounds included)."""
    p = np.asarray(points_velo)[:, :3]
    r = view.ranges
    return np.all((p >= r[:, 0]) & (p <= r[:, 1]), axis=1)


def subsample_indices(n: int, cap: int, seed: int) -> np.ndarray:
    """Sorted indices of ``min(n, cap)`` distinct points out of ``n``: all when ``n <= cap``, else a
    uniform random subset drawn with ``seed``."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def cloud_for_page(points_velo: np.ndarray, view: HtmlView) -> tuple[np.ndarray, int]:
    """(M, 3) float32 points of one layer as the page holds them (cropped, then capped) and the
    number of points in the view box before the cap."""
    p = np.asarray(points_velo)
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"expected an (N, >=3) cloud, got shape {p.shape}")
    inside = p[points_in_view(p, view), :3]
    keep = subsample_indices(len(inside), view.max_points, view.seed)
    return inside[keep].astype(np.float32), int(len(inside))


def _segments(points: np.ndarray, pairs: Sequence[tuple[int, int]]) -> list[list[float | None]]:
    """x, y, z lists drawing each (a, b) segment of ``points``, separated by gaps (None)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    zs: list[float | None] = []
    for a, b in pairs:
        for k in (a, b):
            xs.append(float(points[k, 0]))
            ys.append(float(points[k, 1]))
            zs.append(float(points[k, 2]))
        xs.append(None)
        ys.append(None)
        zs.append(None)
    return [xs, ys, zs]


def box_wireframes(corners_velo: np.ndarray) -> list[list[float | None]]:
    """x, y, z lists of the 12 edges of each (8, 3) box (corner order of :func:`kitti.box_corners_rect`),
    one segment per edge, segments separated by None."""
    out: list[list[float | None]] = [[], [], []]
    for corners in np.asarray(corners_velo, dtype=np.float64).reshape(-1, 8, 3):
        for axis, values in zip(out, _segments(corners, _EDGES)):
            axis.extend(values)
    return out


def ego_car_lines() -> list[list[float | None]]:
    """x, y, z lists of the ego car's wireframe and an arrow pointing forward on its roof."""
    (x0, x1), w, z0 = EGO_X_M, EGO_HALF_WIDTH_M, -GROUND_BELOW_LIDAR_M
    z1 = z0 + EGO_HEIGHT_M
    corners = np.array([[x1, w, z0], [x1, -w, z0], [x0, -w, z0], [x0, w, z0],
                        [x1, w, z1], [x1, -w, z1], [x0, -w, z1], [x0, w, z1]])
    lines = box_wireframes(corners[None])
    arrow = np.array([[x0 + 1.0, 0.0, z1], [x1, 0.0, z1], [x1 - 0.8, 0.5, z1], [x1 - 0.8, -0.5, z1]])
    for axis, values in zip(lines, _segments(arrow, ((0, 1), (1, 2), (1, 3)))):
        axis.extend(values)
    return lines


def grid_lines(view: HtmlView) -> tuple[list[list[float | None]], list[tuple[float, float, str]]]:
    """The ground grid: x, y, z lists of its lines every ``grid_m`` metres at
    ``z = -GROUND_BELOW_LIDAR_M`` and (x, y, text) labels: distance ahead along the right edge,
    distance to the left (negative: right) along the far edge."""
    (x0, x1), (y0, y1), g = view.x_range_m, view.y_range_m, view.grid_m
    z = -GROUND_BELOW_LIDAR_M
    xs = np.arange(math.ceil(x0 / g) * g, x1 + 1e-9, g)
    ys = np.arange(math.ceil(y0 / g) * g, y1 + 1e-9, g)
    ends = [((x, y0), (x, y1)) for x in xs] + [((x0, y), (x1, y)) for y in ys]
    pts = np.array([[a[0], a[1], z] for pair in ends for a in pair])
    lines = _segments(pts, [(2 * k, 2 * k + 1) for k in range(len(ends))])
    labels = ([(float(x), float(y0), f"x {x + 0.0:g} m") for x in xs]
              + [(float(x1), float(y), f"y {y + 0.0:g}") for y in ys])
    return lines, labels


def camera_presets(view: HtmlView) -> dict[str, dict]:
    """plotly ``scene.camera`` of each preset of :data:`CAMERAS`."""
    ground = -GROUND_BELOW_LIDAR_M
    x_mid = float(np.mean(view.x_range_m))
    eye = DRIVER_EYE_M
    return {
        "bev": {"eye": {"x": 0.0, "y": 0.0, "z": 0.6}, "center": {"x": 0.0, "y": 0.0, "z": 0.0},
                "up": {"x": 1.0, "y": 0.0, "z": 0.0}, "projection": {"type": "orthographic"}},
        "driver": {"eye": view.to_scene(eye), "center": view.to_scene((eye[0] + 30.0, eye[1], ground + 0.6)),
                   "up": {"x": 0.0, "y": 0.0, "z": 1.0}, "projection": {"type": "perspective"}},
        "chase": {"eye": view.to_scene((view.x_range_m[0] - 15.0, 0.0, 20.0)),
                  "center": view.to_scene((x_mid, 0.0, ground)),
                  "up": {"x": 0.0, "y": 0.0, "z": 1.0}, "projection": {"type": "perspective"}},
    }


def _rgb(c: Sequence[int]) -> str:
    return f"rgb({int(c[0])},{int(c[1])},{int(c[2])})"


def _box_hover(layer: BoxLayer, corners_velo: np.ndarray) -> list[str | None]:
    """Hover text per vertex of :func:`box_wireframes` (None at the gaps)."""
    out: list[str | None] = []
    b = layer.boxes
    for k in range(len(b)):
        name = layer.names[k] if k < len(layer.names) else "box"
        centre = corners_velo[k].mean(axis=0)
        score = f"<br>score {b.score[k]:.3f}" if np.isfinite(b.score[k]) else ""
        h, w, l = b.hwl[k]
        text = (f"{html.escape(name)} ({html.escape(layer.label or 'boxes')}){score}"
                f"<br>{math.hypot(centre[0], centre[1]):.1f} m away (x {centre[0]:.1f}, y {centre[1]:.1f})"
                f"<br>h w l {h:.2f} {w:.2f} {l:.2f} m")
        out.extend([text, text, None] * len(_EDGES))
    return out


def build_figure(clouds: Sequence[CloudLayer], boxes: Sequence[BoxLayer] = (),
                 calib: Calibration | None = None, *, view: HtmlView = HtmlView(), title: str = "") -> dict:
    """The page's plotly figure: ``{"data", "layout", "config"}`` (cloud coordinates as float32
    NumPy arrays, which :func:`render_html` writes as base64 typed arrays).

    Args:
        clouds: drawn in order, each as one trace (cropped to the view box, capped).
        boxes: box layers, each one wireframe trace; need ``calib``.
        calib: the frame's calibration (rect -> velodyne) when there are boxes.
        view: view box, cap, camera.
        title: shown at the top of the page.

    Every trace carries ``meta = {"layer": name, "kind": "cloud" | "boxes" | "ego" | "grid", ...}``
    (clouds also ``points_in_view`` and ``points_shown``); ``layout.meta.cameras`` holds the presets.
    """
    import plotly.graph_objects as go

    if any(len(b.boxes) for b in boxes) and calib is None:
        raise ValueError("build_figure: boxes need the frame's calib (rect -> velodyne)")
    traces: list = []
    layers: list[tuple[str, list[int]]] = []

    def add(name: str, *items) -> None:
        layers.append((name, list(range(len(traces), len(traces) + len(items)))))
        traces.extend(items)

    for c in clouds:
        pts, n_in = cloud_for_page(c.points_velo, view)
        label = c.label or "cloud"
        shown = f"{len(pts):,}" if len(pts) == n_in else f"{len(pts):,} of {n_in:,}"
        add(label, go.Scatter3d(
            x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=f"{label}: {shown} pts",
            marker={"size": view.point_size_px, "color": _rgb(c.color_rgb)},
            hovertemplate=f"{html.escape(label)}<br>x %{{x:.2f}} y %{{y:.2f}} z %{{z:.2f}} m<extra></extra>",
            meta={"layer": label, "kind": "cloud", "points_in_view": n_in, "points_shown": int(len(pts))}))
    for b in boxes:
        label = b.label or "boxes"
        corners = box_corners_velo(b.boxes, calib) if len(b.boxes) else np.zeros((0, 8, 3))
        x, y, z = box_wireframes(corners)
        add(label, go.Scatter3d(
            x=x, y=y, z=z, mode="lines", name=f"{label}: {len(b.boxes)} boxes",
            line={"color": _rgb(b.color_rgb), "width": 4}, hovertext=_box_hover(b, corners),
            hoverinfo="text", connectgaps=False, meta={"layer": label, "kind": "boxes", "boxes": len(b.boxes)}))
    x, y, z = ego_car_lines()
    add("ego car", go.Scatter3d(x=x, y=y, z=z, mode="lines", name="ego car", hoverinfo="skip",
                                line={"color": _rgb(_EGO_RGB), "width": 4}, connectgaps=False,
                                meta={"layer": "ego car", "kind": "ego"}))
    (x, y, z), labels = grid_lines(view)
    grid_name = f"{view.grid_m:g} m grid"
    add(grid_name,
        go.Scatter3d(x=x, y=y, z=z, mode="lines", name=grid_name, hoverinfo="skip", connectgaps=False,
                     line={"color": _rgb(_GRID_RGB), "width": 1}, legendgroup="grid",
                     meta={"layer": grid_name, "kind": "grid"}),
        go.Scatter3d(x=[t[0] for t in labels], y=[t[1] for t in labels],
                     z=[-GROUND_BELOW_LIDAR_M] * len(labels), mode="text", text=[t[2] for t in labels],
                     textfont={"color": _rgb((170, 170, 170)), "size": 11}, textposition="top center",
                     hoverinfo="skip", showlegend=False, legendgroup="grid",
                     meta={"layer": grid_name, "kind": "grid"}))
    cams = camera_presets(view)
    r = view.ranges
    axis = {"visible": False, "showspikes": False, "autorange": False}  # the grid layer has the metres
    aspect = dict(zip("xyz", (float(a) for a in view.aspect)))
    # active -1: the first click applies args (hide), the next args2 (show again)
    toggles = [{"type": "buttons", "direction": "down", "showactive": False, "active": -1,
                "x": 0.0, "xanchor": "left", "y": 0.90 - 0.055 * i, "yanchor": "top", "pad": {"l": 4, "t": 0},
                "bgcolor": "#333", "bordercolor": "#666", "font": {"color": "#eee", "size": 11},
                "buttons": [{"label": f"toggle {name}", "method": "restyle",
                             "args": [{"visible": False}, idx], "args2": [{"visible": True}, idx]}]}
               for i, (name, idx) in enumerate(layers)]
    presets = {"type": "buttons", "direction": "right", "showactive": False,
               "x": 0.0, "xanchor": "left", "y": 0.97, "yanchor": "top", "pad": {"l": 4},
               "bgcolor": "#333", "bordercolor": "#666", "font": {"color": "#eee", "size": 11},
               "buttons": [{"label": _CAMERA_LABELS[n], "method": "relayout",
                            "args": [{"scene.camera": cams[n], "scene.aspectratio": aspect}]} for n in CAMERAS]}
    cap = f"clouds: points in the box shown,<br>at most {view.max_points:,} per layer<br>(random subset)"
    layout = go.Layout(
        template="plotly_dark", paper_bgcolor="#000", font={"color": "#ddd"},
        margin={"l": 0, "r": 0, "t": 30, "b": 0}, showlegend=True,
        title={"text": html.escape(title), "x": 0.01, "font": {"size": 14}} if title else None,
        # the scene keeps the left LEGEND_FREE_X of the page, the legend the rest: it covers no axis label
        legend={"title": {"text": cap, "font": {"size": 11}}, "x": 1.0, "xanchor": "right", "y": 1.0,
                "bgcolor": "rgba(20,20,20,0.8)", "itemsizing": "constant"},
        scene={"domain": {"x": [0.0, LEGEND_FREE_X], "y": [0.0, 1.0]},"xaxis": {**axis, "range": list(r[0])}, "yaxis": {**axis, "range": list(r[1])},
               "zaxis": {**axis, "range": list(r[2])}, "aspectmode": "manual", "aspectratio": aspect,
               "bgcolor": "#000", "camera": cams[view.initial_camera], "dragmode": "orbit"},
        updatemenus=[presets, *toggles], meta={"cameras": cams, "layers": [n for n, _ in layers]},
        hoverlabel={"bgcolor": "#222", "font": {"color": "#fff"}})
    fig = go.Figure(data=traces, layout=layout).to_plotly_json()
    fig["config"] = {"displaylogo": False, "showLink": False, "showSendToCloud": False,
                     "showEditInChartStudio": False, "scrollZoom": True, "responsive": True}
    return fig


def plotly_js() -> str:
    """The plotly.js bundle shipped with the ``plotly`` package (no network)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _json_for_script(obj: dict) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>``, ``&`` written as \\u escapes (valid JSON).

    plotly's encoder turns NumPy arrays into base64 typed arrays but also escapes every ``/``
    (``\\u002f``, +18 % on base64 data); its output is re-written compactly with only the three
    characters that could end the script escaped.
    """
    from plotly.io import to_json

    compact = json.dumps(json.loads(to_json(obj, validate=False, engine="json")), separators=(",", ":"))
    return compact.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_LOADER = """
(function () {
  var fig = JSON.parse(document.getElementById("%(fid)s").textContent);
  var cams = fig.layout.meta.cameras, want = window.location.hash.slice(1);
  if (cams[want]) fig.layout.scene.camera = cams[want];
  var t0 = performance.now();
  window.foreseeReady = Plotly.newPlot("plot", fig.data, fig.layout, fig.config).then(function (gd) {
    document.body.setAttribute("data-plot-ms", (performance.now() - t0).toFixed(0));
    document.body.setAttribute("data-ready-ms", performance.now().toFixed(0));
    return gd;
  });
})();
"""


def render_html(figure: dict, *, title: str = "foresee") -> str:
    """One self-contained HTML page showing ``figure`` (plotly.js and the data inlined)."""
    js = plotly_js()
    if "</script" in js.lower():  # would end the inline script early
        raise RuntimeError("the plotly.js bundle contains '</script': cannot inline it")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title>",
        "<meta name=\"generator\" content=\"foresee pseudolidar.html_view\">",
        "<style>html,body{margin:0;height:100%;background:#000;overflow:hidden}"
        "#plot{position:absolute;left:0;top:0;right:0;bottom:0}</style></head>\n<body>\n",
        "<div id=\"plot\"></div>\n<script>", js, "</script>\n",
        f"<script type=\"application/json\" id=\"{FIGURE_ID}\">", _json_for_script(figure), "</script>\n",
        "<script>", _LOADER % {"fid": FIGURE_ID}, "</script>\n</body></html>\n",
    ])


def build_page(clouds: Sequence[CloudLayer], boxes: Sequence[BoxLayer] = (), calib: Calibration | None = None,
               *, view: HtmlView = HtmlView(), title: str = "") -> str:
    """:func:`build_figure` rendered by :func:`render_html`: the page as a string."""
    return render_html(build_figure(clouds, boxes, calib, view=view, title=title), title=title or "foresee")


def figure_from_html(page: str) -> dict:
    """The figure JSON a page holds (typed arrays still encoded), for tests and tools."""
    start = page.index(f'id="{FIGURE_ID}">') + len(f'id="{FIGURE_ID}">')
    return json.loads(page[start:page.index("</script>", start)])


def decode_array(value) -> np.ndarray:
    """A plotly data array as NumPy: a list (None -> NaN) or a ``{"dtype", "bdata"}`` typed array."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).copy()
    return np.array([np.nan if v is None else v for v in value], dtype=np.float64)
