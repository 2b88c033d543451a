"""numba kernels of the evaluator: pairwise overlaps and the devkit's per-frame statistics.

Every kernel takes flat arrays and per-frame offsets, never Python objects:

* ground truth of frame ``f`` is rows ``gt_off[f]:gt_off[f + 1]`` of the ground-truth arrays,
  detections likewise with ``det_off``;
* the overlaps of frame ``f`` are a ``(D_f, G_f)`` block stored row-major (detection-major) at
  ``pair_off[f]``: pair ``(j, i)`` of the frame lives at ``pair_off[f] + j * G_f + i``.

Boxes follow KITTI (and :mod:`kitti.boxes`): 2D boxes ``(x1, y1, x2, y2)`` in image pixels; 3D boxes
by their **bottom centre** ``(x, y, z)`` in the rectified camera frame (y down, the box spans
``[y - h, y]``), sizes ``(h, w, l)`` metres and ``ry`` about camera y. The bird's-eye footprint is the
rectangle in rect ``(x, z)`` with corners ``R(ry) @ (±l/2, ±w/2)``, ``R = [[c, s], [-s, c]]`` exactly as
the devkit's ``toPolygon``. All arithmetic is float64.

Each kernel has a plain twin in :mod:`kitti_eval.reference`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: The devkit's marker for "no candidate found" (``NO_DETECTION`` in evaluate_object.cpp).
NO_DETECTION = -10000000.0


@njit(cache=True)
def pair_offsets(gt_off: np.ndarray, det_off: np.ndarray) -> np.ndarray:
    """(F + 1,) int64 start of each frame's ``(D_f, G_f)`` overlap block in the flat pair arrays."""
    n = gt_off.shape[0] - 1
    out = np.zeros(n + 1, dtype=np.int64)
    for f in range(n):
        out[f + 1] = out[f] + (gt_off[f + 1] - gt_off[f]) * (det_off[f + 1] - det_off[f])
    return out


@njit(cache=True)
def image_overlap(a: np.ndarray, b: np.ndarray, criterion: int) -> float:
    """The devkit's ``imageBoxOverlap``: IoU (criterion -1) or intersection / area(a) (0).

    ``a``, ``b`` are ``(x1, y1, x2, y2)``; no +1 pixel convention; 0 when the boxes do not overlap.
    """
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    if criterion == 0:
        return inter / area_a
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)


@njit(cache=True, parallel=True)
def image_overlap_frames(det_box: np.ndarray, gt_box: np.ndarray, det_off: np.ndarray,
                         gt_off: np.ndarray, pair_off: np.ndarray, iou: np.ndarray,
                         det_frac: np.ndarray) -> None:
    """All 2D overlaps, parallel over frames, into ``iou`` and ``det_frac`` ((P,) each: IoU and
    intersection / detection area, the DontCare criterion)."""
    for f in prange(gt_off.shape[0] - 1):
        g0, ng = gt_off[f], gt_off[f + 1] - gt_off[f]
        for j in range(det_off[f], det_off[f + 1]):
            base = pair_off[f] + (j - det_off[f]) * ng
            for i in range(ng):
                iou[base + i] = image_overlap(det_box[j], gt_box[g0 + i], -1)
                det_frac[base + i] = image_overlap(det_box[j], gt_box[g0 + i], 0)


@njit(cache=True)
def bev_corners(x: float, z: float, l: float, w: float, ry: float, out: np.ndarray) -> None:  # noqa: E741
    """Write the footprint's 4 corners (rect x, z) into ``out[:4]`` in the devkit's order."""
    c, s = np.cos(ry), np.sin(ry)
    dl = (0.5 * l, 0.5 * l, -0.5 * l, -0.5 * l)
    dw = (0.5 * w, -0.5 * w, -0.5 * w, 0.5 * w)
    for k in range(4):
        out[k, 0] = c * dl[k] + s * dw[k] + x
        out[k, 1] = -s * dl[k] + c * dw[k] + z


@njit(cache=True)
def polygon_area(poly: np.ndarray, n: int) -> float:
    """Unsigned shoelace area of the first ``n`` vertices of ``poly``."""
    acc = 0.0
    for k in range(n):
        k1 = (k + 1) % n
        acc += poly[k, 0] * poly[k1, 1] - poly[k1, 0] * poly[k, 1]
    return abs(0.5 * acc)


@njit(cache=True)
def convex_intersection_area(a: np.ndarray, b: np.ndarray, buf0: np.ndarray, buf1: np.ndarray) -> float:
    """Area of the intersection of two convex quadrilaterals (Sutherland-Hodgman clipping).

    ``a``, ``b``: (4, 2) vertices in either winding; ``buf0``, ``buf1``: (>= 16, 2) scratch.
    Touching or disjoint polygons give 0; a polygon inside the other gives its own area.
    """
    turn = (b[1, 0] - b[0, 0]) * (b[2, 1] - b[0, 1]) - (b[1, 1] - b[0, 1]) * (b[2, 0] - b[0, 0])
    sign = 1.0 if turn > 0 else -1.0  # keep the inner side of b's edges whatever its winding
    n = 4
    for k in range(4):
        buf0[k, 0], buf0[k, 1] = a[k, 0], a[k, 1]
    src, dst = buf0, buf1
    for e in range(4):
        ex0, ey0 = b[e, 0], b[e, 1]
        dx, dy = b[(e + 1) % 4, 0] - ex0, b[(e + 1) % 4, 1] - ey0
        m = 0
        for k in range(n):
            px, py = src[k, 0], src[k, 1]
            qx, qy = src[(k + 1) % n, 0], src[(k + 1) % n, 1]
            sp = sign * (dx * (py - ey0) - dy * (px - ex0))
            sq = sign * (dx * (qy - ey0) - dy * (qx - ex0))
            if sp >= 0:
                dst[m, 0], dst[m, 1] = px, py
                m += 1
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                dst[m, 0], dst[m, 1] = px + t * (qx - px), py + t * (qy - py)
                m += 1
        n = m
        if n < 3:
            return 0.0
        src, dst = dst, src
    return polygon_area(src, n)


@njit(cache=True)
def ground_overlap(d: np.ndarray, g: np.ndarray, ca: np.ndarray, cb: np.ndarray,
                   buf0: np.ndarray, buf1: np.ndarray, out: np.ndarray) -> None:
    """BEV and 3D overlaps of one pair, the devkit's ``groundBoxOverlap`` / ``box3DOverlap``.

    ``d``, ``g``: ``(x, y, z, h, w, l, ry)``; writes ``out = (bev_iou, bev_inter / area_d,
    iou_3d, inter_vol / vol_d)``. Boxes with a non-positive footprint side intersect nothing.
    """
    out[:] = 0.0
    if d[4] <= 0 or d[5] <= 0 or g[4] <= 0 or g[5] <= 0:
        return
    reach = 0.5 * (np.hypot(d[4], d[5]) + np.hypot(g[4], g[5]))
    if abs(d[0] - g[0]) > reach or abs(d[2] - g[2]) > reach:
        return
    bev_corners(d[0], d[2], d[5], d[4], d[6], ca)
    bev_corners(g[0], g[2], g[5], g[4], g[6], cb)
    inter = convex_intersection_area(ca, cb, buf0, buf1)
    if inter <= 0:
        return
    area_d, area_g = polygon_area(ca, 4), polygon_area(cb, 4)
    out[0] = inter / (area_d + area_g - inter)
    out[1] = inter / area_d
    inter_vol = inter * max(0.0, min(d[1], g[1]) - max(d[1] - d[3], g[1] - g[3]))
    vol_d, vol_g = d[3] * d[5] * d[4], g[3] * g[5] * g[4]
    union = vol_d + vol_g - inter_vol
    out[2] = inter_vol / union if union > 0 else 0.0
    out[3] = inter_vol / vol_d if vol_d > 0 else 0.0


@njit(cache=True, parallel=True)
def ground_overlap_frames(det_box3d: np.ndarray, gt_box3d: np.ndarray, det_off: np.ndarray,
                          gt_off: np.ndarray, pair_off: np.ndarray, iou: np.ndarray,
                          det_frac: np.ndarray) -> None:
    """All BEV / 3D overlaps, parallel over frames.

    Args:
        det_box3d, gt_box3d: (N, 7) ``(x, y, z, h, w, l, ry)`` rect frame, bottom centre.
        iou: (2, P) output, rows BEV IoU and 3D IoU.
        det_frac: (2, P) output, rows BEV intersection / detection area and intersection volume /
            detection volume (the DontCare criterion).
    """
    for f in prange(gt_off.shape[0] - 1):
        ca, cb = np.empty((4, 2)), np.empty((4, 2))
        buf0, buf1, out = np.empty((16, 2)), np.empty((16, 2)), np.empty(4)
        g0, ng = gt_off[f], gt_off[f + 1] - gt_off[f]
        for j in range(det_off[f], det_off[f + 1]):
            base = pair_off[f] + (j - det_off[f]) * ng
            for i in range(ng):
                ground_overlap(det_box3d[j], gt_box3d[g0 + i], ca, cb, buf0, buf1, out)
                iou[0, base + i], det_frac[0, base + i] = out[0], out[1]
                iou[1, base + i], det_frac[1, base + i] = out[2], out[3]


@njit(cache=True)
def match_frame(g0: int, ng: int, d0: int, nd: int, base: int, ignored_gt: np.ndarray,
                ignored_det: np.ndarray, score: np.ndarray, overlap: np.ndarray,
                min_overlap: float, compute_fp: bool, thresh: float, assigned: np.ndarray,
                tp_pairs: np.ndarray) -> tuple[int, int]:
    """The ground-truth loop of the devkit's ``computeStatistics`` for one frame.

    Marks ``assigned[:nd]`` and writes each true positive's frame-local ``(gt, det)`` indices, in
    ground-truth order, to ``tp_pairs`` (ng, 2). ``compute_fp`` False: the recall pass
    (highest-scoring candidate); True: the precision pass at score ``thresh`` (highest-overlap
    valid candidate, else an ignored one). Returns ``(tp, fn)``.
    """
    tp = fn = 0
    for i in range(ng):
        ig = ignored_gt[g0 + i]
        if ig == -1:
            continue
        det_idx, valid, max_ov, assigned_ignored = -1, NO_DETECTION, 0.0, False
        for j in range(nd):
            idet = ignored_det[d0 + j]
            if idet == -1 or assigned[j] or (compute_fp and score[d0 + j] < thresh):
                continue
            ov = overlap[base + j * ng + i]
            if not ov > min_overlap:
                continue
            if not compute_fp:
                if score[d0 + j] > valid:
                    det_idx, valid = j, score[d0 + j]
            elif (ov > max_ov or assigned_ignored) and idet == 0:
                max_ov, det_idx, valid, assigned_ignored = ov, j, 1.0, False
            elif valid == NO_DETECTION and idet == 1:
                det_idx, valid, assigned_ignored = j, 1.0, True
        if valid == NO_DETECTION:
            fn += ig == 0
        elif ig == 1 or ignored_det[d0 + det_idx] == 1:
            assigned[det_idx] = True
        else:
            tp_pairs[tp, 0], tp_pairs[tp, 1] = i, det_idx
            tp += 1
            assigned[det_idx] = True
    return tp, fn


@njit(cache=True)
def count_false_positives(g0: int, ng: int, d0: int, nd: int, base: int, ignored_det: np.ndarray,
                          score: np.ndarray, thresh: float, is_dc: np.ndarray,
                          dc_overlap: np.ndarray, min_overlap: float, assigned: np.ndarray) -> int:
    """FP count of the precision pass: unassigned valid detections above ``thresh``, minus those
    swallowed by a DontCare region (``dc_overlap`` = intersection / detection area > threshold)."""
    fp = 0
    for j in range(nd):
        if not (assigned[j] or ignored_det[d0 + j] != 0 or score[d0 + j] < thresh):
            fp += 1
    for i in range(ng):
        if not is_dc[g0 + i]:
            continue
        for j in range(nd):
            if assigned[j] or ignored_det[d0 + j] != 0 or score[d0 + j] < thresh:
                continue
            if dc_overlap[base + j * ng + i] > min_overlap:
                assigned[j] = True
                fp -= 1
    return fp


@njit(cache=True)
def get_thresholds(scores: np.ndarray, n_gt: int, n_sample_pts: int) -> np.ndarray:
    """The devkit's ``getThresholds``: scores closest to ``n_sample_pts`` evenly spaced recalls."""
    v = np.sort(scores)[::-1]
    out = np.empty(v.shape[0])
    m = 0
    current = 0.0
    for i in range(v.shape[0]):
        l_recall = (i + 1) / n_gt
        r_recall = (i + 2) / n_gt if i < v.shape[0] - 1 else l_recall
        if (r_recall - current) < (current - l_recall) and i < v.shape[0] - 1:
            continue
        out[m] = v[i]
        m += 1
        current += 1.0 / (n_sample_pts - 1.0)
    return out[:m]


@njit(cache=True)
def eval_class_stats(gt_off: np.ndarray, det_off: np.ndarray, pair_off: np.ndarray,
                     ignored_gt: np.ndarray, ignored_det: np.ndarray, score: np.ndarray,
                     overlap: np.ndarray, dc_overlap: np.ndarray, is_dc: np.ndarray,
                     min_overlap: float, n_gt: int, gt_alpha: np.ndarray, det_alpha: np.ndarray,
                     tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, sim: np.ndarray) -> int:
    """The devkit's ``eval_class`` up to the counts: recall pass, ``getThresholds``, then TP / FP /
    FN / orientation similarity summed over frames (in frame order) at each threshold, written to
    ``tp``, ``fp``, ``fn``, ``sim`` (each (>= 41,)). Returns the number of thresholds (<= 41).

    A frame is re-matched only when the set of its detections above the threshold changes (its
    statistics depend on nothing else); a frame with neither TP nor FP adds no similarity.
    """
    nf = gt_off.shape[0] - 1
    tp_pairs = np.empty((max(1, np.max(np.diff(gt_off)) if nf else 1), 2), dtype=np.int64)
    assigned = np.zeros(max(1, np.max(np.diff(det_off)) if nf else 1), dtype=np.bool_)
    scores = np.empty(gt_off[-1])
    m = 0
    for f in range(nf):
        g0, ng, d0, nd = gt_off[f], gt_off[f + 1] - gt_off[f], det_off[f], det_off[f + 1] - det_off[f]
        assigned[:nd] = False
        n_tp, _ = match_frame(g0, ng, d0, nd, pair_off[f], ignored_gt, ignored_det, score, overlap,
                              min_overlap, False, 0.0, assigned, tp_pairs)
        for k in range(n_tp):
            scores[m] = score[d0 + tp_pairs[k, 1]]
            m += 1
    thresholds = get_thresholds(scores[:m], max(n_gt, 1), 41)[:41]
    nt = thresholds.shape[0]
    tp[:nt], fp[:nt], fn[:nt], sim[:nt] = 0, 0, 0, 0.0
    rel = np.empty(assigned.shape[0])
    for f in range(nf):
        g0, ng, d0, nd = gt_off[f], gt_off[f + 1] - gt_off[f], det_off[f], det_off[f + 1] - det_off[f]
        n_rel = 0  # scores of the detections that take part, sorted descending (insertion sort)
        for j in range(nd):
            if ignored_det[d0 + j] != -1:
                k = n_rel
                while k > 0 and rel[k - 1] < score[d0 + j]:
                    rel[k] = rel[k - 1]
                    k -= 1
                rel[k] = score[d0 + j]
                n_rel += 1
        active, prev_active, f_tp, f_fp, f_fn, f_sim = 0, -1, 0, 0, 0, -1.0
        for t in range(nt):
            while active < n_rel and rel[active] >= thresholds[t]:
                active += 1
            if active != prev_active:
                prev_active = active
                assigned[:nd] = False
                f_tp, f_fn = match_frame(g0, ng, d0, nd, pair_off[f], ignored_gt, ignored_det, score,
                                         overlap, min_overlap, True, thresholds[t], assigned, tp_pairs)
                f_fp = count_false_positives(g0, ng, d0, nd, pair_off[f], ignored_det, score,
                                             thresholds[t], is_dc, dc_overlap, min_overlap, assigned)
                f_sim = 0.0
                for k in range(f_tp):
                    delta = gt_alpha[g0 + tp_pairs[k, 0]] - det_alpha[d0 + tp_pairs[k, 1]]
                    f_sim += (1.0 + np.cos(delta)) / 2.0
                if f_tp == 0 and f_fp == 0:
                    f_sim = -1.0
            tp[t] += f_tp
            fp[t] += f_fp
            fn[t] += f_fn
            if f_sim != -1.0:
                sim[t] += f_sim
    return nt


@njit(cache=True, parallel=True)
def eval_tasks(gt_off: np.ndarray, det_off: np.ndarray, pair_off: np.ndarray,
               ignored_gt: np.ndarray, ignored_det: np.ndarray, score: np.ndarray,
               task_metric: np.ndarray, overlaps: np.ndarray, dc_overlaps: np.ndarray,
               is_dc: np.ndarray, min_overlap: np.ndarray, n_gt: np.ndarray,
               gt_alpha: np.ndarray, det_alpha: np.ndarray):
    """:func:`eval_class_stats` for many (class, metric, difficulty) tasks, parallel over tasks.

    Args:
        ignored_gt, ignored_det: (T, N_gt), (T, N_det) int8 cleanData states per task.
        task_metric: (T,) row of ``overlaps`` / ``dc_overlaps`` ((M, P)) each task uses.
        min_overlap, n_gt: (T,) threshold and valid ground-truth count per task.

    Returns:
        ``(n_thresholds (T,), tp, fp, fn (T, 41) int64, similarity (T, 41))``.
    """
    nt = task_metric.shape[0]
    n_thr = np.zeros(nt, dtype=np.int64)
    tp, fp = np.zeros((nt, 41), dtype=np.int64), np.zeros((nt, 41), dtype=np.int64)
    fn, sim = np.zeros((nt, 41), dtype=np.int64), np.zeros((nt, 41))
    for t in prange(nt):
        k = task_metric[t]
        n_thr[t] = eval_class_stats(gt_off, det_off, pair_off, ignored_gt[t], ignored_det[t], score,
                                    overlaps[k], dc_overlaps[k], is_dc, min_overlap[t], n_gt[t],
                                    gt_alpha, det_alpha, tp[t], fp[t], fn[t], sim[t])
    return n_thr, tp, fp, fn, sim


_POW10 = np.array([1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                   1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22])


@njit(cache=True)
def parse_decimal(buf: np.ndarray, start: int, end: int) -> tuple[float, bool]:
    """Parse ``[+-]digits[.digits][(e|E)[+-]digits]`` exactly as ``strtod`` would.

    Only numbers whose digits fit in 2^53 and whose decimal exponent is within ±22 are taken
    (mantissa and power of ten are then exact, so one IEEE multiply/divide rounds correctly);
    anything else returns ``(nan, False)`` and is left to Python's ``float``.
    """
    k, neg = start, False
    if buf[k] == 45 or buf[k] == 43:  # '-' '+'
        neg = buf[k] == 45
        k += 1
    mant, digits, frac, seen_dot = 0, 0, 0, False
    while k < end:
        c = buf[k]
        if 48 <= c <= 57:
            mant = mant * 10 + (c - 48)
            digits += 1
            frac += seen_dot
            if digits > 15:
                return np.nan, False
        elif c == 46 and not seen_dot:
            seen_dot = True
        else:
            break
        k += 1
    if digits == 0:
        return np.nan, False
    exp = 0
    if k < end and (buf[k] == 101 or buf[k] == 69):  # 'e' 'E'
        k += 1
        eneg = k < end and buf[k] == 45
        if k < end and (buf[k] == 45 or buf[k] == 43):
            k += 1
        if k == end:
            return np.nan, False
        while k < end and 48 <= buf[k] <= 57 and exp < 1000:
            exp = exp * 10 + (buf[k] - 48)
            k += 1
        exp = -exp if eneg else exp
    if k != end:
        return np.nan, False
    p = exp - frac
    if p > 22 or p < -22:
        return np.nan, False
    v = mant * _POW10[p] if p >= 0 else mant / _POW10[-p]
    return -v if neg else v, True


@njit(cache=True)
def parse_label_rows(buf: np.ndarray, file_off: np.ndarray, max_fields: int):
    """Split label_2 text (all files concatenated, ``file_off`` (F + 1,) byte ranges) into rows.

    Returns ``(values (R, max_fields - 1), n_fields (R,), type_range (R, 2), row_file (R,),
    row_line (R,), ok)``: numeric fields after the type (NaN where absent), the token count,
    the type token's byte range, and each row's file index and 1-based line. ``ok`` is False when
    any line needs the careful path (a bad field count is reported through ``n_fields``; a
    token that is not a plain decimal number, or a byte outside ASCII, clears ``ok``).
    """
    n_lines = 1
    for b in buf:
        n_lines += b == 10 or b == 13
    nvals = max_fields - 1
    values = np.full((n_lines, nvals), np.nan)
    n_fields = np.zeros(n_lines, dtype=np.int64)
    type_range = np.zeros((n_lines, 2), dtype=np.int64)
    row_file, row_line = np.zeros(n_lines, dtype=np.int64), np.zeros(n_lines, dtype=np.int64)
    r, ok = 0, True
    for f in range(file_off.shape[0] - 1):
        k, end, line = file_off[f], file_off[f + 1], 1
        while k < end:
            nf = 0
            while k < end and buf[k] != 10 and buf[k] != 13:
                c = buf[k]
                if c == 32 or c == 9 or c == 11 or c == 12:
                    k += 1
                    continue
                if c >= 128:
                    ok = False
                t0 = k
                while k < end and buf[k] > 32 and buf[k] != 127:
                    k += 1
                if k == t0:  # other control byte: let Python decide
                    ok = False
                    k += 1
                    continue
                if nf == 0:
                    type_range[r, 0], type_range[r, 1] = t0, k
                elif nf <= nvals:
                    v, good = parse_decimal(buf, t0, k)
                    values[r, nf - 1] = v
                    ok = ok and good
                nf += 1
            if nf > 0:
                n_fields[r], row_file[r], row_line[r] = nf, f, line
                r += 1
            if k < end:  # line break: \n, \r\n or \r
                k += 2 if buf[k] == 13 and k + 1 < end and buf[k + 1] == 10 else 1
            line += 1
    return values[:r], n_fields[:r], type_range[:r], row_file[:r], row_line[:r], ok
