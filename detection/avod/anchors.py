"""Anchors: k-means sizes from the train labels, a grid on the ground plane, and the empty-anchor
filter (AVOD ``grid_anchor_3d_generator.py``, ``gen_label_clusters.py``).

Anchors are ``(N, 6)`` float64 ``[x, y, z, dx, dy, dz]`` (rect frame; ``(x, y, z)`` the bottom
centre, on the ground plane; ``dx`` / ``dz`` the extents along x / z, ``dy`` the height; see
:mod:`.encoding`). Each size ``(l, w, h)`` gives two anchors per grid point: yaw 0 (``dx = l``)
and yaw π/2 (``dx = w``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kitti.labels import Object3d
from detection.avod.planes import plane_y_at
from detection.avod.settings import AvodSettings


def cluster_sizes(objects: Sequence[Object3d], class_name: str, n_clusters: int, *,
                  seed: int = 0) -> np.ndarray:
    """k-means (scikit-learn, seeded) of the (l, w, h) of a class's labelled objects.

    Returns:
        (n_clusters, 3) float64 sizes (l, w, h), sorted by length.

    Raises:
        ValueError: fewer objects of the class than clusters.
    """
    from sklearn.cluster import KMeans

    lwh = np.array([[o.l, o.w, o.h] for o in objects if o.type == class_name], dtype=np.float64)
    if lwh.shape[0] < n_clusters:
        raise ValueError(f"anchor sizes: {lwh.shape[0]} labelled {class_name} object(s), "
                         f"need at least {n_clusters} for k-means")
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(lwh)
    centres = km.cluster_centers_
    return centres[np.argsort(centres[:, 0], kind="stable")]


def grid_anchors(sizes_lwh: np.ndarray, plane: np.ndarray, settings: AvodSettings) -> np.ndarray:
    """Every anchor of the BEV area: centres every ``anchor_stride_m`` in x and z (the first at half
    a stride from the area's edge), on the ground plane, two yaws per size.

    Args:
        sizes_lwh: (K, 3) anchor sizes (l, w, h).
        plane: (4,) ground plane.
        settings: area and stride.

    Returns:
        (nz * nx * K * 2, 6) anchors, ordered z, x, size, yaw (yaw fastest).
    """
    s = settings.anchor_stride_m
    (x0, x1), (z0, z1) = settings.x_range_m, settings.z_range_m
    xs = x0 + s * (np.arange(int(np.floor((x1 - x0) / s))) + 0.5)
    zs = z0 + s * (np.arange(int(np.floor((z1 - z0) / s))) + 0.5)
    sizes = np.asarray(sizes_lwh, dtype=np.float64).reshape(-1, 3)
    dims = np.concatenate([sizes[:, [0, 2, 1]], sizes[:, [1, 2, 0]]], axis=1).reshape(-1, 3)
    zz, xx = np.meshgrid(zs, xs, indexing="ij")
    centres = np.stack([xx.ravel(), zz.ravel()], axis=1)
    n_dim = dims.shape[0]
    c = np.repeat(centres, n_dim, axis=0)
    d = np.tile(dims, (centres.shape[0], 1))
    y = plane_y_at(plane, c[:, 0], c[:, 1])
    return np.stack([c[:, 0], y, c[:, 1], d[:, 0], d[:, 1], d[:, 2]], axis=1)


def footprint_point_counts(anchors: np.ndarray, counts: np.ndarray, settings: AvodSettings) -> np.ndarray:
    """(N,) number of points in the BEV cells an anchor's footprint touches, by an integral image.

    The footprint covers the cells ``floor(col1) .. ceil(col2) - 1`` (clipped to the grid), with
    ``col = (x - x_min) / cell`` and likewise for rows (:func:`detection.avod.bev.xz_to_pixel`).
    """
    a = np.asarray(anchors, dtype=np.float64)
    rows, cols = counts.shape
    integral = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(counts, axis=0), axis=1)
    cell = settings.cell_m
    c1 = np.floor((a[:, 0] - a[:, 3] / 2 - settings.x_range_m[0]) / cell)
    c2 = np.ceil((a[:, 0] + a[:, 3] / 2 - settings.x_range_m[0]) / cell)
    r1 = np.floor((settings.z_range_m[1] - (a[:, 2] + a[:, 5] / 2)) / cell)
    r2 = np.ceil((settings.z_range_m[1] - (a[:, 2] - a[:, 5] / 2)) / cell)
    c1, c2 = (np.clip(v, 0, cols).astype(np.int64) for v in (c1, c2))
    r1, r2 = (np.clip(v, 0, rows).astype(np.int64) for v in (r1, r2))
    return integral[r2, c2] - integral[r1, c2] - integral[r2, c1] + integral[r1, c1]


def non_empty_anchors(anchors: np.ndarray, counts: np.ndarray, settings: AvodSettings) -> np.ndarray:
    """The anchors whose footprint holds at least ``anchor_min_points`` points."""
    return anchors[footprint_point_counts(anchors, counts, settings) >= settings.anchor_min_points]
