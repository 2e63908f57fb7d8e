"""The doctest examples of the radio, terrain, store and importer modules run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "registry.terrain",
    "registry.radio.pathloss",
    "registry.radio.diffraction",
    "registry.radio.antenna",
    "registry.radio.linkbudget",
    "registry.radio.calibration",
    "registry.confidence",
    "registry.models",
    "registry.store",
    "registry.io.dem",
    "registry.io.population",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
