"""Path profile pictures: the pure geometry, and the SVG endpoints on the sample registry."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry.radio.diffraction import deygout_edges, deygout_profile_db
from registry.radio.profile import profile_geometry
from registry.services.coverage import site_ground_m, to_dem, working_dem
from registry.services.profile import ProfileLabels, ridge_text
from registry.terrain import Dem, TerrainProfile, elevation_at, terrain_profile

SVG = "{http://www.w3.org/2000/svg}"


def test_deygout_edges_sum_to_the_deygout_loss() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        d = np.linspace(0.0, 8_000.0, 200)
        z = 400.0 + np.cumsum(rng.normal(0.0, 8.0, d.size))
        edges = deygout_edges(d, z, z[0] + 30.0, z[-1] + 1.5, 1842.5)
        total = deygout_profile_db(d, z, z[0] + 30.0, z[-1] + 1.5, 1842.5)
        assert sum(e.loss_db for e in edges) == pytest.approx(total, abs=1e-9)
        assert edges[0].principal and not any(e.principal for e in edges[1:])


def test_profile_geometry_finds_the_ridge() -> None:
    d = np.linspace(0.0, 4_000.0, 201)
    ground = 500.0 + np.clip(120.0 - 0.3 * np.abs(d - 1_500.0), 0.0, None)
    geometry = profile_geometry(
        TerrainProfile(d, ground, np.zeros_like(d)), z_a_m=501.5, z_b_m=530.0, freq_mhz=1842.5
    )
    ridge = geometry.limiting
    assert ridge is not None and ridge.distance_m == 1_500.0 and ridge.loss_db > 20.0
    assert geometry.clearance_m(ridge) > 100.0
    assert geometry.fresnel_radius_m[0] == 0.0 and geometry.fresnel_radius_m[100] > 0.0
    assert ridge_text(geometry, ProfileLabels()) == "Limiting ridge: 1.50 km, 620 m"
    over = profile_geometry(
        TerrainProfile(d, ground, np.zeros_like(d)), z_a_m=800.0, z_b_m=800.0, freq_mhz=1842.5
    )
    assert over.diffraction_loss_db == 0.0
    assert ridge_text(over, ProfileLabels()) == (
        "Clear path; terrain closest to the ray: 1.50 km, 620 m"
    )


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> dict[str, Any]:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output
    return loaded


def svg_texts(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_point_profile_names_the_limiting_ridge(app: Any, covered: Any, api: Any) -> None:
    lon, lat = 103.70, 22.37
    r = api.get(
        "coverage/profile.svg", params={"lon": lon, "lat": lat, "site": "VT-BL-01", "lang": "en"}
    )
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
    texts = svg_texts(r.content)
    with app.app_context():
        dem: Dem = working_dem(app.config)
    transform = to_dem(dem)
    x, y = transform.transform(lon, lat)
    sx, sy = transform.transform(103.679, 22.352)
    here = float(elevation_at(dem, [x], [y])[0])
    geometry = profile_geometry(
        terrain_profile(dem, (x, y), (sx, sy)),
        z_a_m=here + 1.5,
        z_b_m=site_ground_m(dem, sx, sy, None) + 28.0,
        freq_mhz=1842.5,
    )
    expected = ridge_text(geometry, ProfileLabels())
    assert expected in texts
    assert "Distance from the phone (km)" in texts and "Height above sea level (m)" in texts
    assert any(t.startswith("J = ") and t.endswith(" dB") for t in texts)
    vi = svg_texts(
        api.get(
            "coverage/profile.svg",
            params={"lon": lon, "lat": lat, "site": "VT-BL-01", "lang": "vi"},
        ).content
    )
    assert any(t.startswith(("Dãy núi chắn sóng", "Đường truyền thông thoáng")) for t in vi)
    assert "Khoảng cách từ điện thoại (km)" in vi


def test_seller_profile(covered: Any, api: Any, client: Any) -> None:
    r = api.get("sellers/SEL-1/profile.svg", params={"lang": "en"})
    assert r.status_code == 200
    texts = svg_texts(r.content)
    assert any(t.startswith(("Limiting ridge: ", "Clear path; ")) for t in texts)
    assert "Site VT-BL-01" in texts
    page = client.get("/records/sellers/SEL-1?lang=en").get_data(as_text=True)
    assert 'src="/api/v1/sellers/SEL-1/profile.svg"' in page and 'alt="Path profile from' in page


def test_profile_bad_input(covered: Any, api: Any) -> None:
    assert api.get("sellers/NOPE/profile.svg").status_code == 404
    for params, field in (
        ({"lat": 22.37, "site": "VT-BL-01"}, "lon"),
        ({"lon": "x", "lat": 22.37, "site": "VT-BL-01"}, "lon"),
        ({"lon": 103.7, "lat": 22.37}, "site"),
        ({"lon": 100.0, "lat": 22.37, "site": "VT-BL-01"}, "lon"),  # off the DEM
        ({"lon": 103.679, "lat": 22.352, "site": "VT-BL-01"}, "lon"),  # at the site
    ):
        r = api.get("coverage/profile.svg", params=params)
        assert r.status_code == 400, params
        assert r.json()["details"][0]["field"] == field, (params, r.json())
    r = api.get("coverage/profile.svg", params={"lon": 103.7, "lat": 22.37, "site": "NOPE"})
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/json")
