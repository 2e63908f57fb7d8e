"""What the pages show beyond the records: a site's served area, the sellers near a site.

Thin readers over ``registry.pipeline``'s rasters and verdicts; no Flask here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import rasterio

from registry import pipeline
from registry.radio.linkbudget import SERVICE_CLASSES, SERVICE_CLASSES_BEST_FIRST
from registry.terrain import EARTH_RADIUS_M

#: Service classes from best to worst, for tables and charts.
CLASS_ORDER = SERVICE_CLASSES_BEST_FIRST


def distance_m(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Great-circle distance (m).

    >>> round(distance_m(103.0, 22.0, 103.0, 22.01))
    1112
    """
    p0, p1 = math.radians(lat0), math.radians(lat1)
    dp, dl = p1 - p0, math.radians(lon1 - lon0)
    h = math.sin(dp / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def site_served_area(config: Mapping[str, Any], site_code: str) -> dict[str, dict[str, float]]:
    """Area (km²) where the site is the best server, by service class, per technology.

    Empty when no coverage has been computed.
    """
    out: dict[str, dict[str, float]] = {}
    folder = pipeline.coverage_dir(config)
    for tech in pipeline.TECHNOLOGIES:
        prefix = folder / f"coverage_{tech.lower()}"
        server_tif, class_tif = (
            prefix.with_name(f"{prefix.name}_best_server.tif"),
            prefix.with_name(f"{prefix.name}_service_class.tif"),
        )
        if not server_tif.exists() or not class_tif.exists():
            continue
        with rasterio.open(server_tif) as src:
            server = src.read(1)
            lookup = json.loads(src.tags()["sector_lookup"])
            cell_km2 = abs(src.transform.a * src.transform.e) / 1e6
        with rasterio.open(class_tif) as src:
            classes = src.read(1)
        mine = [i for i, entry in enumerate(lookup) if entry.split("/", 1)[0] == site_code]
        if not mine:
            continue
        chosen = classes[np.isin(server, mine)]
        counts = np.bincount(chosen[chosen < len(SERVICE_CLASSES)], minlength=len(SERVICE_CLASSES))
        out[tech] = {
            name: round(float(n) * cell_km2, 3)
            for name, n in zip(SERVICE_CLASSES, counts, strict=True)
        }
        out[tech]["total"] = round(float(counts.sum()) * cell_km2, 3)
    return out


def sellers_near(
    verdicts: Iterable[Mapping[str, Any]],
    *,
    site_code: str,
    lon: float,
    lat: float,
    radius_m: float,
) -> list[dict[str, Any]]:
    """Verdicts of the sellers the site serves or could serve (within ``radius_m``)."""
    rows = []
    for v in verdicts:
        d = distance_m(lon, lat, v["lon"], v["lat"])
        if v.get("site_code") == site_code or d <= radius_m:
            rows.append({**v, "distance_m": d})
    rows.sort(key=lambda r: r["distance_m"])
    return rows
