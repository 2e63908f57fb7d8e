"""The real frame of the demo (communes and towns) and point-placement helpers.

Synthetic points are drawn in UTM metres, then stored as lon/lat rounded to
COORD_DECIMALS; a point is accepted only if it lies inside its commune both as
drawn (with a clearance from the border) and as stored, so every stored point
passes a point-in-polygon test against the real commune polygon.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geodata.dem import UTM_CRS
from geodata.names import nfc

WGS84 = "EPSG:4326"
COORD_DECIMALS = 6  # 1e-6° ≈ 0.1 m: far below any placement scale used here
CLEARANCE_M = 100.0  # synthetic points keep this far inside their commune's border
# GeoNames ASCII town names -> Vietnamese (the six rows with admin1 "Lai Chau").
TOWN_NAMES = {
    "Lai Chau": "Lai Châu",
    "Tam Duong": "Tam Đường",
    "Than Uyen": "Than Uyên",
    "Thi Tran Sin Ho": "Sìn Hồ",
    "Thi Tran Phong Tho": "Phong Thổ",
    "Thi Tran Muong Te": "Mường Tè",
}
COMMUNE_COLUMNS = [
    "code", "name", "type", "population", "area_km2",
    "admin_center_lon", "admin_center_lat", "before_merger",
]  # fmt: skip

_TO_UTM = Transformer.from_crs(WGS84, UTM_CRS, always_xy=True)
_TO_LONLAT = Transformer.from_crs(UTM_CRS, WGS84, always_xy=True)


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per named stream, so layers do not shift each other."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def to_utm(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat (degrees) to UTM 48N (metres)."""
    return _TO_UTM.transform(np.asarray(lon, float), np.asarray(lat, float))


def to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTM 48N (metres) to lon/lat (degrees), rounded as stored."""
    lon, lat = _TO_LONLAT.transform(np.asarray(x, float), np.asarray(y, float))
    return np.round(lon, COORD_DECIMALS), np.round(lat, COORD_DECIMALS)


def points_frame(frame: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> gpd.GeoDataFrame:
    """GeoDataFrame in EPSG:4326 with point geometries from UTM coordinates."""
    lon, lat = to_lonlat(x, y)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs=WGS84)


@dataclass(frozen=True)
class Land:
    """The real communes (indexed by GSO code) and towns the synthetic layers are placed in.

    Attributes
    ----------
    communes : the real communes in EPSG:4326, index = code.
    inner : each commune in UTM, shrunk by CLEARANCE_M (prepared for fast tests).
    towns : the six real towns: name (Vietnamese), x, y (UTM), commune_code.
    """

    communes: gpd.GeoDataFrame
    inner: dict[str, shapely.Geometry]
    towns: pd.DataFrame

    def settlements(self) -> tuple[np.ndarray, np.ndarray]:
        """UTM positions of the real admin centres and towns."""
        x, y = to_utm(self.communes["admin_center_lon"], self.communes["admin_center_lat"])
        return np.concatenate([x, self.towns["x"]]), np.concatenate([y, self.towns["y"]])

    def centre_xy(self, code: str) -> tuple[float, float]:
        """UTM position of a commune's real admin centre."""
        row = self.communes.loc[code]
        x, y = to_utm(row.admin_center_lon, row.admin_center_lat)
        return float(x), float(y)

    def inside(self, code: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Mask of UTM points well inside commune `code`, both as drawn and as stored."""
        lon, lat = to_lonlat(x, y)
        return shapely.contains_xy(self.inner[code], x, y) & shapely.contains_xy(
            self.communes.geometry[code], lon, lat
        )

    def random_points(
        self, code: str, count: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """`count` points uniformly distributed inside commune `code` (UTM)."""
        minx, miny, maxx, maxy = self.inner[code].bounds
        xs, ys = np.empty(0), np.empty(0)
        while xs.size < count:
            x, y = rng.uniform(minx, maxx, 2 * count), rng.uniform(miny, maxy, 2 * count)
            ok = self.inside(code, x, y)
            xs, ys = np.concatenate([xs, x[ok]]), np.concatenate([ys, y[ok]])
        return xs[:count], ys[:count]

    def near(
        self,
        code: str,
        x: float,
        y: float,
        rng: np.random.Generator,
        *,
        max_m: float,
        min_m: float = 0.0,
        count: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to `count` points in commune `code` at `min_m`-`max_m` from (x, y), uniform by area.

        Fewer come back only where the annulus barely touches the commune.
        """
        n = 32 * count
        r = np.sqrt(rng.uniform(min_m**2, max_m**2, n))
        a = rng.uniform(0, 2 * np.pi, n)
        px, py = x + r * np.cos(a), y + r * np.sin(a)
        ok = self.inside(code, px, py)
        return px[ok][:count], py[ok][:count]


def spaced_pick(x: np.ndarray, y: np.ndarray, count: int, spacing_m: float) -> list[int]:
    """Indices of up to `count` points taken in order, each `spacing_m` from those taken.

    The spacing is relaxed (times 0.7 per pass) until `count` are found or the points run out.
    """
    taken: list[int] = []
    while len(taken) < min(count, len(x)):
        for i in range(len(x)):
            if len(taken) == count:
                break
            if i not in taken and np.all(np.hypot(x[taken] - x[i], y[taken] - y[i]) >= spacing_m):
                taken.append(i)
        spacing_m *= 0.7
    return taken


def load_land(raw_dir: Path) -> Land:
    """Read the real communes and towns from `raw_dir`."""
    communes = gpd.read_file(raw_dir / "lai_chau_communes_2025.geojson")
    for column in ("name", "type", "before_merger"):
        communes[column] = communes[column].map(nfc)
    communes["population"] = communes["population"].astype("int64")
    communes = communes[[*COMMUNE_COLUMNS, "geometry"]].sort_values("code")
    communes.index = pd.Index(communes["code"])
    communes.index.name = None
    utm = communes.to_crs(UTM_CRS).geometry
    inner = {code: polygon.buffer(-CLEARANCE_M) for code, polygon in utm.items()}
    shapely.prepare([*communes.geometry, *inner.values()])
    towns = pd.read_csv(raw_dir / "geonames_cities1000_lai_chau_bbox.csv")
    towns = towns[towns["admin1"] == "Lai Chau"].sort_values("name")
    x, y = to_utm(towns["lon"], towns["lat"])
    points = gpd.points_from_xy(towns["lon"], towns["lat"], crs=WGS84)
    commune_of = [communes.index[communes.contains(p)][0] for p in points]
    towns = pd.DataFrame(
        {"name": towns["name"].map(TOWN_NAMES), "x": x, "y": y, "commune_code": commune_of}
    )
    return Land(communes, inner, towns.reset_index(drop=True))
