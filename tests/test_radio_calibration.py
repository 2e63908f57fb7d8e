"""Least-squares calibration offsets."""

from __future__ import annotations

import numpy as np
import pytest

from registry.radio.calibration import fit_calibration


def _measurements(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    truth = {"A": 6.0, "B": 2.0, "C": -1.0}
    sites = [s for s, n in (("A", 40), ("B", 30), ("C", 5)) for _ in range(n)]
    predicted = rng.uniform(-120.0, -70.0, len(sites))
    measured = predicted + np.array([truth[s] for s in sites]) + rng.normal(0.0, 1.0, len(sites))
    return predicted, measured, sites


def test_plain_per_site_offsets_recover_the_truth() -> None:
    predicted, measured, sites = _measurements()
    r = fit_calibration(predicted, measured, sites, prior_weight=0.0)
    assert r.global_offset_db == pytest.approx(np.mean(measured - predicted))
    assert r.site_offsets_db["A"] == pytest.approx(6.0, abs=0.5)
    assert r.site_offsets_db["C"] == pytest.approx(-1.0, abs=1.0)
    assert r.rmse_after_db < 1.2 < r.rmse_before_db
    assert r.mean_error_after_db == pytest.approx(0.0, abs=1e-9)
    assert r.site_counts == {"A": 40, "B": 30, "C": 5}
    assert r.offset_db("unknown") == r.global_offset_db


def test_regularised_offsets_shrink_toward_global() -> None:
    predicted, measured, sites = _measurements()
    plain = fit_calibration(predicted, measured, sites, prior_weight=0.0)
    shrunk = fit_calibration(predicted, measured, sites, prior_weight=10.0)
    for site in "ABC":
        gap_plain = abs(plain.site_offsets_db[site] - plain.global_offset_db)
        gap_shrunk = abs(shrunk.site_offsets_db[site] - shrunk.global_offset_db)
        assert gap_shrunk < gap_plain
    # the site with few measurements is pulled furthest, relatively
    ratio = {
        s: (shrunk.site_offsets_db[s] - shrunk.global_offset_db)
        / (plain.site_offsets_db[s] - plain.global_offset_db)
        for s in "ABC"
    }
    assert ratio["C"] < ratio["B"] < ratio["A"]


def test_inputs_are_validated_and_not_mutated() -> None:
    predicted, measured, sites = _measurements()
    before = predicted.copy()
    fit_calibration(predicted, measured, sites)
    np.testing.assert_array_equal(predicted, before)
    with pytest.raises(ValueError):
        fit_calibration(predicted[:-1], measured, sites)
    with pytest.raises(ValueError):
        fit_calibration([], [], [])
