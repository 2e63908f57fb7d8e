"""Calibration of predicted RSRP against measurements (least-squares offsets).

The model is measured = predicted + offset(site). The global offset is the
least-squares constant, the mean residual. Per-site offsets minimise
sum_i (r_i - o_s)^2 + w (o_s - o_global)^2: the site's mean residual shrunk
toward the global offset with the weight of `prior_weight` measurements
(w = 0 gives the plain per-site least-squares means). Statistics "after"
are in-sample; judge a calibration on measurements held out of the fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class CalibrationResult:
    """Fitted offsets (dB, to add to predictions) and error statistics.

    Errors are predicted - measured: a negative mean error means the model
    predicts too little signal.
    """

    global_offset_db: float
    site_offsets_db: Mapping[str, float]
    site_counts: Mapping[str, int]
    n_measurements: int
    mean_error_before_db: float
    rmse_before_db: float
    mean_error_after_db: float
    rmse_after_db: float

    def offset_db(self, site_code: str) -> float:
        """Offset for a site; the global offset for sites without measurements."""
        return self.site_offsets_db.get(site_code, self.global_offset_db)


def fit_calibration(
    predicted_dbm: ArrayLike,
    measured_dbm: ArrayLike,
    site_codes: Sequence[str],
    *,
    prior_weight: float = 10.0,
) -> CalibrationResult:
    """Fit global and per-site RSRP offsets by (regularised) least squares.

    Parameters
    ----------
    predicted_dbm, measured_dbm : array_like
        Predicted and measured RSRP at the measurement points, dBm.
    site_codes : sequence of str
        Serving site of each measurement.
    prior_weight : float
        Weight of the global offset in each site's estimate, in measurements
        (>= 0; 0 = plain per-site means).

    Returns
    -------
    CalibrationResult

    Examples
    --------
    >>> r = fit_calibration([-90.0, -100.0, -80.0], [-85.0, -95.0, -81.0], ["A", "A", "B"],
    ...                     prior_weight=0.0)
    >>> r.global_offset_db, dict(r.site_offsets_db), r.rmse_after_db
    (3.0, {'A': 5.0, 'B': -1.0}, 0.0)
    """
    predicted = np.asarray(predicted_dbm, dtype=np.float64)
    measured = np.asarray(measured_dbm, dtype=np.float64)
    sites = np.asarray(site_codes, dtype=object)
    if not predicted.shape == measured.shape == sites.shape or predicted.ndim != 1:
        raise ValueError("predicted, measured and site codes must be 1-D and of equal length")
    if predicted.size == 0:
        raise ValueError("no measurements")
    if prior_weight < 0:
        raise ValueError("prior_weight must be >= 0")
    residual = measured - predicted
    global_offset = float(residual.mean())
    offsets: dict[str, float] = {}
    counts: dict[str, int] = {}
    for site in sorted(set(sites.tolist())):
        r = residual[sites == site]
        counts[site] = int(r.size)
        offsets[site] = float((r.sum() + prior_weight * global_offset) / (r.size + prior_weight))
    after = residual - np.array([offsets[s] for s in sites])
    return CalibrationResult(
        global_offset_db=global_offset,
        site_offsets_db=offsets,
        site_counts=counts,
        n_measurements=int(predicted.size),
        mean_error_before_db=float(-residual.mean()),
        rmse_before_db=float(np.sqrt(np.mean(residual**2))),
        mean_error_after_db=float(-after.mean()),
        rmse_after_db=float(np.sqrt(np.mean(after**2))),
    )
