"""The docstring examples of the pseudolidar modules run and hold."""

from __future__ import annotations

import doctest

import pytest

import pseudolidar.backproject
import pseudolidar.settings


@pytest.mark.parametrize("module", [pseudolidar.backproject, pseudolidar.settings])
def test_docstring_examples_hold(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
