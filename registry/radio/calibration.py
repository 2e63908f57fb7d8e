"""Calibration of predictions against field measurements: RSRP offsets and uplink factors.

RSRP: measured = predicted + offset(site). The global offset is the (robust) least-squares
constant. Per-site offsets minimise sum_i rho(r_i - o_s) + w (o_s - o_global)^2: the site's
mean residual shrunk toward the global offset with the weight of `prior_weight`
measurements (w = 0 gives the plain per-site means). With ``huber_k`` the squares become
Huber's loss (iteratively reweighted least squares, the scale from the median absolute
deviation), so a few measurements taken indoors or on the wrong cell do not drag the fit.

Uplink: measured rate = factor(technology) x predicted rate; the factor is the robust mean of
ln(measured / predicted), i.e. a fitted share of the uplink resources the model assumed.

Statistics "after" of `fit_calibration` are in-sample; `cross_validate` gives the held-out
errors (k folds, measurements of one spatial block always in the same fold) that decide
whether a calibration is worth applying.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


#: Huber's tuning constant in units of the residuals' scale: 95 % efficiency for normal
#: errors (Huber, Robust Statistics, 1981, §4.6).
HUBER_K = 1.345
#: Median absolute deviation to standard deviation for normal errors (1 / Phi^-1(3/4)).
MAD_TO_SIGMA = 1.4826
#: Reweighting passes of the Huber fit (converges in a handful for these one-parameter fits).
HUBER_ITERATIONS = 30


def huber_weights(residual: np.ndarray, k: float | None) -> np.ndarray:
    """IRLS weights of Huber's loss: 1 within k scales of zero, k*scale/|r| beyond; all ones
    without ``k`` (plain least squares) or when the residuals have no spread."""
    if k is None or residual.size < 3:
        return np.ones_like(residual)
    scale = MAD_TO_SIGMA * float(np.median(np.abs(residual - np.median(residual))))
    if scale <= 0:
        return np.ones_like(residual)
    a = np.abs(residual) / (k * scale)
    return np.where(a <= 1.0, 1.0, 1.0 / np.maximum(a, 1e-12))


def robust_mean(values: np.ndarray, k: float | None = HUBER_K) -> float:
    """Huber M-estimate of location (the plain mean without ``k``)."""
    centre = float(np.mean(values))
    if k is None:
        return centre
    centre = float(np.median(values))
    for _ in range(HUBER_ITERATIONS):
        w = huber_weights(values - centre, k)
        centre = float(np.sum(w * values) / np.sum(w))
    return centre


def fit_calibration(
    predicted_dbm: ArrayLike,
    measured_dbm: ArrayLike,
    site_codes: Sequence[str],
    *,
    prior_weight: float = 10.0,
    huber_k: float | None = None,
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
    huber_k : float or None
        Huber's constant (`HUBER_K`) for a robust fit; None for plain least squares.

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
    global_offset = robust_mean(residual, huber_k)
    weights = huber_weights(residual - global_offset, huber_k)
    offsets: dict[str, float] = {}
    counts: dict[str, int] = {}
    for site in sorted(set(sites.tolist())):
        mine = sites == site
        r, w = residual[mine], weights[mine]
        counts[site] = int(r.size)
        offsets[site] = float(
            (np.sum(w * r) + prior_weight * global_offset) / (np.sum(w) + prior_weight)
        )
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


# ---------------------------------------------------------------- corrections and held-out errors
#: Bounds of the fitted uplink factor: a field sample claiming the model is off by more than
#: ten times is a data problem, not a calibration.
UL_FACTOR_BOUNDS = (0.1, 10.0)


@dataclass(frozen=True)
class Samples:
    """Measurements paired with the prediction at their place (one entry per measurement).

    ``measured_rsrp_dbm`` / ``measured_ul_mbps`` are NaN where a measurement lacks them;
    ``group`` keeps measurements of one spatial block in one fold (nearby measurements share
    their shadowing, so splitting them would flatter the held-out error).
    """

    predicted_rsrp_dbm: np.ndarray
    measured_rsrp_dbm: np.ndarray
    predicted_ul_mbps: np.ndarray
    measured_ul_mbps: np.ndarray
    site: np.ndarray  # serving site code (object)
    technology: np.ndarray  # "4G" / "5G" (object)
    commune: np.ndarray  # commune code, "" where outside every commune (object)
    group: np.ndarray  # fold key (object)

    def __len__(self) -> int:
        return int(self.predicted_rsrp_dbm.size)

    def take(self, index: np.ndarray) -> Samples:
        return Samples(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @classmethod
    def of(cls, **columns: Any) -> Samples:
        """From plain sequences (floats may be None for "not measured")."""
        out = {}
        for name in cls.__dataclass_fields__:
            values = columns[name]
            if name in ("site", "technology", "commune", "group"):
                out[name] = np.asarray(values, dtype=object)
            else:
                out[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        return cls(**out)


@dataclass(frozen=True)
class Correction:
    """What a calibration changes: RSRP offsets (dB, added) and uplink factors (multiplied)."""

    global_offset_db: float = 0.0
    site_offsets_db: Mapping[str, float] = field(default_factory=dict)
    ul_factor: Mapping[str, float] = field(default_factory=dict)

    def rsrp(self, predicted_dbm: np.ndarray, sites: np.ndarray) -> np.ndarray:
        return predicted_dbm + np.array(
            [self.site_offsets_db.get(s, self.global_offset_db) for s in sites], dtype=np.float64
        )

    def ul(self, predicted_mbps: np.ndarray, technologies: np.ndarray) -> np.ndarray:
        return predicted_mbps * np.array(
            [self.ul_factor.get(t, 1.0) for t in technologies], dtype=np.float64
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "global_offset_db": round(self.global_offset_db, 3),
            "site_offsets_db": {s: round(v, 3) for s, v in sorted(self.site_offsets_db.items())},
            "ul_factor": {t: round(v, 4) for t, v in sorted(self.ul_factor.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Correction:
        return cls(
            float(d.get("global_offset_db", 0.0)),  # type: ignore[arg-type]
            dict(d.get("site_offsets_db", {})),  # type: ignore[call-overload]
            dict(d.get("ul_factor", {})),  # type: ignore[call-overload]
        )


def fit_correction(
    samples: Samples, *, prior_weight: float = 10.0, huber_k: float | None = HUBER_K
) -> Correction:
    """Robust RSRP offsets (global, per site) and an uplink factor per technology."""
    rsrp = np.isfinite(samples.measured_rsrp_dbm) & np.isfinite(samples.predicted_rsrp_dbm)
    offsets: tuple[float, Mapping[str, float]] = (0.0, {})
    if rsrp.any():
        fit = fit_calibration(
            samples.predicted_rsrp_dbm[rsrp],
            samples.measured_rsrp_dbm[rsrp],
            list(samples.site[rsrp]),
            prior_weight=prior_weight,
            huber_k=huber_k,
        )
        offsets = (fit.global_offset_db, dict(fit.site_offsets_db))
    factors: dict[str, float] = {}
    ul = (samples.measured_ul_mbps > 0) & (samples.predicted_ul_mbps > 0)
    for tech in sorted(set(samples.technology[ul].tolist())):
        mine = ul & (samples.technology == tech)
        log_ratio = np.log(samples.measured_ul_mbps[mine] / samples.predicted_ul_mbps[mine])
        factors[tech] = float(np.clip(np.exp(robust_mean(log_ratio, huber_k)), *UL_FACTOR_BOUNDS))
    return Correction(offsets[0], offsets[1], factors)


def _errors(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    error = predicted - measured
    return {
        "n": int(error.size),
        "mean_error": round(float(error.mean()), 3),
        "rmse": round(float(np.sqrt(np.mean(error**2))), 3),
    }


def error_table(
    predicted: np.ndarray, corrected: np.ndarray, measured: np.ndarray, keys: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Errors (predicted - measured) before and after, overall ("all") and per key."""
    ok = np.isfinite(predicted) & np.isfinite(measured) & np.isfinite(corrected)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in ["all", *sorted({str(k) for k in keys[ok]})]:
        mine = ok if key == "all" else ok & (keys.astype(str) == key)
        if mine.any():
            out[key] = {
                "before": _errors(predicted[mine], measured[mine]),
                "after": _errors(corrected[mine], measured[mine]),
            }
    return out


def folds(groups: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold number of each sample: whole groups dealt at random to ``k`` folds."""
    keys = sorted({str(g) for g in groups})
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_of = {keys[i]: n % k for n, i in enumerate(order)}
    return np.array([fold_of[str(g)] for g in groups], dtype=np.int64)


@dataclass(frozen=True)
class CrossValidation:
    """Held-out errors of a calibration and the correction fitted on every sample."""

    correction: Correction
    #: quantity ("rsrp_db", "ul_mbps") → grouping ("technology", "commune") → key → before/after
    errors: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]]
    k: int

    def lowers(self, quantity: str) -> bool:
        """Whether the calibration lowers the held-out RMSE of ``quantity`` overall."""
        overall = self.errors.get(quantity, {}).get("technology", {}).get("all")
        return bool(overall and overall["after"]["rmse"] < overall["before"]["rmse"])


def cross_validate(
    samples: Samples,
    *,
    k: int = 5,
    seed: int = 0,
    prior_weight: float = 10.0,
    huber_k: float | None = HUBER_K,
) -> CrossValidation:
    """K-fold cross-validation: each fold's measurements are corrected by the fit on the
    others; errors before/after per technology and per commune (RSRP in dB, uplink in Mbps).
    With fewer groups than ``k``, each group is its own fold (leave-one-group-out)."""
    if len(samples) == 0:
        raise ValueError("no measurements")
    k = max(2, min(k, len({str(g) for g in samples.group})))
    fold = folds(samples.group, k, seed)
    rsrp_after = np.full(len(samples), np.nan)
    ul_after = np.full(len(samples), np.nan)
    for f in range(k):
        held = fold == f
        correction = fit_correction(samples.take(~held), prior_weight=prior_weight, huber_k=huber_k)
        test = samples.take(held)
        rsrp_after[held] = correction.rsrp(test.predicted_rsrp_dbm, test.site)
        ul_after[held] = correction.ul(test.predicted_ul_mbps, test.technology)
    errors = {
        quantity: {
            grouping: error_table(predicted, after, measured, getattr(samples, grouping))
            for grouping in ("technology", "commune")
        }
        for quantity, predicted, after, measured in (
            ("rsrp_db", samples.predicted_rsrp_dbm, rsrp_after, samples.measured_rsrp_dbm),
            ("ul_mbps", samples.predicted_ul_mbps, ul_after, samples.measured_ul_mbps),
        )
    }
    full = fit_correction(samples, prior_weight=prior_weight, huber_k=huber_k)
    return CrossValidation(full, errors, k)
