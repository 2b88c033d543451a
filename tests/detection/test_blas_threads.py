"""The detectors' entry points run NumPy's BLAS on one thread (detection.runtime.numpy_blas_one_thread)."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from detection.avod.infer import infer_avod
from detection.avod.train import train_avod
from detection.frustum_pointnet.infer import infer_fpointnet, infer_trivial_baseline
from detection.frustum_pointnet.train import train_fpointnet
from detection.runtime import numpy_blas_one_thread


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_one_blas_thread_inside_and_restored_after():
    if not _blas_threads():
        pytest.skip("NumPy has no BLAS that threadpoolctl can see")

    @numpy_blas_one_thread
    def inside(x, *, y):
        return _blas_threads(), x + y

    with threadpool_limits(limits=2, user_api="blas"):
        assert set(_blas_threads()) == {2}
        seen, value = inside(1, y=2)
        assert set(seen) == {1} and value == 3
        assert set(_blas_threads()) == {2}


@pytest.mark.parametrize("entry", [train_fpointnet, infer_fpointnet, infer_trivial_baseline, train_avod, infer_avod])
def test_entry_points_are_limited(entry):
    # functools.wraps of numpy_blas_one_thread's wrapper keeps the function as __wrapped__
    assert getattr(entry, "__wrapped__", None) is not None
    assert entry.__code__ is numpy_blas_one_thread(lambda: None).__code__
