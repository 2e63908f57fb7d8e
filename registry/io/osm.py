"""OpenStreetMap extract (.osm.pbf or .osm XML) → villages, fibre, towers and roads.

Read through GDAL's OSM driver (pyogrio, tags as JSON). What is taken, and the OSM tags used:

- **villages**: nodes (or areas, at a point inside them) tagged ``place=village``,
  ``place=hamlet`` or ``place=isolated_dwelling``; the name is ``name:vi`` where present, else
  ``name`` (nameless places are skipped); ``population=*`` seeds the population of a new record
  only, so a later `flask population import` is not undone by re-importing the extract.
- **fibre links**: telecom cable ways tagged ``telecom=line`` (the telecom local loop tagging,
  approved 2018) or ``communication=line`` (the older key, still used for long-distance and
  submarine cables), or ``telecom=path`` (draft proposal: a path carrying telecom cables),
  unless ``telecom:medium`` says the medium is not fibre (``copper``, ``coaxial``). Each line
  end becomes a fibre node (``splice``); ends at the same position are one node. A line with
  an end outside the communes (a backbone on to the next province) is skipped and counted:
  its end's node could not be stored, and one such line must not refuse the whole extract.
- **sites**: ``man_made=mast`` or ``man_made=tower`` with ``tower:type=communication``, of
  unknown operator (`UNKNOWN_OPERATOR`) and without sectors: OSM says where a tower stands,
  not what transmits on it. ``height=*`` (metres) seeds the tower height.
- **roads**: ways with ``highway=*`` in `ROAD_CLASSES`, returned for the fibre-route costs of
  siting (not registry records).

Codes are the OSM ids (``OSM-N<node id>``, ``OSM-W<way id>``, ``OSM-R<relation id>``), so
re-importing an extract changes nothing. Villages and towers are assigned to the commune whose
polygon holds them; those outside every commune, and lines crossing none, are skipped and
counted. Pure: no Flask, no database.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from registry.area import Area
from registry.errors import ValidationError
from registry.store import CREATE_DEFAULTS

Layers = dict[str, list[dict[str, Any]]]

PLACES = ("village", "hamlet", "isolated_dwelling")
TOWER_KINDS = ("mast", "tower")
#: (key, value) pairs that mark a telecom cable way.
TELECOM_LINES = (("telecom", "line"), ("communication", "line"), ("telecom", "path"))
#: ``telecom:medium`` values that are not fibre (lines with them are skipped).
NOT_FIBRE = ("copper", "coaxial")
#: Roads a fibre route can follow (OSM ``highway`` values, motor roads and tracks).
ROAD_CLASSES = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "service",
    "track",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
)
#: Operator code of towers whose operator is unknown: MCC 999 is reserved for internal use
#: (ITU-T E.212), so it names no real network.
UNKNOWN_OPERATOR = "999-99"


@dataclass(frozen=True)
class OsmDefaults:
    """Values OSM lacks, used for new records only (placeholders a planner overwrites)."""

    village_population: int = 0  # until `flask population import`
    tower_height_m: float = 30.0  # typical rural macro tower (DESIGN.md, typical parameters)
    site_status: str = "active"
    site_backhaul_kind: str = "fibre"
    site_backhaul_capacity_mbps: float = 1000.0  # as for OpenCelliD sites
    link_capacity_mbps: float = 10_000.0  # one 10 Gbit/s wavelength on a rural route
    link_status: str = "active"
    node_kind: str = "splice"


@dataclass
class OsmRead:
    """Registry layers, the roads, and how many of each kind were taken and skipped."""

    layers: Layers
    roads: gpd.GeoDataFrame
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def _tags(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        parsed = json.loads(value)
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _number(value: str | None) -> float | None:
    """A plain OSM number (``42``, ``42 m``), else None."""
    try:
        return float(str(value).removesuffix("m").strip()) if value is not None else None
    except ValueError:
        return None


def _read(path: Path, layer: str, where: str) -> gpd.GeoDataFrame:
    try:
        return pyogrio.read_dataframe(path, layer=layer, where=where, TAGS_FORMAT="JSON")
    except Exception as exc:  # GDAL raises its own error types
        raise ValidationError(
            "the file cannot be read as OpenStreetMap data",
            details=[{"field": "file", "reason": f"{path.name}: {exc}"}],
        ) from None


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _in_communes(frame: gpd.GeoDataFrame, communes: gpd.GeoDataFrame) -> pd.Series:
    """The code of the commune holding each point (None outside all of them)."""
    if frame.empty:
        return pd.Series([], dtype=object)
    joined = gpd.sjoin(
        frame[["geometry"]], communes[["code", "geometry"]], how="left", predicate="within"
    )
    first = joined[~joined.index.duplicated(keep="first")]["code"]
    return first.reindex(frame.index).astype(object).where(first.notna(), None)


def _places(path: Path) -> gpd.GeoDataFrame:
    """Place points (and areas at a point inside them) with their code and tags."""
    where = f"place IN ({_quoted(PLACES)})"
    points = _read(path, "points", where)
    points["code"] = [f"OSM-N{i}" for i in points["osm_id"]]
    areas = _read(path, "multipolygons", where)
    if not areas.empty:
        areas["code"] = [
            f"OSM-W{w}" if _text(w) else f"OSM-R{r}"
            for r, w in zip(areas["osm_id"], areas["osm_way_id"], strict=True)
        ]
        areas["geometry"] = areas.geometry.representative_point()
    columns = ["code", "name", "place", "other_tags", "geometry"]
    frames = [f[columns] for f in (points, areas) if not f.empty]
    if not frames:
        return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs="EPSG:4326")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")


def read_osm(
    path: Path, communes: gpd.GeoDataFrame, *, defaults: OsmDefaults = OsmDefaults()
) -> OsmRead:
    """Villages, fibre nodes and links, and tower sites of an OSM extract, plus its roads.

    Parameters
    ----------
    path : Path
        ``.osm.pbf`` or ``.osm`` (XML) file.
    communes : GeoDataFrame
        The registry's communes (``code``, polygons in lon/lat).
    defaults : OsmDefaults
        Values for new records.

    Raises
    ------
    ValidationError
        An unreadable file, or one without any place of the kinds taken.
    """
    skipped: dict[str, int] = {}

    def skip(reason: str, n: int = 1) -> None:
        if n:
            skipped[reason] = skipped.get(reason, 0) + n

    places = _places(path)
    if places.empty:
        raise ValidationError(
            "the OpenStreetMap file has no villages",
            details=[{"field": "file", "reason": f"no place={'|'.join(PLACES)} in {path.name}"}],
        )
    places["commune_code"] = _in_communes(places, communes)
    villages = []
    for row in places.itertuples(index=False):
        tags = _tags(row.other_tags)
        name = _text(tags.get("name:vi")) or _text(row.name)
        if name is None:
            skip("places without a name")
            continue
        if row.commune_code is None:
            skip("places outside the communes")
            continue
        population = _number(tags.get("population"))
        villages.append(
            {
                "code": row.code,
                "name": name,
                "commune_code": row.commune_code,
                "synthetic": False,
                "geometry": row.geometry,
                CREATE_DEFAULTS: {
                    "population": int(population)
                    if population is not None and population >= 0
                    else defaults.village_population
                },
            }
        )

    towers = _read(path, "points", f"man_made IN ({_quoted(TOWER_KINDS)})")
    towers = towers[[_tags(t).get("tower:type") == "communication" for t in towers["other_tags"]]]
    towers = towers.assign(commune_code=_in_communes(towers, communes))
    sites = []
    for row in towers.itertuples(index=False):
        if row.commune_code is None:
            skip("towers outside the communes")
            continue
        tags = _tags(row.other_tags)
        height = _number(tags.get("height"))
        sites.append(
            {
                "code": f"OSM-N{row.osm_id}",
                "commune_code": row.commune_code,
                "synthetic": False,
                "geometry": row.geometry,
                CREATE_DEFAULTS: {
                    "name": _text(row.name) or f"OSM tower {row.osm_id}",
                    "operator": UNKNOWN_OPERATOR,
                    "tower_height_m": height
                    if height is not None and 0 < height <= 300
                    else defaults.tower_height_m,
                    "status": defaults.site_status,
                    "backhaul_kind": defaults.site_backhaul_kind,
                    "backhaul_capacity_mbps": defaults.site_backhaul_capacity_mbps,
                },
            }
        )

    lines = _read(
        path,
        "lines",
        f"highway IN ({_quoted(ROAD_CLASSES)}) OR other_tags LIKE '%telecom%' "
        "OR other_tags LIKE '%communication%'",
    )
    # the area records must lie in, as the store checks it: fibre nodes at both ends inside
    area = Area.union(("communes", g) for g in communes.geometry) if len(communes) else None
    nodes: dict[tuple[float, float], dict[str, Any]] = {}
    links = []
    telecom = lines[
        [any(_tags(t).get(k) == v for k, v in TELECOM_LINES) for t in lines["other_tags"]]
    ].sort_values("osm_id", key=lambda ids: ids.astype("int64"))
    for row in telecom.itertuples(index=False):
        tags = _tags(row.other_tags)
        if tags.get("telecom:medium") in NOT_FIBRE:
            skip("telecom lines not of fibre")
            continue
        if area is None or not area.reaches(row.geometry):
            skip("telecom lines outside the communes")
            continue
        line_ends = (row.geometry.coords[0], row.geometry.coords[-1])
        if not all(area.covers(shapely.Point(xy)) for xy in line_ends):
            skip("telecom lines with an end outside the communes")
            continue
        ends = []
        for end, (x, y) in zip("AB", line_ends, strict=True):
            key = (round(x, 7), round(y, 7))
            if key not in nodes:
                nodes[key] = {
                    "code": f"OSM-W{row.osm_id}-{end}",
                    "name": f"OSM way {row.osm_id} end {end}",
                    "synthetic": False,
                    "geometry": shapely.Point(x, y),
                    CREATE_DEFAULTS: {"kind": defaults.node_kind},
                }
            ends.append(nodes[key]["code"])
        links.append(
            {
                "code": f"OSM-W{row.osm_id}",
                "from_node_code": ends[0],
                "to_node_code": ends[1],
                "synthetic": False,
                "geometry": row.geometry,
                CREATE_DEFAULTS: {
                    "capacity_mbps": defaults.link_capacity_mbps,
                    "status": defaults.link_status,
                },
            }
        )

    roads = lines[lines["highway"].isin(ROAD_CLASSES)]
    roads = gpd.GeoDataFrame(
        {
            "osm_id": roads["osm_id"].astype(str),
            "highway": roads["highway"],
            "name": roads["name"],
        },
        geometry=roads.geometry,
        crs="EPSG:4326",
    ).reset_index(drop=True)
    layers: Layers = {
        "villages": villages,
        "fibre_nodes": list(nodes.values()),
        "fibre_links": links,
        "sites": sites,
    }
    counts = {name: len(rows) for name, rows in layers.items()} | {"roads": len(roads)}
    return OsmRead(
        layers={k: v for k, v in layers.items() if v}, roads=roads, counts=counts, skipped=skipped
    )
