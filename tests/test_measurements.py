"""Field measurements: each app's format read from a fixture written to its documented layout,
cell identities matched to sectors, all-or-nothing imports, idempotent re-imports,
cross-validated calibration (recovering a known offset, refusing one that does not help,
revert), the verdict's measured block, the /measure form and the measured-beside-predicted
page. Both backends where the database is involved."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import db, io, store
from registry.errors import ImportRejected, ValidationError
from registry.io.measurements import eci, parse_share_text
from registry.models import Measurement, Sector
from registry.radio.calibration import Samples, cross_validate
from registry.services import coverage, measurements

FIXTURES = Path(__file__).parent / "fixtures" / "measurements"
ICT = timedelta(hours=7)


def _read(name: str, fmt: str) -> list[dict[str, Any]]:
    return io.read_layers((FIXTURES / name).read_bytes(), fmt=fmt)["measurements"]


# ---------------------------------------------------------------- readers (no database)
def test_speedtest_export() -> None:
    rows = _read("speedtest_export.csv", "speedtest")
    assert len(rows) == 2  # the Wi-Fi test is skipped
    lte, nr = rows
    assert lte["technology"] == "4G" and nr["technology"] == "5G"
    assert lte["ul_rate_mbps"] == pytest.approx(6.2) and lte["dl_rate_mbps"] == 24.51  # kbit/s
    assert lte["measured_at"].astimezone(UTC) == datetime(2025, 3, 12, 2, 15, tzinfo=UTC)
    assert lte["geometry"]["coordinates"] == [103.673, 22.346]
    assert lte["_source_row"] == 4  # the line in the file, after the e-mail's greeting


def test_gnettrack_log() -> None:
    rows = _read("gnettrack_log.txt", "gnettrack")
    assert len(rows) == 2  # the UMTS line and the line without a GPS fix are skipped
    first, second = rows
    assert first["cell_identity"] == eci(12345, 3) == 3160323
    assert first["rsrp_dbm"] == -97 and first["operator"] == "452-04"
    assert first["ul_rate_mbps"] is None  # no data test running at that second
    assert second["ul_rate_mbps"] == pytest.approx(4.8) and second["dl_rate_mbps"] == 18.25
    assert second["measured_at"].astimezone(UTC) == datetime(2025, 3, 12, 7, 2, 6, tzinfo=UTC)


def test_netcellinfo_export() -> None:
    rows = _read("netcellinfo_export.csv", "netcellinfo")
    assert [r["cell_identity"] for r in rows] == [3160323, 3160324]  # the GSM line skipped
    assert [r["rsrp_dbm"] for r in rows] == [-88, -104]
    assert rows[0]["measured_at"].utcoffset() == ICT
    with pytest.raises(ValidationError) as exc:
        io.read_layers(b"time,lat,lon\n2025-01-01 10:00:00,22.3,103.6\n", fmt="netcellinfo")
    assert "rsrp" in exc.value.details[0]["reason"]


def test_template_and_unreadable_lines() -> None:
    rows = _read("template.csv", "measurements")
    assert rows[0]["seller_code"] == "SEL-1" and rows[0]["kind"] == "rsrp"
    assert rows[1]["kind"] == "speedtest" and rows[1]["rsrp_dbm"] is None
    bad = b"lon,lat,measured_at,rsrp_dbm\n103.6,22.3,2025-03-12T09:00,-99\n103.6,22.3,soon,x\n"
    with pytest.raises(ImportRejected) as exc:
        io.read_layers(bad, fmt="measurements")
    assert [d["row"] for d in exc.value.details] == [3]


def test_share_text() -> None:
    text = "Test Date: Mar 12, 2025\nConnection Type: Lte\nDownload: 24.51 Mbps\nUpload: 6200 kbps"
    assert parse_share_text(text) == {
        "ul_rate_mbps": 6.2,
        "dl_rate_mbps": 24.51,
        "technology": "4G",
    }
    with pytest.raises(ValidationError) as exc:
        parse_share_text("Download: 3 Mbps")
    assert exc.value.details[0]["field"] == "share_text"


# ---------------------------------------------------------------- cross-validation (no database)
def _synthetic(offset_db: float, *, n: int = 300, seed: int = 3) -> Samples:
    rng = np.random.default_rng(seed)
    predicted = rng.uniform(-120.0, -70.0, n)
    site = rng.choice(["A", "B", "C", "D"], n)
    ul_pred = rng.uniform(1.0, 12.0, n)
    return Samples.of(
        predicted_rsrp_dbm=predicted,
        measured_rsrp_dbm=predicted + offset_db + rng.normal(0.0, 4.0, n),
        predicted_ul_mbps=ul_pred,
        measured_ul_mbps=ul_pred * 0.6 * np.exp(rng.normal(0.0, 0.2, n)),
        site=site,
        technology=["4G"] * n,
        commune=rng.choice(["X", "Y"], n),
        group=[str(i // 3) for i in range(n)],
    )


def test_cross_validation_recovers_a_known_offset() -> None:
    cv = cross_validate(_synthetic(6.0))
    assert cv.correction.global_offset_db == pytest.approx(6.0, abs=0.5)
    assert cv.correction.ul_factor["4G"] == pytest.approx(0.6, abs=0.05)
    rsrp = cv.errors["rsrp_db"]["technology"]["all"]
    assert rsrp["before"]["mean_error"] == pytest.approx(-6.0, abs=0.7)
    assert abs(rsrp["after"]["mean_error"]) < 0.5 and rsrp["after"]["rmse"] < 4.5
    assert set(cv.errors["rsrp_db"]["commune"]) == {"all", "X", "Y"}
    assert cv.lowers("rsrp_db") and cv.lowers("ul_mbps")


def test_cross_validation_refuses_what_does_not_help() -> None:
    samples = _synthetic(0.0)
    cv = cross_validate(samples, prior_weight=0.0)
    assert not cv.lowers("rsrp_db")  # fitting noise only adds held-out error


# ---------------------------------------------------------------- imports (both backends)
def _import(app: Any, layers: dict[str, Any]) -> store.ImportReport:
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        return store.import_layers(session, layers, actor="test", area_bbox=app.config["AREA_BBOX"])


def test_cells_matched_and_reimport_changes_nothing(app: Any, loaded: Any) -> None:
    _import(app, {"sectors": [{"code": "VT-BL-01-1", "cell_identity": 3160323}]})
    data = (FIXTURES / "gnettrack_log.txt").read_bytes()
    first = _import(app, io.read_layers(data, fmt="gnettrack"))
    assert first.created == {"measurements": 2}
    again = _import(app, io.read_layers(data, fmt="gnettrack"))
    assert again.created == {"measurements": 0} and again.unchanged == {"measurements": 2}
    with app.extensions["registry"]["sessions"]() as session:
        rows = session.query(Measurement).filter(Measurement.source == "gnettrack").all()
        assert {(m.sector_code, m.site_code) for m in rows} == {("VT-BL-01-1", "VT-BL-01")}
        assert session.get(Sector, 1) is not None
        stamp = min(m.measured_at for m in rows)
    assert stamp == datetime(2025, 3, 12, 7, 2, 5, tzinfo=UTC)


def test_one_bad_row_stores_nothing(app: Any, loaded: Any) -> None:
    layers = io.read_layers((FIXTURES / "template_bad_row.csv").read_bytes(), fmt="measurements")
    with pytest.raises(ImportRejected) as exc:
        _import(app, layers)
    assert [(d["row"], d["field"]) for d in exc.value.details] == [(3, "rsrp_dbm")]
    with app.extensions["registry"]["sessions"]() as session:
        assert session.query(Measurement).count() == 1  # the sample's own


# ---------------------------------------------------------------- calibration (both backends)
@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> Any:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output
    return loaded


def _field_measurements(app: Any, offset_db: float, *, n: int = 120, seed: int = 5) -> None:
    """``n`` RSRP measurements around Bình Lư: the prediction + ``offset_db`` + 3 dB noise."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(103.64, 103.72, n * 3)
    lat = rng.uniform(22.32, 22.39, n * 3)
    at = coverage.coverage_at(app.config, list(zip(lon.tolist(), lat.tolist(), strict=True)))
    rows = []
    for x, y, p in zip(lon, lat, at, strict=True):
        cell = p.get("4G") or {}
        if cell.get("rsrp_dbm") is None or cell["rsrp_dbm"] < -140 or len(rows) == n:
            continue
        rows.append(
            {
                "code": f"F{seed}-{len(rows)}",
                "kind": "rsrp",
                "measured_at": "2025-03-12T09:00:00+07:00",
                "technology": "4G",
                "rsrp_dbm": round(cell["rsrp_dbm"] + offset_db + rng.normal(0, 3.0), 1),
                "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            }
        )
    _import(app, {"measurements": rows})


def test_calibration_applied_then_reverted(app: Any, covered: Any, api: Any) -> None:
    _field_measurements(app, 8.0)
    report = api.post("coverage/calibration").json()
    assert report["status"] == "applied" and report["parameters"]["rsrp_applied"]
    assert report["parameters"]["applied"]["global_offset_db"] == pytest.approx(8.0, abs=1.0)
    held_out = report["errors"]["rsrp_db"]["technology"]["all"]
    assert held_out["after"]["rmse"] < held_out["before"]["rmse"]
    assert report["inputs"]["measurements"] >= 100 and report["inputs"]["folds"] == 5
    before = api.get("readiness/sellers").json()["features"][0]["properties"]["rsrp_dbm"]
    reverted = api.post("coverage/calibration/revert").json()
    assert reverted["reverted"]["id"] == report["id"] and reverted["in_force"] is None
    after = api.get("readiness/sellers").json()["features"][0]["properties"]["rsrp_dbm"]
    assert before - after == pytest.approx(
        report["parameters"]["applied"]["site_offsets_db"].get(
            "VT-BL-01", report["parameters"]["applied"]["global_offset_db"]
        ),
        abs=0.2,
    )
    assert api.post("coverage/calibration/revert").status_code == 404
    listed = api.get("coverage/calibrations").json()
    assert [c["status"] for c in listed] == ["reverted"]


def test_calibration_refused_when_it_does_not_lower_the_held_out_error(
    app: Any, covered: Any, runner: Any
) -> None:
    _field_measurements(app, 0.0, n=60)
    result = runner.invoke(args=["coverage", "calibrate"])
    assert result.exit_code == 0, result.output
    assert '"status": "refused"' in result.output
    with app.extensions["registry"]["sessions"]() as session:
        assert measurements.in_force(session) is None


def test_revert_restores_the_previous_calibration(app: Any, covered: Any, api: Any) -> None:
    _field_measurements(app, 8.0)
    first = api.post("coverage/calibration").json()
    _field_measurements(app, 14.0, seed=6)
    second = api.post("coverage/calibration").json()
    assert second["status"] == "applied" and second["id"] > first["id"]
    back = api.post("coverage/calibration/revert").json()
    assert back["in_force"]["id"] == first["id"]


# ---------------------------------------------------------------- verdict, pages (both backends)
def test_recent_measurement_contradicting_the_verdict(app: Any, covered: Any, api: Any) -> None:
    predicted = api.get("readiness/sellers").json()["features"][0]["properties"]
    rate = 0.5 if predicted["usable_mbps"] >= 1.0 else 9.0
    when = datetime.now(UTC) - timedelta(days=2)
    _import(
        app,
        {
            "measurements": [
                {
                    "code": "PHONE-1",
                    "kind": "speedtest",
                    "measured_at": when.isoformat(),
                    "technology": "4G",
                    "seller_code": "SEL-1",
                    "ul_rate_mbps": rate,
                    "geometry": {"type": "Point", "coordinates": [103.673, 22.346]},
                }
            ]
        },
    )
    row = api.get("readiness/sellers?lang=en").json()["features"][0]["properties"]
    local = (when + ICT).date()
    assert row["measured"]["code"] == "PHONE-1" and row["measured"]["contradicts"]
    assert row["usable_mbps"] == rate and row["service_class"] != predicted["service_class"]
    assert row["reason"]["code"] == "measured"
    assert row["reason"]["params"]["date"] == local.isoformat()
    assert row["explanation"].startswith(f"Measured {rate:.1f} Mbps on {local:%B} {local.day},")


def test_measure_form_is_for_editors_with_csrf(app: Any, covered: Any, client: Any) -> None:
    from tests.conftest import signed_in

    viewer = signed_in(app, "viewer")
    assert viewer.get("/measure").status_code == 403
    assert app.test_client().get("/measure").status_code == 302  # to the sign-in page
    page = client.get("/measure")
    assert page.status_code == 200 and b'name="csrf_token"' in page.data
    form = {"lon": "103.673", "lat": "22.346", "seller_code": "SEL-1"}
    no_token = signed_in(app, "editor")
    no_token.environ_base.pop("HTTP_X_CSRFTOKEN")
    assert no_token.post("/measure", data={**form, "ul_rate_mbps": "5"}).status_code == 400
    done = client.post("/measure", data={**form, "share_text": "Upload: 6.2 Mbps"})
    assert done.status_code == 302 and "saved=phone-" in done.headers["Location"]
    missing = client.post("/measure", data=form)
    assert missing.status_code == 400 and b"ul_rate_mbps" in missing.data
    with app.extensions["registry"]["sessions"]() as session:
        m = session.query(Measurement).filter(Measurement.source == "phone").one()
        assert (m.seller_code, m.ul_rate_mbps, m.kind) == ("SEL-1", 6.2, "speedtest")


def test_compare_page_scatter_parses(app: Any, covered: Any, client: Any) -> None:
    _field_measurements(app, 8.0, n=30)
    page = client.get("/measurements/compare")
    assert page.status_code == 200
    html = page.data.decode()
    svg = html[html.index("<svg", html.index('id="scatter-rsrp"')) :]
    root = ET.fromstring(svg[: svg.index("</svg>") + 6])
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    assert int(root.get("data-points")) == len(circles) >= 30
    assert 'data-commune="03390"' in html
    seller = client.get("/records/sellers/SEL-1").data.decode()
    assert 'id="seller-measurements"' in seller
    layer = client.get("/api/v1/coverage/measured/errors").get_json()
    assert len(layer["features"]) >= 30
    assert all(f["properties"]["colour"].startswith("#") for f in layer["features"])
    assert "Measurements: prediction error" in client.get("/map?lang=en").data.decode() or (
        "Phép đo: sai số dự báo" in client.get("/map").data.decode()
    )
