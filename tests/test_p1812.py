"""ITU-R P.1812 (`registry.radio.p1812`) against the ITU-R SG3 validation set, and its rules."""

from __future__ import annotations

import csv
import doctest
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry.errors import ValidationError
from registry.radio import p1812
from registry.radio.p1812 import inverse_normal_q, p1812_loss, path_centre_latitude

FIXTURES = Path(__file__).parent / "fixtures" / "p1812"
LOGS = sorted((FIXTURES / "results").glob("*_log.csv"))
TOLERANCE = 1e-6  # relative to max(1, |value|); the logs print 10 significant digits

# Log row (name, equation) -> P1812Result attribute. The logs' Lbulla, Lbulls and Ldsph
# rows are those of the last delta-Bullington evaluated, the one at aβ (they add up to Ldβ,
# not Ld50), and their "Lbd, eq. (43)" row holds the value after eq. (61): Lbda. Lbd itself
# is checked through Lb0p + Ldp below.
ROWS = {
    ("d (km)", ""): "d_km",
    ("dlt (km)", "Eq (78)"): "dlt_km",
    ("dlr (km)", "Eq (81a)"): "dlr_km",
    ("th_t (mrad)", "Eqs (76-78)"): "theta_t_mrad",
    ("th_r (mrad)", "Eqs (79-81)"): "theta_r_mrad",
    ("th (mrad)", "Eq (82)"): "theta_mrad",
    ("hts (m)", ""): "hts_m",
    ("hrs (m)", ""): "hrs_m",
    ("w", "Table 5"): "omega",
    ("dtm (km)", "Sec 3.6"): "dtm_km",
    ("dlm (km)", "Sec 3.6"): "dlm_km",
    ("phi (deg)", "Eq (4)"): "phi_deg",
    ("b0 (%)", "Eq (5)"): "beta0_pct",
    ("ae (km)", "Eq (7a)"): "ae_km",
    ("hst (m)", "Eq (85)"): "hst_ls_m",
    ("hsr (m)", "Eq (86)"): "hsr_ls_m",
    ("hst (m)", "Eq (90a)"): "hst_m",
    ("hsr (m)", "Eq (90b)"): "hsr_m",
    ("hstd (m)", "Eq (89)"): "hstd_m",
    ("hsrd (m)", "Eq (89)"): "hsrd_m",
    ("htc (m)", "Eq (37a)"): "htc_m",
    ("hrc (m)", "Eq (37b)"): "hrc_m",
    ("hte (m)", "Eq (92a)"): "hte_m",
    ("hre (m)", "Eq (92b)"): "hre_m",
    ("hm (m)", "Eq (93)"): "hm_m",
    ("Fi", "Eq (40)"): "fi",
    ("Fj", "Eq (57)"): "fj",
    ("Fk", "Eq (58)"): "fk",
    ("Lbfs", "Eq (8)"): "lbfs_db",
    ("Lb0p", "Eq (10)"): "lb0p_db",
    ("Lb0b", "Eq (11)"): "lb0b_db",
    ("Lbulla (dB)", "Eq (21)"): "lbulla_b_db",
    ("Lbulls (dB)", "Eq (21)"): "lbulls_b_db",
    ("Ldsph (dB)", "Eq (27)"): "ldsph_b_db",
    ("Ld50 (dB)", "Eq (39)"): "ld50_db",
    ("Ldb (dB)", "Eq (39)"): "ldb_db",
    ("Ldp (dB)", "Eq (41)"): "ldp_db",
    ("Lbd50 (dB)", "Eq (42)"): "lbd50_db",
    ("Lbd (dB)", "Eq (43)"): "lbda_db",
    ("Lminb0p (dB)", "Eq (59)"): "lminb0p_db",
    ("Lba (dB)", "Eq (46)"): "lba_db",
    ("Lminbap (dB)", "Eq (60)"): "lminbap_db",
    ("Lbda (dB)", "Eq (61)"): "lbda_db",
    ("Lbam (dB)", "Eq (62)"): "lbam_db",
    ("Lbs (dB)", "Eq (44)"): "lbs_db",
    ("Lbc (dB)", "Eq (63)"): "lbc_db",
    ("Lb (dB)", "Eq (69)"): "lb_db",
    ("Ep (dBuV/m)", "Eq (70)"): "ep_dbuv_m",
}


EP_PTX_ROW = "Ep (dBuV/m) w.r.t. Ptx"  # Ep for the log's transmitter power and gains


def read_log(path: Path) -> list[tuple[str, str, float]]:
    """(name, equation, value) rows of a results log."""
    rows = []
    with path.open(newline="") as f:
        for r in csv.reader(f):
            values = [v for v in r[3:] if v.strip()]
            if values and not r[0].startswith("#"):
                rows.append((r[0].strip(), r[1].strip(), float(values[0])))
    return rows


def read_profile(name: str) -> dict[str, np.ndarray]:
    """Distance, ground height, clutter height and zone columns of a profile file."""
    points = []
    with (FIXTURES / "profiles" / f"{name}.csv").open(newline="") as f:
        inside = False
        for r in csv.reader(f):
            if r and r[0].startswith("{Begin of Profile"):
                inside = True
            elif r and r[0].startswith("{End of Profile"):
                break
            elif inside and r and not r[0].startswith("Number"):
                points.append([float(r[0]), float(r[1]), float(r[3]), float(r[4])])
    a = np.array(points)
    return {"d": a[:, 0], "h": a[:, 1], "r": a[:, 3 - 1], "zone": a[:, 3].astype(np.int64)}


def run_log(path: Path) -> tuple[p1812.P1812Result, list[tuple[str, str, float]]]:
    rows = read_log(path)
    inp = {name: value for name, _, value in rows}
    prof = read_profile(path.name.rsplit("_", 2)[0])
    d = prof["d"]
    lat = path_centre_latitude(
        inp["phi_t (deg)"], inp["lam_t (deg)"], inp["phi_r (deg)"], inp["lam_r (deg)"], d[-1]
    )
    result = p1812_loss(
        d,
        prof["h"],
        htg_m=inp["htg (m)"],
        hrg_m=inp["hrg (m)"],
        f_ghz=inp["f (GHz)"],
        p_pct=inp["p (%)"],
        pl_pct=inp["pL (%)"],
        lat_deg=lat,
        delta_n=inp["DN"],
        n0=inp["N0"],
        clutter_heights_m=prof["r"],
        zones=prof["zone"],
        polarisation="horizontal" if inp["pol"] == 1 else "vertical",
        sigma_l_db=inp["sigmaL (dB)"],
        dct_km=inp["dct (km)"],
        dcr_km=inp["dcr (km)"],
    )
    return result, rows


def test_fixtures_complete() -> None:
    assert len(LOGS) == 63
    assert len({p.name.rsplit("_", 2)[0] for p in LOGS}) == 19


@pytest.mark.parametrize("log", LOGS, ids=[p.name.removesuffix("_log.csv") for p in LOGS])
def test_validation_log(log: Path) -> None:
    result, rows = run_log(log)
    inputs = {name for name, _, _ in rows[: rows.index(next(r for r in rows if r[0] == "d (km)"))]}
    unchecked = set()
    for name, eq, expected in rows:
        attr = ROWS.get((name, eq))
        if attr is None:
            unchecked.add((name, eq))
            continue
        got = getattr(result, attr)
        assert abs(got - expected) <= TOLERANCE * max(1.0, abs(expected)), (name, got, expected)
    # everything but the inputs, Table 5's terminal heights (hts and hrs again) and Ep for
    # the log's transmitter, checked next
    assert {n for n, _ in unchecked} - inputs == {"htc (m)", "hrc (m)", EP_PTX_ROW}
    given = {name: value for name, _, value in rows}
    ep_ptx = result.ep_dbuv_m + 10.0 * math.log10(given["Ptx (kW)"]) + given["Gtx (dBi)"]
    assert ep_ptx == pytest.approx(given[EP_PTX_ROW], abs=TOLERANCE * 100.0)
    assert result.lbd_db == pytest.approx(result.lb0p_db + result.ldp_db, abs=1e-12)
    assert result.lbd50_db == pytest.approx(result.lbfs_db + result.ld50_db, abs=1e-12)


def flat(d_km: float, n: int = 201, height_m: float = 300.0) -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(0.0, d_km, n), np.full(n, height_m)


@pytest.mark.parametrize("d_km", [2.0, 30.0, 60.0])
def test_flat_profile_is_free_space_plus_spherical_earth(d_km: float) -> None:
    """On smooth Earth the two Bullington terms cancel: Ld = max(Ldsph, Lbull)."""
    d, h = flat(d_km)
    r = p1812_loss(d, h, htg_m=30.0, hrg_m=1.5, f_ghz=1.8, p_pct=50.0, lat_deg=22.4)
    assert r.hstd_m == r.hsrd_m == 300.0
    assert (r.htc_m, r.hrc_m) == (30.0, 1.5)
    assert r.lbulla_db == pytest.approx(r.lbulls_db, abs=1e-9)
    assert r.ld50_db == pytest.approx(max(r.ldsph_db, r.lbulls_db), abs=1e-9)
    assert r.lb0p_db == r.lbfs_db  # p = 50 %: no multipath correction
    median = -5.0 * math.log10(10 ** (-0.2 * r.lbs_db) + 10 ** (-0.2 * (r.lbfs_db + r.ld50_db)))
    assert r.lb_db == pytest.approx(max(r.lbfs_db, median), abs=1e-6)
    if d_km == 2.0:  # well within the radio horizon: free space only
        assert r.ldsph_db == 0.0 and r.lb_db == pytest.approx(r.lbfs_db, abs=1e-6)
    else:  # beyond it (about 29 km for these heights): spherical-Earth diffraction
        assert r.ldsph_db > r.lbulls_db > 0.0
        assert r.theta_mrad > 0.0


def test_spherical_earth_clearance_shortcut_is_exact() -> None:
    """`spherical_earth_db` returns 0 without the cubic where the ray clears the Earth by more
    than any hreq; on 20,000 random line-of-sight geometries the clearance is the least over
    the path, and the full eqs. (24)–(27), written out here, give hse > hreq (so 0) wherever
    it does, and its value is theirs elsewhere."""
    rng = np.random.default_rng(7)
    ap_km, f_ghz = 8500.0, 1.8
    lam = 0.2998 / f_ghz
    shortcut = 0
    for _ in range(20_000):
        d = rng.uniform(0.1, 40.0)
        hte, hre = rng.uniform(1.0, 400.0, size=2)
        if d >= math.sqrt(2.0 * ap_km) * (math.sqrt(0.001 * hte) + math.sqrt(0.001 * hre)):
            continue
        c = (hte - hre) / (hte + hre)
        m = 250.0 * d * d / (ap_km * (hte + hre))
        b = (
            2.0
            * math.sqrt((m + 1.0) / (3.0 * m))
            * math.cos(
                math.pi / 3.0 + math.acos(1.5 * c * math.sqrt(3.0 * m / (m + 1.0) ** 3)) / 3.0
            )
        )
        dse1 = 0.5 * d * (1.0 + b)
        dse2 = d - dse1
        hse = ((hte - 500.0 * dse1**2 / ap_km) * dse2 + (hre - 500.0 * dse2**2 / ap_km) * dse1) / d
        hreq = 17.456 * math.sqrt(dse1 * dse2 * lam / d)
        loss = p1812.spherical_earth_db(d, hte, hre, ap_km, f_ghz, lam, 0.0, True)
        x = np.linspace(0.0, d, 2001)
        clearance = p1812.earth_clearance_m(d, hte, hre, ap_km)
        least = (hte + (hre - hte) * x / d - 500.0 * x * (d - x) / ap_km).min()
        assert least - 1e-4 <= clearance <= least + 1e-9  # the grid misses the minimum by < 1e-5 m
        if clearance > 8.728 * math.sqrt(d * lam) + 1e-6:
            shortcut += 1
            assert hse > hreq and loss == 0.0
        elif hse > hreq:
            assert loss == 0.0
    assert shortcut > 5_000


def test_location_variability() -> None:
    d, h = flat(10.0)
    base = p1812_loss(d, h, htg_m=30.0, hrg_m=1.5, f_ghz=1.8, p_pct=50.0, sigma_l_db=6.0)
    for pl in (10.0, 90.0):
        r = p1812_loss(
            d, h, htg_m=30.0, hrg_m=1.5, f_ghz=1.8, p_pct=50.0, pl_pct=pl, sigma_l_db=6.0
        )
        expected = max(base.lb0p_db, base.lbc_db - inverse_normal_q(pl / 100.0) * 6.0)
        assert r.lb_db == pytest.approx(expected, abs=1e-9)
    # §4.7: (0.024 f + 0.52) wa^0.28, full below the receiver's clutter, none 10 m above it
    clutter = np.zeros_like(d)
    clutter[-1] = 10.0
    kw: dict[str, Any] = {"htg_m": 30.0, "f_ghz": 1.8, "p_pct": 50.0, "pl_pct": 90.0}
    below = p1812_loss(d, h, hrg_m=1.5, clutter_heights_m=clutter, **kw)
    assert below.sigma_l_db == pytest.approx(0.5632 * 100**0.28)
    above = p1812_loss(d, h, hrg_m=25.0, clutter_heights_m=clutter, **kw)
    assert above.sigma_l_db == 0.0 and above.lb_db == max(above.lb0p_db, above.lbc_db)


GOOD: dict[str, Any] = {
    "d_km": [0.0, 1.0, 2.0],
    "h_m": [100.0, 120.0, 100.0],
    "htg_m": 30.0,
    "hrg_m": 1.5,
    "f_ghz": 1.8,
    "p_pct": 50.0,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"d_km": [0.0, 1.0], "h_m": [100.0, 100.0]}, "d_km"),
        ({"d_km": [0.0, 2.0, 1.0]}, "d_km"),
        ({"d_km": [0.0, 1.0, 1.0]}, "d_km"),
        ({"h_m": [100.0, 100.0]}, "h_m"),
        ({"h_m": [100.0, float("nan"), 100.0]}, "h_m"),
        ({"clutter_heights_m": [0.0, 10.0]}, "clutter_heights_m"),
        ({"zones": [4, 4]}, "zones"),
        ({"zones": [4, 2, 4]}, "zones"),
        ({"f_ghz": 0.02}, "f_ghz"),
        ({"f_ghz": 6.5}, "f_ghz"),
        ({"p_pct": 0.5}, "p_pct"),
        ({"p_pct": 60.0}, "p_pct"),
        ({"pl_pct": 0.0}, "pl_pct"),
        ({"pl_pct": 99.5}, "pl_pct"),
        ({"htg_m": 0.0}, "htg_m"),
        ({"delta_n": 160.0}, "delta_n"),
        ({"polarisation": "circular"}, "polarisation"),
        ({"sigma_l_db": -1.0}, "sigma_l_db"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(v),
)
def test_bad_input(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        p1812_loss(**{**GOOD, **change})
    assert err.value.details == [{"field": field, "reason": err.value.details[0]["reason"]}]
    assert err.value.message.startswith(field)


def test_result_is_frozen() -> None:
    r = p1812_loss(**GOOD)
    with pytest.raises(AttributeError):
        r.lb_db = 0.0  # type: ignore[misc]
    assert replace(r, lb_db=1.0).lb_db == 1.0


def test_doctests() -> None:
    result = doctest.testmod(p1812, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
