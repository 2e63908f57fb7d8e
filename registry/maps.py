"""folium maps of the registry's layers.

Builders take GeoDataFrames (EPSG:4326) and ``m=None``, add their layers and return the map,
so layers compose (as geopandas' ``explore`` does).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from branca.element import Figure, MacroElement
from folium.plugins import MarkerCluster
from jinja2 import Template
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from registry.radio.coverage.raster import SERVICE_CLASS_COLOURS
from registry.radio.linkbudget import SERVICE_CLASS_NODATA, SERVICE_CLASSES

#: Fill colours per layer (ColorBrewer Set1), used by the legend too.
COLOURS = {
    "villages": "#4daf4a",
    "sites": "#e41a1c",
    "sellers": "#984ea3",
    "fibre_links": "#ff7f00",
    "communes": "#377eb8",
    "siting": "#000000",
}
TITLES = {
    "communes": "Xã / Communes",
    "fibre_links": "Cáp quang / Fibre",
    "villages": "Thôn bản / Villages",
    "sites": "Trạm BTS / Sites",
    "sellers": "Người bán / Sellers",
    "siting": "Trạm đề xuất / Proposed sites",
}
#: Service-class colours (those of the class rasters), transparent where there is no service.
CLASS_COLOURS: dict[str, str | None] = {**SERVICE_CLASS_COLOURS, "none": None}
CLASS_TITLES = {
    "data_only": "Chỉ dữ liệu / Data only",
    "basic_live": "Live 360p",
    "sd_live": "Live 480p",
    "hd_live": "Live 720p",
    "fullhd_live": "Live 1080p",
}
#: Sellers whose verdict is borderline (registry.confidence): a thick dashed ring, so the ones to
#: test on site stand out from the others at a glance.
BORDERLINE_STYLE = {"color": "#ff7f00", "weight": 4, "dashArray": "4 3", "radius": 8}
BORDERLINE_TITLE = "Người bán sát ngưỡng, thử tại chỗ / Borderline seller, test on site"
FIBRE_STATUS_COLOURS = {"active": "#ff7f00", "planned": "#999999", "cut": "#000000"}
SYNTHETIC_NOTE = "Synthetic demo data (villages, sites, fibre, sellers); communes are real."


#: Local copies (registry/web/static/vendor, with their licences) of the libraries folium links
#: from CDNs, by file name; they are inlined so a map works with no internet. Other CDN links
#: (jQuery, Bootstrap, icon fonts) serve marker icons these maps do not use and are dropped.
VENDOR = Path(__file__).resolve().parent / "web" / "static" / "vendor"
LOCAL_ASSETS = {
    "leaflet.js": "leaflet-1.9.3/leaflet.js",
    "leaflet.css": "leaflet-1.9.3/leaflet.css",
    "leaflet.markercluster.js": "leaflet.markercluster-1.1.0/leaflet.markercluster.js",
    "MarkerCluster.css": "leaflet.markercluster-1.1.0/MarkerCluster.css",
    "MarkerCluster.Default.css": "leaflet.markercluster-1.1.0/MarkerCluster.Default.css",
}
_REMOTE_TAG = re.compile(
    r'<script src="(https?://[^"]+)"></script>|'
    r'<link rel="stylesheet" href="(https?://[^"]+)"/>'
)


def _inline_css(path: Path) -> str:
    """CSS with its relative images turned into data URIs."""

    def data_uri(match: re.Match[str]) -> str:
        image = (path.parent / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(image).decode()})"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, path.read_text("utf-8"))


def offline_html(m: folium.Map) -> str:
    """The map as one standalone HTML page that needs no internet (libraries inlined)."""

    def local(match: re.Match[str]) -> str:
        url = match.group(1) or match.group(2)
        asset = LOCAL_ASSETS.get(url.rsplit("/", 1)[-1])
        if asset is None:
            return ""
        if match.group(1):
            return f"<script>{(VENDOR / asset).read_text('utf-8')}</script>"
        return f"<style>{_inline_css(VENDOR / asset)}</style>"

    return _REMOTE_TAG.sub(local, m.get_root().render())


def _popup_fields(frame: gpd.GeoDataFrame, fields: list[str]) -> list[str]:
    return [f for f in fields if f in frame.columns]


def _escaped(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy whose text is HTML-escaped: folium puts popup and tooltip values in innerHTML."""
    out = frame.copy()
    for name in out.columns:
        if name != out.geometry.name and not pd.api.types.is_numeric_dtype(out[name]):
            out[name] = out[name].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    return out


def add_communes(frame: gpd.GeoDataFrame, m: folium.Map) -> folium.Map:
    folium.GeoJson(
        _escaped(frame[["code", "name", "population", "geometry"]]),
        name=TITLES["communes"],
        style_function=lambda _f: {
            "color": COLOURS["communes"],
            "weight": 1.5,
            "fillOpacity": 0.05,
        },
        tooltip=folium.GeoJsonTooltip(["name", "population"], aliases=["Xã", "Dân số"]),
    ).add_to(m)
    return m


def add_points(
    frame: gpd.GeoDataFrame,
    m: folium.Map,
    *,
    layer: str,
    title: str,
    fields: list[str],
    radius: float = 5,
    cluster: bool = False,
    style_function: Any = None,
) -> folium.Map:
    """Circle markers with a popup of ``fields``; clustered when there are many;
    ``style_function`` (feature → Leaflet style) restyles some."""
    fields = _popup_fields(frame, fields)
    data = _escaped(frame[[*fields, "geometry"]])
    target: Any = folium.FeatureGroup(name=title)
    target.add_to(m)
    if cluster:
        target = MarkerCluster(name=title, disableClusteringAtZoom=12).add_to(target)
    folium.GeoJson(
        data,
        marker=folium.CircleMarker(
            radius=radius,
            fill=True,
            fill_opacity=0.8,
            weight=1,
            color="#333",
            fill_color=COLOURS[layer],
        ),
        popup=folium.GeoJsonPopup(fields),
        name=title,
        style_function=style_function,
    ).add_to(target)
    return m


def add_fibre(frame: gpd.GeoDataFrame, m: folium.Map) -> folium.Map:
    fields = _popup_fields(frame, ["code", "road", "capacity_mbps", "status"])
    folium.GeoJson(
        _escaped(frame[[*fields, "geometry"]]),
        name=TITLES["fibre_links"],
        style_function=lambda f: {
            "color": FIBRE_STATUS_COLOURS.get(f["properties"].get("status"), "#ff7f00"),
            "weight": 4 if f["properties"].get("road") else 2,
        },
        popup=folium.GeoJsonPopup(fields),
    ).add_to(m)
    return m


def _class_palette() -> np.ndarray:
    """RGBA per service-class code; "none" and no-data stay transparent."""
    palette = np.zeros((256, 4), dtype=np.uint8)
    for code, name in enumerate(SERVICE_CLASSES):
        colour = CLASS_COLOURS[name]
        if colour:
            palette[code] = [int(colour[i : i + 2], 16) for i in (1, 3, 5)] + [255]
    return palette


#: Built once: every overlay and every tile indexes it.
CLASS_PALETTE = _class_palette()


def add_service_class_overlay(path: Path, m: folium.Map, *, opacity: float = 0.55) -> folium.Map:
    """The service-class raster as a semi-transparent overlay (reprojected to Web Mercator)."""
    with rasterio.open(path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:3857", src.width, src.height, *src.bounds
        )
        codes = np.full((height, width), SERVICE_CLASS_NODATA, dtype=np.uint8)
        reproject(
            src.read(1),
            codes,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=transform,
            dst_crs="EPSG:3857",
            resampling=Resampling.nearest,
            src_nodata=SERVICE_CLASS_NODATA,
            dst_nodata=SERVICE_CLASS_NODATA,
        )
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_lonlat.transform([west, east], [south, north])
    folium.raster_layers.ImageOverlay(
        CLASS_PALETTE[codes],
        bounds=[[lat0, lon0], [lat1, lon1]],
        opacity=opacity,
        name="Mức livestream / Livestream class",
        mercator_project=False,
    ).add_to(m)
    return m


# ---------------------------------------------------------------- offline base map
#: Light of the hillshade: the cartographic convention, from the north-west (azimuth 315°),
#: 45° above the horizon (as GDAL's ``gdaldem hillshade`` defaults).
HILLSHADE_AZIMUTH_DEG = 315.0
HILLSHADE_ALTITUDE_DEG = 45.0
#: Vertical exaggeration of the hillshade (1: true relief).
HILLSHADE_Z_FACTOR = 1.0
#: Longest side of the province's hillshade image, in pixels: sharp at the province's zoom,
#: light enough for a phone page (about 1 MB of PNG).
HILLSHADE_MAX_PX = 2048
#: Version of the hillshade rendering; part of the disk cache key.
HILLSHADE_VERSION = 1


@dataclass(frozen=True)
class Hillshade:
    """A grey relief image of the DEM in Web Mercator (PNG with transparency outside the DEM),
    with its grid and the lon/lat bounds an image overlay needs."""

    png: bytes
    transform: Affine  # EPSG:3857 metres of the image's pixels
    width: int
    height: int
    bounds: list[list[float]]  # [[south, west], [north, east]]

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def hillshade(
    elevation_m: np.ndarray,
    cell_x_m: float,
    cell_y_m: float,
    *,
    azimuth_deg: float = HILLSHADE_AZIMUTH_DEG,
    altitude_deg: float = HILLSHADE_ALTITUDE_DEG,
    z_factor: float = HILLSHADE_Z_FACTOR,
) -> np.ndarray:
    """Illumination 0…1 of each cell (Horn's slope, Lambert's cosine law); NaN stays NaN.

    >>> flat = hillshade(np.zeros((3, 3)), 30.0, 30.0)
    >>> round(float(flat[1, 1]), 3)  # sin(45°): a plain lit from 45° above the horizon
    0.707
    """
    z = np.pad(elevation_m.astype(np.float64) * z_factor, 1, mode="edge")
    # Horn (1981) 3×3 gradients; rows run south, so dz/dy is taken north minus south
    dzdx = (
        (z[:-2, 2:] + 2 * z[1:-1, 2:] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[1:-1, :-2] + z[2:, :-2])
    ) / (8 * cell_x_m)
    dzdy = (
        (z[:-2, :-2] + 2 * z[:-2, 1:-1] + z[:-2, 2:]) - (z[2:, :-2] + 2 * z[2:, 1:-1] + z[2:, 2:])
    ) / (8 * cell_y_m)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(-dzdx, -dzdy)  # direction the slope faces, clockwise from north
    sun_az, sun_alt = np.radians(azimuth_deg), np.radians(altitude_deg)
    lit = np.sin(sun_alt) * np.cos(slope) + np.cos(sun_alt) * np.sin(slope) * np.cos(
        sun_az - aspect
    )
    shade: np.ndarray = np.clip(lit, 0.0, 1.0)
    return shade


def _png(bands: np.ndarray) -> bytes:
    """uint8 bands (count, rows, cols) as PNG bytes."""
    count, height, width = bands.shape
    with warnings.catch_warnings(), MemoryFile() as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a plain picture, on purpose
        with mem.open(driver="PNG", width=width, height=height, count=count, dtype="uint8") as dst:
            dst.write(bands)
        data: bytes = mem.read()
        return data


def mercator_grid(
    bounds_lonlat: tuple[float, float, float, float], max_px: int
) -> tuple[Affine, int, int]:
    """A north-up EPSG:3857 grid over (west, south, east, north) whose longest side is
    ``max_px`` pixels (square pixels)."""
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    west, south, east, north = bounds_lonlat
    (x0, x1), (y0, y1) = to_merc.transform([west, east], [south, north])
    size = max(x1 - x0, y1 - y0) / max_px
    width, height = max(1, math.ceil((x1 - x0) / size)), max(1, math.ceil((y1 - y0) / size))
    return Affine(size, 0, x0, 0, -size, y1), width, height


def _lonlat_bounds(transform: Affine, width: int, height: int) -> list[list[float]]:
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_lonlat.transform([west, east], [south, north])
    return [[lat0, lon0], [lat1, lon1]]


def hillshade_image(
    dem_path: Path,
    cache_dir: Path,
    *,
    bounds_lonlat: tuple[float, float, float, float] | None = None,
    max_px: int = HILLSHADE_MAX_PX,
) -> Hillshade:
    """The hillshade of the DEM at ``dem_path`` (of its whole extent, or of ``bounds_lonlat``)
    in Web Mercator, rendered once per DEM version (file size and modification time) and
    kept in ``cache_dir``."""
    stat = dem_path.stat()
    with rasterio.open(dem_path) as src:
        whole = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    box = tuple(round(v, 6) for v in (bounds_lonlat or whole))
    key = hashlib.sha1(
        json.dumps(
            [
                str(dem_path.resolve()),
                stat.st_size,
                stat.st_mtime_ns,
                box,
                max_px,
                HILLSHADE_VERSION,
            ]
        ).encode()
    ).hexdigest()[:16]
    png_path = cache_dir / f"hillshade-{key}.png"
    transform, width, height = mercator_grid(box, max_px)  # type: ignore[arg-type]
    if not png_path.exists():
        elevation = np.full((height, width), np.nan, dtype=np.float32)
        with rasterio.open(dem_path) as src:
            reproject(
                rasterio.band(src, 1),
                elevation,
                dst_transform=transform,
                dst_crs="EPSG:3857",
                resampling=Resampling.bilinear,
                dst_nodata=np.nan,
            )
        # Mercator stretches ground distances by 1 / cos(latitude): measure slopes on ground
        lat = math.radians((box[1] + box[3]) / 2)
        ground_m = transform.a * math.cos(lat)
        shade = hillshade(
            np.nan_to_num(elevation, nan=float(np.nanmean(elevation))), ground_m, ground_m
        )
        grey = (60 + 195 * shade).astype(np.uint8)  # never black: labels stay readable
        alpha = np.where(np.isfinite(elevation), 255, 0).astype(np.uint8)
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = png_path.with_suffix(".part")
        partial.write_bytes(_png(np.stack([grey, alpha])))
        partial.replace(png_path)
    return Hillshade(
        png_path.read_bytes(), transform, width, height, _lonlat_bounds(transform, width, height)
    )


def add_base_layers(m: folium.Map, relief: Hillshade | None) -> folium.Map:
    """The offline hillshade as the default base layer; OpenStreetMap tiles (online only) as
    the other choice."""
    if relief is not None:
        folium.raster_layers.ImageOverlay(
            relief.data_uri(),
            bounds=relief.bounds,
            name="Địa hình / Relief (offline)",
            overlay=False,
            pixelated=False,
        ).add_to(m)
    folium.TileLayer(
        "OpenStreetMap", name="OpenStreetMap (online)", show=relief is None, overlay=False
    ).add_to(m)
    return m


def page(m: folium.Map) -> Figure:
    """The HTML page a map renders into (its header, body and script parts)."""
    return cast(Figure, m.get_root())


class MetricScale(MacroElement):
    """Leaflet's scale bar in metres and kilometres only."""

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "L.control.scale({imperial: false, metric: true, maxWidth: 160, position: 'bottomright'})"
        ".addTo({{ this._parent.get_name() }});"
        "{% endmacro %}"
    )


def add_commune_labels(frame: gpd.GeoDataFrame, m: folium.Map) -> folium.Map:
    """Each commune's name at a point inside it (text, not a marker to click)."""
    group = folium.FeatureGroup(name="Tên xã / Commune names")
    for name, point in zip(frame["name"], frame.geometry.representative_point(), strict=True):
        folium.Marker(
            [point.y, point.x],
            icon=folium.DivIcon(
                html=f'<div class="commune-label">{html.escape(str(name))}</div>',
                icon_size=(120, 16),
                icon_anchor=(60, 8),
                class_name="commune-label-icon",
            ),
            interactive=False,
        ).add_to(group)
    group.add_to(m)
    return m


#: Styles of the base map: the page behind the relief, and the commune names.
BASE_MAP_CSS = """<style>
.leaflet-container { background: #f4f1ea; }
.commune-label { font: 600 11px/16px sans-serif; color: #173f6b; text-align: center;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff; white-space: nowrap; pointer-events: none; }
@media (max-width: 640px) {
  .leaflet-control-layers-expanded { max-height: 35vh; overflow-y: auto; font-size: 12px; }
  .registry-legend { font-size: 10px !important; max-width: 55vw; max-height: 30vh;
    overflow-y: auto; }
}
</style>"""


def service_class_image(path: Path, relief: Hillshade) -> bytes:
    """The service-class raster on ``relief``'s grid as an RGBA PNG (transparent where there
    is no service)."""
    codes = np.full((relief.height, relief.width), SERVICE_CLASS_NODATA, dtype=np.uint8)
    with rasterio.open(path) as src:
        reproject(
            rasterio.band(src, 1),
            codes,
            dst_transform=relief.transform,
            dst_crs="EPSG:3857",
            resampling=Resampling.nearest,
            src_nodata=SERVICE_CLASS_NODATA,
            dst_nodata=SERVICE_CLASS_NODATA,
        )
    return _png(np.moveaxis(CLASS_PALETTE[codes], -1, 0))


def _nice_length_m(most_m: float) -> float:
    """The longest 1, 2 or 5 × 10^k metres not above ``most_m`` (a scale bar's length)."""
    power = 10.0 ** math.floor(math.log10(most_m))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= most_m)


def sheet_map_svg(
    relief: Hillshade,
    *,
    outline: Any,
    points: list[tuple[float, float, str, str]],
    service_class_png: bytes | None = None,
    scale_label: str = "{km} km",
) -> str:
    """A static map for print: the relief, the service classes, the ``outline`` (a lon/lat
    shapely geometry), ``points`` (lon, lat, colour, label) numbered on the map, a metric
    scale bar and a north arrow, as an SVG document (images inlined)."""
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    inverse = ~relief.transform
    w, h = relief.width, relief.height

    def px(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        x, y = to_merc.transform(np.asarray(lon), np.asarray(lat))
        col, row = inverse @ (x, y)
        return np.asarray(col), np.asarray(row)

    rings = []
    polygons = getattr(outline, "geoms", [outline])
    for polygon in polygons:
        for ring in [polygon.exterior, *polygon.interiors]:
            cols, rows = px(*np.asarray(ring.coords).T[:2])
            rings.append(
                "M" + " L".join(f"{c:.1f},{r:.1f}" for c, r in zip(cols, rows, strict=True)) + "Z"
            )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="sheet-map" '
        'role="img">',
        f'<image href="{relief.data_uri()}" width="{w}" height="{h}"/>',
    ]
    if service_class_png is not None:
        uri = "data:image/png;base64," + base64.b64encode(service_class_png).decode()
        parts.append(f'<image href="{uri}" width="{w}" height="{h}" opacity="0.55"/>')
    parts.append(
        f'<path d="{" ".join(rings)}" fill="none" stroke="{COLOURS["communes"]}" '
        'stroke-width="3" fill-rule="evenodd"/>'
    )
    for lon, lat, colour, label in points:
        col, row = px(lon, lat)
        parts.append(
            f'<circle cx="{float(col):.1f}" cy="{float(row):.1f}" r="7" fill="{colour}" '
            'stroke="#222" stroke-width="1.5"/>'
            f'<text x="{float(col) + 9:.1f}" y="{float(row) + 4:.1f}" font-size="13" '
            'font-family="sans-serif" font-weight="600" paint-order="stroke" stroke="#fff" '
            f'stroke-width="3">{html.escape(label)}</text>'
        )
    lat_mid = (relief.bounds[0][0] + relief.bounds[1][0]) / 2
    ground_m_per_px = relief.transform.a * math.cos(math.radians(lat_mid))
    bar_m = _nice_length_m(ground_m_per_px * w / 4)
    bar_px = bar_m / ground_m_per_px
    km = f"{bar_m / 1000:g}" if bar_m >= 1000 else f"{bar_m / 1000:.1f}"
    label = scale_label.format(km=km) if bar_m >= 1000 else f"{bar_m:g} m"
    x0, y0 = 12, h - 14
    parts.append(
        f'<g class="scale-bar" font-family="sans-serif" font-size="13">'
        f'<rect x="{x0 - 6}" y="{y0 - 26}" width="{bar_px + 60:.1f}" height="34" fill="#fff" '
        'opacity="0.8"/>'
        f'<rect x="{x0}" y="{y0 - 6}" width="{bar_px:.1f}" height="6" fill="#222"/>'
        f'<text x="{x0}" y="{y0 - 10}">0</text>'
        f'<text x="{x0 + bar_px:.1f}" y="{y0 - 10}" text-anchor="middle">{html.escape(label)}'
        "</text></g>"
        f'<g class="north" font-family="sans-serif" font-size="14" font-weight="700">'
        f'<path d="M{w - 22},{16} l8,22 l-8,-6 l-8,6 Z" fill="#222"/>'
        f'<text x="{w - 22}" y="{54}" text-anchor="middle">N</text></g>'
        "</svg>"
    )
    return "".join(parts)


def base_map(relief: Hillshade | None) -> folium.Map:
    """An empty map over the offline ``relief`` (OSM tiles optional) with a metric scale."""
    # no tile layer sets the zoom range, so the map does (marker clusters need a maxZoom)
    m = folium.Map(tiles=None, control_scale=False, maxZoom=MAX_TILE_ZOOM)
    m.add_child(MetricScale())
    page(m).header.add_child(folium.Element(BASE_MAP_CSS))
    return add_base_layers(m, relief)


#: Half the Web Mercator world's width (EPSG:3857 metres); XYZ tiles split it 2^z ways.
WEB_MERCATOR_HALF_M = 20037508.342789244
TILE_PX = 256
MAX_TILE_ZOOM = 18


def service_class_tile(path: Path, z: int, x: int, y: int) -> bytes:
    """One 256 px XYZ (slippy-map) PNG tile of the service-class raster, for web maps and
    QGIS's XYZ layers; transparent where there is no coverage or no raster cell."""
    if not 0 <= z <= MAX_TILE_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise ValueError(f"no tile {z}/{x}/{y}")
    span = 2 * WEB_MERCATOR_HALF_M / 2**z
    transform = Affine(
        span / TILE_PX,
        0,
        -WEB_MERCATOR_HALF_M + x * span,
        0,
        -span / TILE_PX,
        WEB_MERCATOR_HALF_M - y * span,
    )
    codes = np.full((TILE_PX, TILE_PX), SERVICE_CLASS_NODATA, dtype=np.uint8)
    with rasterio.open(path) as src:
        reproject(
            rasterio.band(src, 1),
            codes,
            dst_transform=transform,
            dst_crs="EPSG:3857",
            resampling=Resampling.nearest,
            src_nodata=SERVICE_CLASS_NODATA,
            dst_nodata=SERVICE_CLASS_NODATA,
        )
    rgba = CLASS_PALETTE[codes]
    with MemoryFile() as mem:
        with mem.open(
            driver="PNG",
            width=TILE_PX,
            height=TILE_PX,
            count=4,
            dtype="uint8",
            transform=transform,
            crs="EPSG:3857",
        ) as dst:
            dst.write(np.moveaxis(rgba, -1, 0))
        return mem.read()


def _borderline_style(feature: dict[str, Any]) -> dict[str, Any]:
    return BORDERLINE_STYLE if feature["properties"].get("confidence") == "borderline" else {}


def registry_map(
    layers: dict[str, gpd.GeoDataFrame],
    m: folium.Map | None = None,
    *,
    service_class_tif: Path | None = None,
    relief: Hillshade | None = None,
    classes_on_relief: bool = False,
    measurement_errors: tuple[dict[str, Any], str] | None = None,
) -> folium.Map:
    """A map of communes (outlined and named), fibre, sites, villages and sellers with a layer
    control and a metric scale, over the service-class coverage when its raster is given (and
    the measurements coloured by their prediction error: a GeoJSON collection and the layer's
    title); a new map's base layer is the offline ``relief`` (OpenStreetMap tiles, online,
    optional). ``classes_on_relief`` draws the coverage only over the relief's extent (a
    commune's map)."""
    communes = layers.get("communes")
    if m is None:
        m = base_map(relief)
        if communes is not None and len(communes):
            x0, y0, x1, y1 = communes.total_bounds
            m.fit_bounds([[y0, x0], [y1, x1]])
    if service_class_tif is not None and relief is not None and classes_on_relief:
        folium.raster_layers.ImageOverlay(
            "data:image/png;base64,"
            + base64.b64encode(service_class_image(service_class_tif, relief)).decode(),
            bounds=relief.bounds,
            opacity=0.55,
            name="Mức livestream / Livestream class",
        ).add_to(m)
    elif service_class_tif is not None:
        add_service_class_overlay(service_class_tif, m)
    if communes is not None and len(communes):
        add_communes(communes, m)
        add_commune_labels(communes, m)
    if layers.get("fibre_links") is not None and len(layers["fibre_links"]):
        add_fibre(layers["fibre_links"], m)
    point_layers = [
        ("villages", ["code", "name", "commune_code", "population"], 4),
        (
            "sites",
            [
                "code",
                "name",
                "operator",
                "status",
                "tower_height_m",
                "backhaul_kind",
                "backhaul_capacity_mbps",
            ],
            5,
        ),
        (
            "sellers",
            ["code", "name", "products", "platform", "phone_tech", "wanted_class", "confidence"],
            4,
        ),
        (
            "siting",
            [
                "code",
                "total_cost_mvnd",
                "backhaul",
                "marginal_gain",
                "sellers_lifted",
                "population_lifted",
            ],
            8,
        ),
    ]
    for layer, fields, radius in point_layers:
        frame = layers.get(layer)
        if frame is not None and len(frame):
            add_points(
                frame,
                m,
                layer=layer,
                title=TITLES[layer],
                fields=fields,
                radius=radius,
                cluster=len(frame) > 300,
                style_function=_borderline_style if layer == "sellers" else None,
            )
    legend = "".join(
        f'<div><span style="background:{COLOURS[layer]};display:inline-block;'
        f'width:10px;height:10px;margin-right:4px"></span>{title}</div>'
        for layer, title in TITLES.items()
        if layer in layers
    )
    if layers.get("sellers") is not None and "confidence" in layers["sellers"].columns:
        legend += (
            f'<div><span style="border:2px dashed {BORDERLINE_STYLE["color"]};'
            'display:inline-block;width:8px;height:8px;margin-right:4px;border-radius:50%">'
            f"</span>{BORDERLINE_TITLE}</div>"
        )
    if service_class_tif is not None:
        legend += "".join(
            f'<div><span style="background:{CLASS_COLOURS[name]};opacity:.7;'
            f'display:inline-block;width:10px;height:10px;margin-right:4px">'
            f"</span>{title}</div>"
            for name, title in CLASS_TITLES.items()
        )
    page(m).html.add_child(
        folium.Element(
            '<div class="registry-legend" style="position:fixed;bottom:20px;left:10px;'
            "z-index:9999;background:white;"
            f'padding:6px;font:12px sans-serif;border:1px solid #999">{legend}'
            f'<div style="margin-top:4px;color:#a00">{SYNTHETIC_NOTE}</div></div>'
        )
    )
    if measurement_errors is not None:
        add_measurement_errors(measurement_errors[0], m, title=measurement_errors[1])
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def add_measurement_errors(collection: dict[str, Any], m: folium.Map, *, title: str) -> None:
    """Measurements coloured by their prediction error (each feature's ``colour``: red too
    optimistic, blue too pessimistic; `registry.services.measurements.error_features`)."""
    if not collection["features"]:
        return
    group = folium.FeatureGroup(name=title)
    folium.GeoJson(
        collection,
        marker=folium.CircleMarker(radius=5, fill=True, fill_opacity=0.9, weight=1, color="#333"),
        style_function=lambda f: {"fillColor": f["properties"]["colour"]},
        popup=folium.GeoJsonPopup(["code", "measured_at", "rsrp_error_db", "ul_error_mbps"]),
    ).add_to(group)
    group.add_to(m)
