"""Maps served by the pages: the registry map (``registry.maps``) made live and focusable.

The map HTML is built with ``registry.maps.registry_map`` and made standalone with
``registry.maps.offline_html`` (no internet needed); it is cached per registry state, and a
small script moves the view to ``?lat=&lon=&zoom=`` (e.g. a seller's better spot) in the browser,
so one cached page serves every focus.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
from markupsafe import escape

from registry import maps

_cache: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_cache_lock = threading.Lock()
#: Rendered maps kept in memory (one per registry state and language).
CACHE_SIZE = 4

#: Runs once the map exists (folium writes this script before the map's): focus from the
#: query string, and a flag for tests and benchmarks.
_FOCUS_JS = """
window.addEventListener("DOMContentLoaded", function () { (function (map) {
  var p = new URLSearchParams(window.location.search);
  var lat = parseFloat(p.get("lat")), lon = parseFloat(p.get("lon"));
  if (isFinite(lat) && isFinite(lon)) {
    var zoom = parseInt(p.get("zoom") || "15", 10);
    map.setView([lat, lon], isFinite(zoom) ? zoom : 15);
    var spot = L.circleMarker([lat, lon], {radius: 11, color: "#000", weight: 3,
                                           fillColor: "#ffff33", fillOpacity: 0.9})
      .addTo(map);
    var label = p.get("label");
    if (label) {  // as text, never markup: Leaflet puts a string tooltip in innerHTML
      var text = document.createElement("span");
      text.textContent = label;
      spot.bindTooltip(text, {permanent: true, direction: "top"});
    }
  }
  map.whenReady(function () { window.registryMapReady = true; });
})(%(map)s); });
"""


def registry_map_page(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    service_class_tif: Path | None,
    header_html: str,
    relief: maps.Hillshade | None = None,
    measurement_errors: tuple[dict[str, Any], str] | None = None,
) -> str:
    """The registry map as one offline HTML page with a header bar and client-side focus,
    over the offline ``relief`` base layer (and the measurements coloured by error: a GeoJSON
    collection and its layer title)."""
    m = maps.registry_map(
        dict(layers),
        service_class_tif=service_class_tif,
        relief=relief,
        measurement_errors=measurement_errors,
    )
    maps.page(m).html.add_child(
        folium.Element(
            '<div id="registry-map-header" style="position:fixed;top:10px;left:50px;z-index:9999;'
            'background:white;padding:4px 8px;font:14px sans-serif;border:1px solid #999">'
            f"{header_html}</div>"
        )
    )
    maps.page(m).script.add_child(folium.Element(_FOCUS_JS % {"map": m.get_name()}))
    return maps.offline_html(m)


def relief(config: Mapping[str, Any]) -> maps.Hillshade | None:
    """The hillshade of the registry's DEM (None without a DEM), cached under
    ``DATA_DIR/hillshade`` per DEM version."""
    dem = Path(config["DATA_DIR"]) / "dem.tif"
    if not dem.exists():
        return None
    return maps.hillshade_image(dem, Path(config["DATA_DIR"]) / "hillshade")


def dem_stamp(config: Mapping[str, Any]) -> str:
    """The DEM's version (size and modification time) for cache keys."""
    dem = Path(config["DATA_DIR"]) / "dem.tif"
    if not dem.exists():
        return ""
    stat = dem.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def cached_map_page(key: tuple[Any, ...], build: Any) -> str:
    """The page for ``key`` from the cache, or ``build()`` (kept for later requests)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    html = build()
    with _cache_lock:
        _cache[key] = html
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return html


def header_links(links: list[tuple[str, str]]) -> str:
    """Escaped links for the map's header bar."""
    return " · ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in links)
