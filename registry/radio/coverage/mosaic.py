"""The mosaic: per tile, the best server, RSRP, DL SINR, uplink rate and service class.

Each sector's pattern (TR 36.814) and power per resource element turn its site group's
loss into RSRP; per cell the mosaic keeps the best server (strongest RSRP) and the
received power summed per frequency. Then DL SINR = best / (load x co-channel others +
noise per RE), the uplink rate to the best server (TR 36.942 Annex A mapping at the
configured location reliability) and the service class. A tile's cells depend only on
the site groups in their fixed order, so tiles can run anywhere, in any order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

from registry.radio import _kernels
from registry.radio.coverage.cache import LossCache
from registry.radio.coverage.losses import analysis_shape, bulge_factor, group_bounds
from registry.radio.coverage.types import (
    LAYERS,
    NO_SERVER,
    CoverageParams,
    CoverageResult,
    PointValues,
    SectorPatterns,
    SectorSpec,
    SiteGroup,
    SiteLoss,
    Tile,
)
from registry.radio.linkbudget import (
    SERVICE_CLASS_NODATA,
    SERVICE_CLASSES,
    noise_power_dbm,
    power_per_re_dbm,
    resource_blocks,
    service_class_codes,
    subcarrier_spacing_khz,
    uplink_budget,
    uplink_rate_mbps,
)
from registry.terrain import DemSource

TILE_SIZE = 128  # mosaic tile side in analysis cells (unit of parallel work and of updates)


@dataclass(frozen=True)
class SectorTable:
    """Per-sector constants as arrays, indexed like `CoverageResult.sectors`."""

    slot: np.ndarray  # frequency slot for interference sums
    pre_dbm: np.ndarray  # power per resource element
    dl_noise_dbm: np.ndarray  # UE noise per resource element
    ul_power_dbm: np.ndarray
    ul_noise_dbm: np.ndarray
    ul_bandwidth_hz: np.ndarray
    ul_time_fraction: np.ndarray
    n_slots: int


def sector_table(sectors: Sequence[SectorSpec], params: CoverageParams) -> SectorTable:
    """Per-sector constants of the mosaic (frequency slot, power per RE, noise, uplink)."""
    radio, uplink = params.radio, params.uplink
    slots = {f: i for i, f in enumerate(sorted({s.freq_mhz for s in sectors}))}
    scs = [subcarrier_spacing_khz(s.technology, radio) for s in sectors]
    budgets = [uplink_budget(s.technology, s.bandwidth_mhz, radio, uplink) for s in sectors]

    def column(values: Iterable[float]) -> np.ndarray:
        return np.asarray(list(values), dtype=np.float64)

    return SectorTable(
        slot=np.asarray([slots[s.freq_mhz] for s in sectors], dtype=np.int64),
        pre_dbm=column(
            power_per_re_dbm(s.tx_power_dbm, resource_blocks(s.technology, s.bandwidth_mhz, k))
            for s, k in zip(sectors, scs, strict=True)
        ),
        dl_noise_dbm=column(
            float(noise_power_dbm(k * 1e3, radio.ue_noise_figure_db, radio.thermal_noise_dbm_hz))
            for k in scs
        ),
        ul_power_dbm=column(b.ue_power_dbm for b in budgets),
        ul_noise_dbm=column(b.noise_dbm for b in budgets),
        ul_bandwidth_hz=column(b.bandwidth_hz for b in budgets),
        ul_time_fraction=column(b.time_fraction for b in budgets),
        n_slots=max(len(slots), 1),
    )


def tiles(shape: tuple[int, int]) -> list[Tile]:
    """The analysis grid cut into `TILE_SIZE` squares (smaller at the far edges)."""
    return [
        (r, c, min(r + TILE_SIZE, shape[0]), min(c + TILE_SIZE, shape[1]))
        for r in range(0, shape[0], TILE_SIZE)
        for c in range(0, shape[1], TILE_SIZE)
    ]


def overlaps(a: Tile, b: Tile) -> bool:
    """Whether two (row0, col0, row1, col1) boxes share a cell."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def clip(tile: Tile, boxes: Sequence[Tile]) -> Tile | None:
    """The part of a tile inside the bounding box of the boxes that overlap it (None if
    none does): what an update re-mosaicks of a tile, each cell being independent."""
    hit = [b for b in boxes if overlaps(b, tile)]
    if not hit:
        return None
    return (
        max(tile[0], min(b[0] for b in hit)),
        max(tile[1], min(b[1] for b in hit)),
        min(tile[2], max(b[2] for b in hit)),
        min(tile[3], max(b[3] for b in hit)),
    )


@dataclass(frozen=True)
class MosaicInputs:
    """What every tile task shares (sent to each Dask worker once)."""

    dem: DemSource
    params: CoverageParams
    sectors: tuple[SectorSpec, ...]
    groups: tuple[SiteGroup, ...]
    bounds: np.ndarray  # int64 (groups, 4): each group's loss window, analysis cells
    table: SectorTable
    transform: Affine  # of the analysis grid
    losses: Mapping[str, SiteLoss] | None  # None: read them from `cache`
    cache: LossCache  # on Dask each worker unpickles its own (empty LRU, same directory)

    @classmethod
    def build(
        cls,
        dem: DemSource,
        params: CoverageParams,
        sectors: tuple[SectorSpec, ...],
        groups: Sequence[SiteGroup],
        transform: Affine,
        losses: Mapping[str, SiteLoss] | None,
        cache: LossCache,
    ) -> MosaicInputs:
        bounds = np.array([group_bounds(dem, g, params) for g in groups], dtype=np.int64)
        return cls(
            dem,
            params,
            sectors,
            tuple(groups),
            bounds.reshape(len(groups), 4),
            sector_table(sectors, params),
            transform,
            losses,
            cache,
        )

    def loss(self, key: str) -> SiteLoss:
        """A group's loss: in memory, or from the disk cache through the cache's LRU."""
        if self.losses is not None:
            return self.losses[key]
        return self.cache.get(key)


def tile_elevation(dem: DemSource, tile: Tile, step: int) -> np.ndarray:
    """Ground elevation (float64) of a tile's analysis cells: every step-th DEM cell."""
    r0, c0, r1, c1 = tile
    half = step // 2
    window = dem.read(r0 * step, c0 * step, (r1 - r0) * step, (c1 - c0) * step)
    return window[half::step, half::step].astype(np.float64)


def mosaic_tile(m: MosaicInputs, tile: Tile) -> tuple[Tile, dict[str, np.ndarray]]:
    """Every layer over one tile; the tile comes back too, so results arriving in any
    order land in place. Reads only the tile's DEM window and the losses reaching it."""
    r0, c0, r1, c1 = tile
    shape = (r1 - r0, c1 - c0)
    best = np.full(shape, -np.inf, dtype=np.float32)
    idx = np.full(shape, NO_SERVER, dtype=np.int32)
    sum_mw = np.zeros((m.table.n_slots, *shape), dtype=np.float64)
    t, p = m.transform, m.params
    elevation = tile_elevation(m.dem, tile, p.analysis_step)
    inv_2kr = bulge_factor(p.k_factor, p.earth_radius_m)
    b = m.bounds
    near = np.flatnonzero((b[:, 0] < r1) & (r0 < b[:, 2]) & (b[:, 1] < c1) & (c0 < b[:, 3]))
    for k in near:
        g = m.groups[k]
        loss = m.loss(g.loss_key)
        sec = [m.sectors[i] for i in g.sector_indices]
        f_index = {f: i for i, f in enumerate(loss.freqs_mhz)}
        _kernels.accumulate(
            loss.loss_db,
            loss.row0,
            loss.col0,
            elevation,
            r0,
            c0,
            best,
            idx,
            sum_mw,
            t.c + 0.5 * t.a,
            t.a,
            t.f + 0.5 * t.e,
            t.e,
            g.x_m,
            g.y_m,
            loss.z_tx_m,
            p.radio.ue_height_m,
            inv_2kr,
            np.array([f_index[s.freq_mhz] for s in sec], dtype=np.int64),
            m.table.slot[list(g.sector_indices)],
            np.array(g.sector_indices, dtype=np.int64),
            *SectorPatterns.of(sec),
            m.table.pre_dbm[list(g.sector_indices)],
            p.radio.front_to_back_db,
            p.radio.side_lobe_v_db,
            p.radio.ue_antenna_gain_dbi - p.clutter_margin_db,
        )
    served = idx != NO_SERVER
    q = np.where(served, idx, 0)
    rsrp = np.where(served, best, np.nan)
    s_mw = 10.0 ** (rsrp / 10.0)
    total = np.take_along_axis(sum_mw, m.table.slot[q][None], axis=0)[0]
    interference = p.radio.dl_interference_load * np.maximum(total - s_mw, 0.0)
    sinr = 10.0 * np.log10(s_mw / (interference + 10.0 ** (m.table.dl_noise_dbm[q] / 10.0)))
    coupling_gain = rsrp - m.table.pre_dbm[q] - p.radio.ue_antenna_gain_dbi  # site gain - loss
    rate = uplink_rate_mbps(
        coupling_gain,
        ue_power_dbm=m.table.ul_power_dbm[q],
        noise_dbm=m.table.ul_noise_dbm[q],
        bandwidth_hz=m.table.ul_bandwidth_hz[q],
        time_fraction=m.table.ul_time_fraction[q],
        radio=p.radio,
        uplink=p.uplink,
    )
    rate = np.where(served, rate, 0.0)
    classes = service_class_codes(rate, p.thresholds)
    classes[np.isnan(elevation)] = SERVICE_CLASS_NODATA
    layers = {
        "best_server": idx,
        "rsrp_dbm": rsrp,
        "sinr_db": np.where(served, sinr, np.nan),
        "ul_rate_mbps": rate,
        "service_class": classes,
    }
    return tile, {name: a.astype(LAYERS[name][0], copy=False) for name, a in layers.items()}


def analysis_grid(dem: DemSource, step: int) -> tuple[tuple[int, int], Affine]:
    """Shape and transform of the analysis grid."""
    return analysis_shape(dem, step), dem.transform @ Affine.scale(step)


def values_at(result: CoverageResult, x_m: float, y_m: float) -> PointValues:
    """All coverage values of the analysis cell containing a point (DEM CRS).

    Raises
    ------
    ValueError
        If the point is outside the analysis grid.
    """
    col, row = ~result.transform @ (x_m, y_m)
    r, c = math.floor(row), math.floor(col)
    if not (0 <= r < result.best_server.shape[0] and 0 <= c < result.best_server.shape[1]):
        raise ValueError(f"point ({x_m}, {y_m}) is outside the coverage grid")
    i = int(result.best_server[r, c])
    sector = result.sectors[i] if i != NO_SERVER else None
    code = int(result.service_class[r, c])
    return PointValues(
        site_code=sector.site_code if sector else None,
        sector_code=sector.sector_code if sector else None,
        rsrp_dbm=float(result.rsrp_dbm[r, c]),
        sinr_db=float(result.sinr_db[r, c]),
        ul_rate_mbps=float(result.ul_rate_mbps[r, c]),
        service_class=SERVICE_CLASSES[code] if code != SERVICE_CLASS_NODATA else "nodata",
    )
