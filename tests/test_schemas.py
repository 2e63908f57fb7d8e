"""Property tests of the validators: any input gives clean values or field errors, never a crash."""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import ValidationError
from registry.models import BY_LAYER, Sector, Site, search_key
from registry.schemas import BANDWIDTHS_MHZ, validate
from tests.conftest import sample_layers

AREA = (102.22, 21.58, 104.09, 22.92)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    layer=st.sampled_from(list(BY_LAYER)),
    field=st.text(max_size=20)
    | st.sampled_from(
        ["code", "name", "population", "tower_height_m", "freq_mhz", "geometry", "start", "status"]
    ),
    value=json_values,
)
def test_any_value_is_accepted_or_named(layer: str, field: str, value: Any) -> None:
    row = {**sample_layers()[layer][0], field: value}
    try:
        clean = validate(BY_LAYER[layer], row, area_bbox=AREA)
    except ValidationError as exc:
        assert exc.details and all({"field", "reason"} <= d.keys() for d in exc.details)
    else:
        assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in clean.values())


@settings(max_examples=200, deadline=None)
@given(height=st.floats(allow_nan=True, allow_infinity=True))
def test_tower_height_range(height: float) -> None:
    row = {**sample_layers()["sites"][0], "tower_height_m": height}
    if math.isfinite(height) and 0 <= height <= 300:
        assert validate(Site, row, area_bbox=AREA)["tower_height_m"] == height
    else:
        with pytest.raises(ValidationError) as exc:
            validate(Site, row, area_bbox=AREA)
        assert exc.value.details[0]["field"] == "tower_height_m"


@settings(max_examples=200, deadline=None)
@given(
    tech=st.sampled_from(["4G", "5G"]),
    bandwidth=st.sampled_from([1.4, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100, 120]),
    freq=st.floats(min_value=0, max_value=10_000),
)
def test_sector_frequency_and_bandwidth(tech: str, bandwidth: float, freq: float) -> None:
    row = {
        **sample_layers()["sectors"][0],
        "technology": tech,
        "bandwidth_mhz": bandwidth,
        "freq_mhz": freq,
    }
    ok = bandwidth in BANDWIDTHS_MHZ[tech] and 400 <= freq <= 7125
    try:
        validate(Sector, row)
    except ValidationError as exc:
        assert not ok
        assert {d["field"] for d in exc.details} <= {"bandwidth_mhz", "freq_mhz"}
    else:
        assert ok


@settings(max_examples=200, deadline=None)
@given(lon=st.floats(-200, 200), lat=st.floats(-100, 100))
def test_coordinates(lon: float, lat: float) -> None:
    row = {**sample_layers()["sites"][0], "geometry": {"type": "Point", "coordinates": [lon, lat]}}
    inside = AREA[0] <= lon <= AREA[2] and AREA[1] <= lat <= AREA[3]
    try:
        validate(Site, row, area_bbox=AREA)
    except ValidationError as exc:
        assert not inside and exc.details[0]["field"] == "geometry"
    else:
        assert inside


@given(name=st.text(min_size=1, max_size=40).filter(lambda s: s.strip()))
def test_names_are_nfc_and_searchable(name: str) -> None:
    row = {**sample_layers()["villages"][0], "name": unicodedata.normalize("NFD", name)}
    try:
        clean = validate(BY_LAYER["villages"], row)
    except ValidationError as exc:
        assert exc.details[0]["field"] == "name"
        return
    assert clean["name"] == unicodedata.normalize("NFC", name).strip()
    assert search_key(clean["name"]) == search_key(name.strip())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Bình Lư", "binh lu"),
        ("ĐOÀN KẾT", "doan ket"),
        ("Mường Tè", "muong te"),
        ("Sìn Hồ", "sin ho"),
    ],
)
def test_search_key(text: str, key: str) -> None:
    assert search_key(text) == key
