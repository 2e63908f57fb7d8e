"""folium maps of the registry's layers.

Builders take GeoDataFrames (EPSG:4326) and ``m=None``, add their layers and return the map,
so layers compose (as geopandas' ``explore`` does).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from folium.plugins import MarkerCluster
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

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
) -> folium.Map:
    """Circle markers with a popup of ``fields``; clustered when there are many."""
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


def registry_map(
    layers: dict[str, gpd.GeoDataFrame],
    m: folium.Map | None = None,
    *,
    service_class_tif: Path | None = None,
    measurement_errors: tuple[dict[str, Any], str] | None = None,
) -> folium.Map:
    """A map of communes, fibre, sites, villages and sellers with a layer control, over the
    service-class coverage when its raster is given (and the measurements coloured by their
    prediction error: a GeoJSON collection and the layer's title)."""
    communes = layers.get("communes")
    if m is None:
        m = folium.Map(tiles="OpenStreetMap", control_scale=True)
        if communes is not None and len(communes):
            x0, y0, x1, y1 = communes.total_bounds
            m.fit_bounds([[y0, x0], [y1, x1]])
    if service_class_tif is not None:
        add_service_class_overlay(service_class_tif, m)
    if communes is not None and len(communes):
        add_communes(communes, m)
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
        ("sellers", ["code", "name", "products", "platform", "phone_tech", "wanted_class"], 4),
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
            )
    legend = "".join(
        f'<div><span style="background:{COLOURS[layer]};display:inline-block;'
        f'width:10px;height:10px;margin-right:4px"></span>{title}</div>'
        for layer, title in TITLES.items()
        if layer in layers
    )
    if service_class_tif is not None:
        legend += "".join(
            f'<div><span style="background:{CLASS_COLOURS[name]};opacity:.7;'
            f'display:inline-block;width:10px;height:10px;margin-right:4px">'
            f"</span>{title}</div>"
            for name, title in CLASS_TITLES.items()
        )
    m.get_root().html.add_child(
        folium.Element(
            '<div style="position:fixed;bottom:20px;left:10px;z-index:9999;background:white;'
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
