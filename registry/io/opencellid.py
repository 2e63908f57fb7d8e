"""OpenCelliD cell export → sites and sectors.

OpenCelliD rows are single cells with an *estimated* position. Cells of one eNodeB/gNodeB are
grouped into a site placed at their mean position; each cell becomes a sector. Fields OpenCelliD
does not carry (frequency, azimuth, power, heights) take the documented defaults below when a
record is created; re-importing moves sites but keeps what planners have entered since.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import shapely

from registry.area import Area
from registry.errors import ImportRejected, ValidationError
from registry.store import CREATE_DEFAULTS

HEADER = (
    "radio",
    "mcc",
    "net",
    "area",
    "cell",
    "unit",
    "lon",
    "lat",
    "range",
    "samples",
    "changeable",
    "created",
    "updated",
    "averageSignal",
)


@dataclass(frozen=True)
class CellDefaults:
    """Values OpenCelliD lacks; typical rural macro settings (DESIGN.md, typical parameters)."""

    lte_band: str = "B3"
    lte_freq_mhz: float = 1842.5  # Band 3 downlink centre, 20 MHz carrier (TS 36.101)
    lte_bandwidth_mhz: float = 20
    nr_band: str = "n41"
    nr_freq_mhz: float = 2595.0  # n41 (2,496–2,690 MHz) centre (TS 38.101-1)
    nr_bandwidth_mhz: float = 100
    tower_height_m: float = 30.0
    antenna_height_m: float = 28.0
    tx_power_dbm: float = 46.0  # per 20 MHz LTE carrier
    nr_tx_power_dbm: float = 50.0
    gain_dbi: float = 17.0
    h_beamwidth_deg: float = 65.0
    v_beamwidth_deg: float = 8.0
    mech_tilt_deg: float = 2.0
    elec_tilt_deg: float = 4.0
    #: Bits of the cell identity that name the cell within its eNodeB (LTE ECI = eNB·2⁸ + cell)
    #: and gNodeB (NR NCI with a 24-bit gNB ID leaves 12 bits, TS 38.413 §9.3.1.6).
    lte_cell_bits: int = 8
    nr_cell_bits: int = 12


TECH = {"LTE": "4G", "NR": "5G"}
#: Mobile country code of Viet Nam (ITU-T E.212): a national extract's cells of other MCCs are
#: roaming or misplaced records.
VIETNAM_MCC = 452
#: Line numbers kept per skip reason in a report (the counts are complete).
SKIPPED_LINES_KEPT = 20


@dataclass(frozen=True)
class CellScope:
    """Which cells of a large (nationwide) extract to keep; the others are skipped, not
    refused: cells outside ``area`` (the registry's, `registry.area.Area`: the union of its
    provinces), of an MCC not in ``mccs``, and malformed rows. A site stands at its cells'
    mean, which can fall outside a non-convex area even when its cells do not: such a site's
    cells are skipped too, as outside the area."""

    area: Area
    mccs: tuple[int, ...] = (VIETNAM_MCC,)


@dataclass
class OpenCellIdRead:
    """Rows to import, and the cells skipped: a count and the first line numbers per reason."""

    layers: dict[str, list[dict[str, Any]]]
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str, line_no: int, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        lines = self.skipped_lines.setdefault(reason, [])
        if len(lines) < SKIPPED_LINES_KEPT:
            lines.append(line_no)


def read_opencellid(
    data: bytes, _layer: str | None = None, *, defaults: CellDefaults = CellDefaults()
) -> dict[str, list[dict[str, Any]]]:
    """Parse an OpenCelliD CSV (with or without its header) into ``sites`` and ``sectors`` rows.

    GSM/UMTS/CDMA cells are skipped (the registry models 4G/5G); a malformed row rejects the
    whole file with its line number.
    """
    return parse_opencellid(data, defaults=defaults).layers


def parse_opencellid(
    data: bytes, *, defaults: CellDefaults = CellDefaults(), scope: CellScope | None = None
) -> OpenCellIdRead:
    """`read_opencellid` with a report; with a ``scope``, cells outside it and malformed rows
    are skipped and counted by reason instead of rejecting the file."""
    try:
        lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(
            "the file cannot be read as OpenCelliD CSV",
            details=[{"field": "file", "reason": str(exc)}],
        ) from None
    start = 1 if lines and [c.strip() for c in lines[0]][: len(HEADER)] == list(HEADER) else 0
    errors: list[dict[str, Any]] = []
    result = OpenCellIdRead(layers={})
    groups: dict[tuple[str, str, int, int], list[tuple[int, float, float, int]]] = defaultdict(list)

    def problem(line_no: int, field_name: str, reason: str) -> None:
        if scope is None:
            errors.append({"row": line_no, "field": field_name, "reason": reason})
        else:
            result.skip("bad row", line_no)

    for line_no, values in enumerate(lines[start:], start=start + 1):
        if not values:
            continue
        if len(values) != len(HEADER):
            problem(line_no, "file", f"has {len(values)} columns, expected {len(HEADER)}")
            continue
        row = dict(zip(HEADER, (v.strip() for v in values), strict=True))
        if row["radio"] not in TECH:
            result.skip("not 4G/5G", line_no)
            continue
        try:
            mcc, net, area, cell = (int(row[k]) for k in ("mcc", "net", "area", "cell"))
            lon, lat = float(row["lon"]), float(row["lat"])
        except ValueError:
            problem(line_no, "mcc/net/area/cell/lon/lat", "must be numbers")
            continue
        if not (100 <= mcc <= 999 and 0 <= net <= 999 and area >= 0 and cell >= 0):
            problem(line_no, "mcc/net/area/cell", "out of range")
            continue
        if scope is not None:
            if mcc not in scope.mccs:
                result.skip("wrong MCC", line_no)
                continue
            if not scope.area.admits(shapely.Point(lon, lat)):
                result.skip("outside the area", line_no)
                continue
        bits = defaults.lte_cell_bits if row["radio"] == "LTE" else defaults.nr_cell_bits
        operator = f"{mcc}-{net:02d}"
        groups[(operator, row["radio"], area, cell >> bits)].append(
            (cell & ((1 << bits) - 1), lon, lat, line_no)
        )
    if errors:
        raise ImportRejected(
            f"import rejected: {len(errors)} problem(s); nothing was stored", details=errors
        )
    sites: list[dict[str, Any]] = []
    sectors: list[dict[str, Any]] = []
    for (operator, radio, area, node), cells in sorted(groups.items()):
        tech = TECH[radio]
        site_code = f"OC-{operator}-{radio}-{area}-{node}"
        lon = sum(c[1] for c in cells) / len(cells)
        lat = sum(c[2] for c in cells) / len(cells)
        if scope is not None and not scope.area.admits(shapely.Point(lon, lat)):
            for *_, line_no in cells:
                result.skip("outside the area", line_no)
            continue
        sites.append(
            {
                "code": site_code,
                "operator": operator,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                CREATE_DEFAULTS: {
                    "name": f"{radio} {area}/{node}",
                    "status": "active",
                    "tower_height_m": defaults.tower_height_m,
                    "backhaul_kind": "fibre",
                    "backhaul_capacity_mbps": 1000.0,
                },
            }
        )
        lte = tech == "4G"
        bits = defaults.lte_cell_bits if lte else defaults.nr_cell_bits
        for local_id, *_ in sorted(cells):
            sectors.append(
                {
                    "code": f"{site_code}-{local_id}",
                    "site_code": site_code,
                    "technology": tech,
                    "cell_identity": (node << bits) | local_id,  # the ECI / NCI phones report
                    CREATE_DEFAULTS: {
                        "band": defaults.lte_band if lte else defaults.nr_band,
                        "freq_mhz": defaults.lte_freq_mhz if lte else defaults.nr_freq_mhz,
                        "bandwidth_mhz": (
                            defaults.lte_bandwidth_mhz if lte else defaults.nr_bandwidth_mhz
                        ),
                        "azimuth_deg": (local_id % 3) * 120.0,
                        "mech_tilt_deg": defaults.mech_tilt_deg,
                        "elec_tilt_deg": defaults.elec_tilt_deg,
                        "h_beamwidth_deg": defaults.h_beamwidth_deg,
                        "v_beamwidth_deg": defaults.v_beamwidth_deg,
                        "gain_dbi": defaults.gain_dbi,
                        "tx_power_dbm": defaults.tx_power_dbm if lte else defaults.nr_tx_power_dbm,
                        "height_m": defaults.antenna_height_m,
                    },
                }
            )
    result.layers = {"sites": sites, "sectors": sectors}
    return result
