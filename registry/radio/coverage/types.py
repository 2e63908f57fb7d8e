"""Value types of the coverage engine: sectors, parameters, site losses, results."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from registry.radio.linkbudget import (
    SERVICE_CLASS_NODATA,
    RadioParams,
    ServiceClassThresholds,
    Technology,
    UplinkParams,
)
from registry.terrain import EARTH_RADIUS_M, K_FACTOR, DemSource

Model = Literal["deygout", "rma", "hata", "p1812"]
Progress = Callable[[int, int], None]
Tile = tuple[int, int, int, int]  # (row0, col0, row1, col1) in analysis cells, end exclusive

NO_SERVER = -1  # best_server value where no sector reaches

LAYERS: dict[str, tuple[str, float | int | None, str]] = {
    # name: (dtype, nodata, description)
    "best_server": ("int32", NO_SERVER, "index of the best server in the sector_lookup tag"),
    "rsrp_dbm": ("float32", math.nan, "RSRP of the best server, dBm"),
    "sinr_db": ("float32", math.nan, "downlink SINR, dB"),
    "ul_rate_mbps": ("float32", None, "sustained uplink rate to the best server, Mbps"),
    "service_class": ("uint8", SERVICE_CLASS_NODATA, "livestream service class code"),
}
"""The coverage layers: every result and every file has them, in this order."""


@dataclass(frozen=True)
class SectorSpec:
    """One cell (sector) of a site, in the DEM CRS."""

    site_code: str
    sector_code: str
    x_m: float
    y_m: float
    ground_elevation_m: float | None  # None: take it from the DEM
    height_m: float  # antenna height above ground
    technology: Technology
    freq_mhz: float
    bandwidth_mhz: float
    azimuth_deg: float
    mech_tilt_deg: float
    elec_tilt_deg: float
    h_beamwidth_deg: float
    v_beamwidth_deg: float
    gain_dbi: float
    tx_power_dbm: float  # total transmit power of the carrier
    site_active: bool = True


class SectorPatterns(NamedTuple):
    """Antenna-pattern fields of some sectors as float64 arrays, in the kernels' argument order."""

    azimuth_deg: np.ndarray
    mech_tilt_deg: np.ndarray
    elec_tilt_deg: np.ndarray
    h_beamwidth_deg: np.ndarray
    v_beamwidth_deg: np.ndarray
    gain_dbi: np.ndarray

    @classmethod
    def of(cls, sectors: Sequence[SectorSpec]) -> SectorPatterns:
        return cls._make(
            np.array([getattr(s, name) for s in sectors], dtype=np.float64) for name in cls._fields
        )


@dataclass(frozen=True)
class CoverageParams:
    """Model choice and every coverage constant (see the linked dataclasses for the rest)."""

    max_radius_m: float = 20_000.0  # path loss computed up to this distance from each site
    model: Model = "p1812"  # ITU-R P.1812-8 | free space + Deygout | TR 38.901 RMa | COST-231 Hata
    clutter_margin_db: float = 0.0  # extra loss for foliage/clutter, all cells
    analysis_step: int = 1  # odd; evaluate every n-th DEM cell (profiles stay at DEM resolution)
    k_factor: float = K_FACTOR  # effective earth-radius factor, ITU-R P.453
    earth_radius_m: float = EARTH_RADIUS_M
    rma_building_height_m: float = 5.0  # h, TR 38.901 Table 7.4.1-1
    rma_street_width_m: float = 20.0  # W, TR 38.901 Table 7.4.1-1
    hata_c_db: float = 0.0  # COST-231 area correction (0 = medium city / suburban)
    radio: RadioParams = field(default_factory=RadioParams)
    uplink: UplinkParams = field(default_factory=UplinkParams)
    thresholds: ServiceClassThresholds = field(default_factory=ServiceClassThresholds)

    def __post_init__(self) -> None:
        if self.model not in get_args(Model):
            raise ValueError(f"unknown model {self.model!r}")
        if self.analysis_step < 1 or self.analysis_step % 2 == 0:
            raise ValueError("analysis_step must be an odd integer >= 1")
        if self.max_radius_m <= 0:
            raise ValueError("max_radius_m must be positive")


@dataclass(frozen=True, eq=False)
class SiteLoss:
    """Basic transmission loss of one antenna position on the analysis grid.

    Attributes
    ----------
    key : str
        Hash of every input of the loss (the cache key).
    freqs_mhz : tuple of float
        Frequencies, in the order of `loss_db`'s first axis.
    row0, col0 : int
        Analysis-grid cell of ``loss_db[:, 0, 0]`` (may be outside the grid).
    loss_db : numpy.ndarray
        float32 (frequencies, rows, cols); NaN beyond the radius or without terrain.
    z_tx_m : float
        Absolute antenna elevation used, metres.
    """

    key: str
    freqs_mhz: tuple[float, ...]
    row0: int
    col0: int
    loss_db: np.ndarray
    z_tx_m: float

    @property
    def bounds(self) -> Tile:
        """(row0, col0, row1, col1) in analysis-grid cells, end exclusive."""
        return (
            self.row0,
            self.col0,
            self.row0 + self.loss_db.shape[1],
            self.col0 + self.loss_db.shape[2],
        )


@dataclass(frozen=True)
class SiteGroup:
    """Active sectors sharing an antenna position and height: one loss computation."""

    x_m: float
    y_m: float
    ground_elevation_m: float | None
    height_m: float
    freqs_mhz: tuple[float, ...]
    sector_indices: tuple[int, ...]
    loss_key: str
    signature: str  # loss key + the group's sector specs: changes when its RSRP changes


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """Coverage mosaics on the analysis grid.

    Attributes
    ----------
    best_server : numpy.ndarray
        int32 index into `sectors`, `NO_SERVER` (-1) where none reaches.
    rsrp_dbm, sinr_db : numpy.ndarray
        float32 RSRP of the best server and DL SINR; NaN where none reaches.
    ul_rate_mbps : numpy.ndarray
        float32 sustained uplink rate to the best server (0 where none).
    service_class : numpy.ndarray
        uint8 code, an index into `SERVICE_CLASSES`; `SERVICE_CLASS_NODATA`
        (255) where the DEM has no data.
    site_losses : mapping
        The path loss of each site group by its key.
    n_computed, n_cached : int
        Site groups whose loss was computed, and reused (disk or previous result).
    """

    dem: DemSource
    params: CoverageParams
    sectors: tuple[SectorSpec, ...]
    transform: Affine
    crs: CRS
    best_server: np.ndarray
    rsrp_dbm: np.ndarray
    sinr_db: np.ndarray
    ul_rate_mbps: np.ndarray
    service_class: np.ndarray
    site_losses: Mapping[str, SiteLoss]
    n_computed: int
    n_cached: int


@dataclass(frozen=True)
class PointValues:
    """All coverage values of the analysis cell containing a point."""

    site_code: str | None
    sector_code: str | None
    rsrp_dbm: float
    sinr_db: float
    ul_rate_mbps: float
    service_class: str


@dataclass(frozen=True)
class CoverageFiles:
    """Coverage mosaics written to disk by `compute_coverage_to_geotiffs`.

    Attributes
    ----------
    paths : mapping
        Layer name to its cloud-optimised GeoTIFF (as `write_coverage_geotiffs`).
    shape : tuple of int
        (rows, cols) of the analysis grid.
    transform : affine.Affine
        Its transform.
    n_computed, n_cached : int
        Site groups whose loss was computed, and found in the disk cache.
    """

    paths: Mapping[str, Path]
    shape: tuple[int, int]
    transform: Affine
    n_computed: int
    n_cached: int
