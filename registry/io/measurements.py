"""Field measurements from the apps staff use → ``measurements`` rows.

Each reader returns ``{"measurements": [row, ...]}`` in the registry's units (dBm, Mbps, UTC
instants, lon/lat WGS 84) with a stable ``code`` (a hash of source, instant, position, cell),
so re-importing a file changes nothing, and the file's line number under ``SOURCE_ROW``, so
the store's per-row report names the line. A line that cannot be parsed rejects the whole file
with every such line listed (`ImportRejected`); range checks are the store's (`schemas`).
The serving cell's identity goes to ``cell_identity``; the store matches it to a sector.

Times: the apps write the phone's local clock without an offset; it is read in
``DEVICE_TIME_ZONE`` (Vietnam, UTC+7, no daylight saving).

Cell identity (TS 36.300 §8.2, TS 38.300 §8.2): LTE ECI = eNB id × 2⁸ + cell id (28 bits);
NR NCI = gNB id × 2^(36-b) + cell id, with the gNB id length b in 22..32 bits; the registry
assumes b = 24 (12 cell bits), as `registry.io.opencellid.CellDefaults` does.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from registry.errors import ImportRejected, ValidationError
from registry.store import SOURCE_ROW

Rows = list[dict[str, Any]]
Raw = dict[str, str]
#: The phones' clock: Indochina Time, UTC+7 all year.
DEVICE_TIME_ZONE = timezone(timedelta(hours=7))
#: Bits of the cell id inside an LTE ECI (TS 36.300 §8.2) and, with a 24-bit gNB id, inside
#: an NR NCI (TS 38.300 §8.2).
LTE_CELL_BITS = 8
NR_CELL_BITS = 12
KBPS_PER_MBPS = 1000.0


def eci(enb_id: int, cell_id: int) -> int:
    """LTE E-UTRAN cell identity from the eNB id and the cell id (TS 36.300 §8.2).

    >>> eci(12345, 3)
    3160323
    """
    return (enb_id << LTE_CELL_BITS) | cell_id


def nci(gnb_id: int, cell_id: int) -> int:
    """NR cell identity from a 24-bit gNB id and the cell id (TS 38.300 §8.2)."""
    return (gnb_id << NR_CELL_BITS) | cell_id


def _bad(fmt: str, reason: str) -> ValidationError:
    return ValidationError(
        f"the file cannot be read as {fmt}", details=[{"field": "file", "reason": reason}]
    )


def _text(data: bytes, fmt: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(fmt, str(exc)) from None


def _table(text: str, fmt: str, delimiter: str = ",") -> tuple[list[str], list[tuple[int, Raw]]]:
    """Header (stripped) and ``(line, {column: value})`` rows of a delimited text."""
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        lines = [(reader.line_num, cells) for cells in reader]
    except csv.Error as exc:
        raise _bad(fmt, str(exc)) from None
    lines = [(n, cells) for n, cells in lines if any(c.strip() for c in cells)]
    if not lines:
        raise _bad(fmt, "the file is empty")
    header = [c.strip() for c in lines[0][1]]
    rows = []
    for n, cells in lines[1:]:
        if len(cells) > len(header):
            raise _bad(fmt, f"line {n}: more values than header columns")
        rows.append((n, {h: c.strip() for h, c in zip(header, cells, strict=False)}))
    return header, rows


def _column(header: Sequence[str], names: Sequence[str]) -> str | None:
    """The header's column that is one of ``names`` (case-insensitive), if any."""
    lower = {h.lower(): h for h in header}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _require(
    header: Sequence[str], wanted: Mapping[str, Sequence[str]], fmt: str
) -> dict[str, str | None]:
    found = {key: _column(header, names) for key, names in wanted.items()}
    missing = [names[0] for key, names in wanted.items() if found[key] is None]
    if missing:
        raise _bad(fmt, f"no column {', '.join(missing)} (columns: {', '.join(header)})")
    return found


def _number(value: str | None) -> float | None:
    """A number, or None for an empty cell; ValueError for anything else."""
    if value is None or value.strip() in ("", "-", "N/A", "null"):
        return None
    number = float(value.replace(",", ".") if value.count(",") == 1 and "." not in value else value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _local(value: str, formats: Sequence[str], tz: timezone) -> datetime:
    """A phone-clock time in one of ``formats`` (or ISO 8601) as an aware instant."""
    for fmt in formats:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    stamp = datetime.fromisoformat(value.strip())
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=tz)


def _row(
    source: str,
    line: int,
    *,
    lon: float,
    lat: float,
    measured_at: datetime,
    kind: str,
    technology: str | None = None,
    operator: str | None = None,
    cell: int | None = None,
    rsrp_dbm: float | None = None,
    ul_rate_mbps: float | None = None,
    dl_rate_mbps: float | None = None,
    seller_code: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    key = f"{source}|{measured_at.isoformat()}|{lon:.6f}|{lat:.6f}|{technology}|{cell}"
    row: dict[str, Any] = {
        "code": code or f"{source}-{hashlib.sha1(key.encode()).hexdigest()[:16]}",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "kind": kind,
        "source": source,
        "measured_at": measured_at,
        "technology": technology,
        "operator": operator,
        "cell_identity": cell,
        "rsrp_dbm": rsrp_dbm,
        "ul_rate_mbps": ul_rate_mbps,
        "dl_rate_mbps": dl_rate_mbps,
        SOURCE_ROW: line,
    }
    if seller_code:
        row["seller_code"] = seller_code
    return row


def _collect(
    fmt: str,
    rows: list[tuple[int, Raw]],
    parse: Callable[[int, Raw], dict[str, Any] | None],
) -> dict[str, Rows]:
    """Parse every line; any unreadable line rejects the file, each one reported."""
    out: Rows = []
    errors: list[dict[str, Any]] = []
    for line, raw in rows:
        try:
            row = parse(line, raw)
        except (ValueError, TypeError, KeyError) as exc:
            errors.append({"layer": "measurements", "row": line, "field": fmt, "reason": str(exc)})
            continue
        if row is not None:
            out.append(row)
    if errors:
        raise ImportRejected(
            f"import rejected: {len(errors)} problem(s); nothing was stored", details=errors
        )
    return {"measurements": out}


def _operator(mcc_mnc: str | None) -> str | None:
    """``45204`` or ``452-04`` or ``452 04`` → ``452-04``; None when empty."""
    if not mcc_mnc:
        return None
    digits = re.sub(r"\D", "", mcc_mnc)
    if len(digits) not in (5, 6):
        raise ValueError(f"operator {mcc_mnc!r} is not MCC+MNC")
    return f"{digits[:3]}-{digits[3:]}"


def _technology(name: str | None) -> str | None:
    """The registry technology of an app's network type: LTE → 4G, NR → 5G, else None."""
    key = (name or "").strip().upper().replace("-", "").replace(" ", "")
    if key in ("LTE", "4G", "LTEA", "LTE+", "LTECA", "4G+"):
        return "4G"
    if key in ("NR", "5G", "NRSA", "NRNSA", "5GSA", "5GNSA"):
        return "5G"
    return None


# ---------------------------------------------------------------- Speedtest app
SPEEDTEST_HEADER = (
    "Date",
    "ConnType",
    "Lat",
    "Lon",
    "Download",
    "Upload",
    "Latency",
    "ServerName",
    "InternalIp",
    "ExternalIp",
)
#: Connection types of the app that are not a 4G/5G mobile network (skipped).
SPEEDTEST_NOT_MOBILE = ("wifi", "ethernet")


def read_speedtest(
    data: bytes, _layer: str | None = None, *, tz: timezone = DEVICE_TIME_ZONE
) -> dict[str, Rows]:
    """The Ookla Speedtest Android app's "Export results" CSV.

    Layout, as the app writes it (header line and sample rows quoted in the parser of
    liquidlabs/android-speedtest-mapper, ``CsvDataParser.java``, "header string taken from
    exported CSV"): ``Date,ConnType,Lat,Lon,Download,Upload,Latency,ServerName,InternalIp,
    ExternalIp``; ``Date`` is the phone's clock, ``"2013-04-27 10:47"`` (no seconds, no
    offset: read in ``tz``); ``Download``/``Upload`` in kbit/s (e.g. 11524 → 11.5 Mbps);
    ``Latency`` in ms; ``ConnType`` ``Wifi``, ``Cell``, ``Lte``, ``Edge``, … Wi-Fi rows are
    skipped; ``Lte`` is 4G, ``5G``/``Nr`` 5G; other mobile types keep no technology. The
    export has no operator or cell identity. Text before the header (an e-mailed export's
    greeting) is skipped.
    """
    text = _text(data, "Speedtest CSV")
    start = text.find(SPEEDTEST_HEADER[0] + "," + SPEEDTEST_HEADER[1])
    if start < 0:
        raise _bad("Speedtest CSV", f"no header line {','.join(SPEEDTEST_HEADER)}")
    skipped_lines = text[:start].count("\n")
    header, rows = _table(text[start:], "Speedtest CSV")
    _require(header, {c: (c,) for c in SPEEDTEST_HEADER[:6]}, "Speedtest CSV")

    def parse(line: int, raw: Raw) -> dict[str, Any] | None:
        conn = raw["ConnType"].strip().lower()
        if conn in SPEEDTEST_NOT_MOBILE:
            return None
        lat, lon = _number(raw["Lat"]), _number(raw["Lon"])
        if lat is None or lon is None:
            raise ValueError("Lat/Lon: the test has no position")
        down, up = _number(raw["Download"]), _number(raw["Upload"])
        return _row(
            "speedtest_app",
            line + skipped_lines,
            lon=lon,
            lat=lat,
            measured_at=_local(raw["Date"], ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"), tz),
            kind="speedtest",
            technology=_technology(conn),
            ul_rate_mbps=None if up is None else up / KBPS_PER_MBPS,
            dl_rate_mbps=None if down is None else down / KBPS_PER_MBPS,
        )

    return _collect("Speedtest CSV", rows, parse)


#: Labels of the app's share text ("Download: 45.53 Mbps", "Upload: 13.61 Mbps") and of its
#: Vietnamese interface ("Tải xuống", "Tải lên").
_SHARE_RATE = r"(?P<value>\d+(?:[.,]\d+)?)\s*(?P<unit>[kKmM])\s*bps"
_SHARE_UP = re.compile(r"(?:Upload|Tải lên)\s*:?\s*" + _SHARE_RATE, re.IGNORECASE)
_SHARE_DOWN = re.compile(r"(?:Download|Tải xuống)\s*:?\s*" + _SHARE_RATE, re.IGNORECASE)
_SHARE_CONN = re.compile(r"Connection Type\s*:\s*(?P<conn>[\w+-]+)", re.IGNORECASE)


def parse_share_text(text: str) -> dict[str, Any]:
    """Rates from the Speedtest app's share text, e.g. ``Download: 45.53 Mbps`` and
    ``Upload: 13.61 Mbps`` lines (with ``Connection Type: Lte``); ValidationError naming
    ``share_text`` when there is no upload figure.

    >>> parse_share_text("Connection Type: Lte\\nDownload: 45.53 Mbps\\nUpload: 13.61 Mbps")
    {'ul_rate_mbps': 13.61, 'dl_rate_mbps': 45.53, 'technology': '4G'}
    """

    def rate(match: re.Match[str] | None) -> float | None:
        if match is None:
            return None
        value = float(match["value"].replace(",", "."))
        return value / KBPS_PER_MBPS if match["unit"].lower() == "k" else value

    up = rate(_SHARE_UP.search(text))
    if up is None:
        raise ValidationError(
            "no upload rate in the pasted text",
            details=[{"field": "share_text", "reason": "expected a line like 'Upload: 6.2 Mbps'"}],
        )
    conn = _SHARE_CONN.search(text)
    return {
        "ul_rate_mbps": up,
        "dl_rate_mbps": rate(_SHARE_DOWN.search(text)),
        "technology": _technology(conn["conn"]) if conn else None,
    }


# ---------------------------------------------------------------- G-NetTrack
GNETTRACK_COLUMNS = {
    "time": ("Timestamp",),
    "lon": ("Longitude",),
    "lat": ("Latitude",),
}


def read_gnettrack(
    data: bytes, _layer: str | None = None, *, tz: timezone = DEVICE_TIME_ZONE
) -> dict[str, Rows]:
    """A G-NetTrack Lite/Pro log (the app's ``.txt`` log: tab-separated, one header line, one
    line per measurement second).

    Columns read (by name, so their order and the app's other columns do not matter):
    ``Timestamp`` (phone clock, ``2018.02.12_13.47.41``, read in ``tz``), ``Longitude``,
    ``Latitude``, ``Operator`` (MCC+MNC digits, e.g. ``45204``), ``NetworkTech`` (``LTE``,
    ``NR``, …; other technologies are skipped), ``Node`` (eNB/gNB id) and ``CellID`` (the cell
    within it), ``Level`` (serving RSRP in dBm on LTE/NR), ``DL_bitrate`` and ``UL_bitrate``
    (kbit/s of the data test running at that second, 0 when none). The column names are the
    ones the app's logs and the datasets recorded with it carry (e.g. Raca et al., "Beyond
    throughput: a 4G LTE dataset with channel and context metrics", ACM MMSys 2018, recorded
    with G-NetTrack Pro: ``Timestamp, Longitude, Latitude, …, CellID, …, RSRP, …, DL_bitrate,
    UL_bitrate``, bitrates in kbit/s); the maker's manual was not among the sources this
    project could consult. Where a log names the serving RSRP ``RSRP`` rather than ``Level``
    (and the technology ``NetworkMode``), that is read.
    Lines without a position, or with neither RSRP nor an uplink rate, are skipped.
    """
    fmt = "G-NetTrack log"
    header, rows = _table(_text(data, fmt), fmt, delimiter="\t")
    _require(header, GNETTRACK_COLUMNS, fmt)
    col = {
        "operator": _column(header, ("Operator",)),
        "tech": _column(header, ("NetworkTech", "NetworkMode")),
        "node": _column(header, ("Node", "eNodeB", "gNodeB")),
        "cell": _column(header, ("CellID",)),
        "rsrp": _column(header, ("Level", "RSRP")),
        "ul": _column(header, ("UL_bitrate",)),
        "dl": _column(header, ("DL_bitrate",)),
    }

    def get(raw: Raw, key: str) -> str | None:
        name = col[key]
        return raw.get(name) if name else None

    def parse(line: int, raw: Raw) -> dict[str, Any] | None:
        tech = _technology(get(raw, "tech")) if col["tech"] else "4G"
        lon, lat = _number(raw["Longitude"]), _number(raw["Latitude"])
        if tech is None or lon is None or lat is None or (lon == 0 and lat == 0):
            return None
        rsrp = _number(get(raw, "rsrp"))
        up, down = _number(get(raw, "ul")), _number(get(raw, "dl"))
        if rsrp is None and not up:
            return None
        node, cell = _number(get(raw, "node")), _number(get(raw, "cell"))
        identity = None
        if node is not None and cell is not None:
            identity = (eci if tech == "4G" else nci)(int(node), int(cell))
        return _row(
            "gnettrack",
            line,
            lon=lon,
            lat=lat,
            measured_at=_local(raw["Timestamp"], ("%Y.%m.%d_%H.%M.%S",), tz),
            kind="rsrp" if rsrp is not None else "speedtest",
            technology=tech,
            operator=_operator(get(raw, "operator")),
            cell=identity,
            rsrp_dbm=rsrp,
            ul_rate_mbps=up / KBPS_PER_MBPS if up else None,
            dl_rate_mbps=down / KBPS_PER_MBPS if down else None,
        )

    return _collect(fmt, rows, parse)


# ---------------------------------------------------------------- Network Cell Info Lite
NETCELLINFO_COLUMNS = {
    "time": ("time", "timestamp", "date", "datetime"),
    "lat": ("latitude", "lat"),
    "lon": ("longitude", "lon", "lng"),
    "rsrp": ("rsrp", "dbm", "signal"),
}
NETCELLINFO_OPTIONAL = {
    "tech": ("type", "network type", "tech", "technology", "rat"),
    "mcc": ("mcc",),
    "mnc": ("mnc",),
    "cell": ("eci", "nci", "ci", "cid", "cell id", "cellid"),
}


def read_netcellinfo(
    data: bytes, _layer: str | None = None, *, tz: timezone = DEVICE_TIME_ZONE
) -> dict[str, Rows]:
    """Network Cell Info Lite's CSV export of its measurement log.

    The maker (Wilysis) does not publish the export's columns in any source this project
    could consult, so this reader takes columns by name, case-insensitively, from the names
    such exports use, and rejects a file lacking one, naming it: time (``time``,
    ``timestamp``, ``date``; ``YYYY-MM-DD HH:MM:SS`` or ISO 8601 on the phone's clock, read in
    ``tz`` unless it carries an offset), position (``latitude``/``longitude``, WGS 84 degrees),
    serving RSRP in dBm (``rsrp``, ``dbm``); optional: network type (``type``, ``tech``;
    LTE → 4G, NR → 5G, other types skipped), ``mcc``, ``mnc``, and the full cell identity
    (``eci``, ``nci``, ``ci``, ``cid``: the 28-bit ECI / 36-bit NCI, not the PCI).
    """
    fmt = "Network Cell Info CSV"
    text = _text(data, fmt)
    delimiter = (
        ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    )
    header, rows = _table(text, fmt, delimiter=delimiter)
    col = _require(header, NETCELLINFO_COLUMNS, fmt)
    col.update({k: _column(header, names) for k, names in NETCELLINFO_OPTIONAL.items()})

    def get(raw: Raw, key: str) -> str | None:
        name = col[key]
        return raw.get(name) if name else None

    def parse(line: int, raw: Raw) -> dict[str, Any] | None:
        tech = _technology(get(raw, "tech")) if col["tech"] else "4G"
        lon, lat, rsrp = (_number(get(raw, k)) for k in ("lon", "lat", "rsrp"))
        if tech is None or lon is None or lat is None or rsrp is None:
            return None
        mcc, mnc = get(raw, "mcc"), get(raw, "mnc")
        cell = _number(get(raw, "cell"))
        return _row(
            "netcellinfo",
            line,
            lon=lon,
            lat=lat,
            measured_at=_local(str(get(raw, "time")), ("%Y-%m-%d %H:%M:%S",), tz),
            kind="rsrp",
            technology=tech,
            operator=_operator(f"{mcc}{int(mnc):02d}") if mcc and mnc else None,
            cell=None if cell is None else int(cell),
            rsrp_dbm=rsrp,
        )

    return _collect(fmt, rows, parse)


# ---------------------------------------------------------------- plain CSV template
TEMPLATE_HEADER = (
    "lon",
    "lat",
    "measured_at",
    "operator",
    "technology",
    "rsrp_dbm",
    "ul_rate_mbps",
    "dl_rate_mbps",
    "cell",
)


def read_template(
    data: bytes, _layer: str | None = None, *, tz: timezone = DEVICE_TIME_ZONE
) -> dict[str, Rows]:
    """The registry's own measurement template (`TEMPLATE_HEADER`; optional ``seller_code``
    and ``code``): lon/lat in WGS 84 degrees, ``measured_at`` ISO 8601 (without an offset:
    Vietnam time), ``operator`` MCC-MNC (``452-04``), ``technology`` ``4G``/``5G``, RSRP in
    dBm, rates in Mbit/s, ``cell`` the decimal ECI/NCI. A row with RSRP is an ``rsrp``
    measurement, else a ``speedtest``."""
    fmt = "measurement CSV"
    header, rows = _table(_text(data, fmt), fmt)
    _require(header, {c: (c,) for c in TEMPLATE_HEADER[:3]}, fmt)

    def parse(line: int, raw: Raw) -> dict[str, Any]:
        lon, lat = _number(raw["lon"]), _number(raw["lat"])
        if lon is None or lat is None:
            raise ValueError("lon/lat: required")
        rsrp = _number(raw.get("rsrp_dbm"))
        cell = _number(raw.get("cell"))
        tech = (raw.get("technology") or "").strip() or None
        return _row(
            "csv",
            line,
            lon=lon,
            lat=lat,
            measured_at=_local(raw["measured_at"], (), tz),
            kind="rsrp" if rsrp is not None else "speedtest",
            technology=tech,
            operator=(raw.get("operator") or "").strip() or None,
            cell=None if cell is None else int(cell),
            rsrp_dbm=rsrp,
            ul_rate_mbps=_number(raw.get("ul_rate_mbps")),
            dl_rate_mbps=_number(raw.get("dl_rate_mbps")),
            seller_code=(raw.get("seller_code") or "").strip() or None,
            code=(raw.get("code") or "").strip() or None,
        )

    return _collect(fmt, rows, parse)


FORMATS = {
    "speedtest": read_speedtest,
    "gnettrack": read_gnettrack,
    "netcellinfo": read_netcellinfo,
    "measurements": read_template,
}
