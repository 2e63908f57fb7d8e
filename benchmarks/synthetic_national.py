"""A national-size synthetic registry and 30 m DEM, deterministic by seed (clearly synthetic).

Vietnam covers about 330,000 km²; at 30 m that is a grid of about 370 M cells. The DEM is
a tiled int16 GeoTIFF written block by block, so generating it needs memory for one block
only. Its relief is seeded octave value noise evaluated on global grid coordinates: any
window is a pure function of (seed, window), so blocks join without seams and a sub-area
equals the same window of the national grid. Sites (three sectors each), villages and
sellers are placed uniformly at configurable densities (defaults near the Lai Châu demo's).

Usage::

    python benchmarks/synthetic_national.py OUT_DIR [--seed 1] [--area-km2 330000]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from benchmarks.coverage import synthetic_sectors  # noqa: E402
from registry.radio.coverage import SectorSpec  # noqa: E402
from registry.terrain import WORKING_CRS, DemFile  # noqa: E402

NATIONAL_AREA_KM2 = 330_000.0  # Vietnam, about
CELL_SIZE_M = 30.0
BLOCK = 512  # GeoTIFF block side and unit of generation, cells
ORIGIN_XY = (200_000.0, 2_600_000.0)  # upper-left corner in EPSG:32648 (synthetic extent)
KM2_PER_SITE = 8.0  # Lai Châu demo: 700 sites on 9,069 km² (13 km²); rural Vietnam denser
VILLAGES_PER_KM2 = 0.11  # Lai Châu demo: ~1,000 villages on 9,069 km²
SELLERS_PER_VILLAGE = 2.0  # mean; Poisson
# Relief: octaves of value noise from LONGEST_WAVELENGTH_M down to two cells, amplitude
# proportional to wavelength^HURST, scaled to about BASE_M ± RELIEF_M and clipped at 0 m.
LONGEST_WAVELENGTH_M = 200_000.0
HURST = 0.5  # slopes: median ~22 %, 90th percentile ~41 % (steep, like Lai Châu)
BASE_M = 900.0
RELIEF_M = 1_400.0


def _unit_hash(seed: int, octave: int, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Uniform values in [-1, 1) from integer lattice coordinates (splitmix64 finaliser)."""
    z = (
        iy.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        ^ ix.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        ^ np.uint64((seed * 1_000_003 + octave) & 0xFFFFFFFFFFFFFFFF)
    )
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 / 2.0**53) - 1.0


def _smooth_interp(coord: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Lattice cell of each coordinate (relative to the first), its smoothstep weight, and
    the first lattice index."""
    cell = np.floor(coord).astype(np.int64)
    frac = coord - cell
    first = int(cell[0])
    return cell - first, frac * frac * (3.0 - 2.0 * frac), first


def relief_m(
    seed: int,
    row_off: int,
    col_off: int,
    rows: int,
    cols: int,
    *,
    cell_size_m: float = CELL_SIZE_M,
) -> np.ndarray:
    """Elevations (float32, metres) of a window of the national grid, a pure function of
    the seed and the window."""
    y_m = (row_off + np.arange(rows) + 0.5) * cell_size_m
    x_m = (col_off + np.arange(cols) + 0.5) * cell_size_m
    total = np.zeros((rows, cols), dtype=np.float64)
    norm = 0.0
    wavelength = LONGEST_WAVELENGTH_M
    octave = 0
    while wavelength >= 2.0 * cell_size_m:
        ry, wy, y0 = _smooth_interp(y_m / wavelength)
        rx, wx, x0 = _smooth_interp(x_m / wavelength)
        iy = np.arange(y0, y0 + int(ry[-1]) + 2)
        ix = np.arange(x0, x0 + int(rx[-1]) + 2)
        lattice = _unit_hash(seed, octave, iy[:, None], ix[None, :])
        by_row = lattice[ry] * (1.0 - wy)[:, None] + lattice[ry + 1] * wy[:, None]
        amplitude = wavelength**HURST
        total += amplitude * (by_row[:, rx] * (1.0 - wx) + by_row[:, rx + 1] * wx)
        norm += amplitude
        wavelength /= 2.0
        octave += 1
    return np.clip(BASE_M + RELIEF_M * 2.0 * total / norm, 0.0, None).astype(np.float32)


def national_shape(area_km2: float, cell_size_m: float = CELL_SIZE_M) -> tuple[int, int]:
    """(rows, cols) of a grid of `area_km2`, 12:11 wide, in whole blocks."""
    cells = area_km2 * 1e6 / cell_size_m**2
    rows = math.ceil(math.sqrt(cells * 11 / 12) / BLOCK) * BLOCK
    cols = math.ceil(cells / rows / BLOCK) * BLOCK
    return rows, cols


def write_dem(
    path: Path,
    seed: int,
    shape: tuple[int, int],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> DemFile:
    """Write the DEM as a tiled int16 GeoTIFF (DEFLATE), block by block."""
    rows, cols = shape
    x0, y0 = ORIGIN_XY
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "int16",
        "crs": WORKING_CRS,
        "transform": Affine(CELL_SIZE_M, 0.0, x0, 0.0, -CELL_SIZE_M, y0),
        "nodata": -32768,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "DEFLATE",
        "predictor": 2,
        "BIGTIFF": "IF_SAFER",
    }
    blocks = [(r, c) for r in range(0, rows, BLOCK) for c in range(0, cols, BLOCK)]
    with rasterio.open(path, "w", **profile) as dst:
        for done, (r, c) in enumerate(blocks, 1):
            h, w = min(BLOCK, rows - r), min(BLOCK, cols - c)
            block = np.rint(relief_m(seed, r, c, h, w)).astype(np.int16)
            dst.write(block, 1, window=Window(c, r, w, h))
            if progress is not None:
                progress(done, len(blocks))
    return DemFile(path)


def window_vrt(
    dem_path: Path, vrt_path: Path, row_off: int, col_off: int, rows: int, cols: int
) -> DemFile:
    """A VRT of one window of the DEM file (no copy of the data): a sub-area to compute."""
    with rasterio.open(dem_path) as src:
        transform = src.transform @ Affine.translation(col_off, row_off)
        crs_wkt, nodata = src.crs.to_wkt(), src.nodata
    vrt_path.write_text(
        f'<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}">\n'
        f"  <SRS>{escape(crs_wkt)}</SRS>\n"
        f"  <GeoTransform>{', '.join(repr(v) for v in transform.to_gdal())}</GeoTransform>\n"
        '  <VRTRasterBand dataType="Int16" band="1">\n'
        f"    <NoDataValue>{nodata:g}</NoDataValue>\n"
        "    <SimpleSource>\n"
        f'      <SourceFilename relativeToVRT="0">{escape(str(dem_path.resolve()))}'
        "</SourceFilename>\n"
        "      <SourceBand>1</SourceBand>\n"
        f'      <SrcRect xOff="{col_off}" yOff="{row_off}" xSize="{cols}" ySize="{rows}"/>\n'
        f'      <DstRect xOff="0" yOff="0" xSize="{cols}" ySize="{rows}"/>\n'
        "    </SimpleSource>\n"
        "  </VRTRasterBand>\n"
        "</VRTDataset>\n",
        encoding="utf-8",
    )
    return DemFile(vrt_path)


@dataclass(frozen=True)
class Village:
    code: str
    x_m: float
    y_m: float
    population: int


@dataclass(frozen=True)
class Seller:
    code: str
    village_code: str
    x_m: float
    y_m: float
    phone: str  # "4G" or "5G"


@dataclass(frozen=True)
class Registry:
    """The synthetic registry, coordinates in the DEM CRS (EPSG:32648)."""

    sectors: list[SectorSpec]
    villages: list[Village]
    sellers: list[Seller]


def synthetic_registry(
    dem: DemFile,
    seed: int,
    *,
    km2_per_site: float = KM2_PER_SITE,
    villages_per_km2: float = VILLAGES_PER_KM2,
    sellers_per_village: float = SELLERS_PER_VILLAGE,
) -> Registry:
    """Sites (three sectors each), villages and sellers placed uniformly over the DEM."""
    rows, cols = dem.shape
    area_km2 = rows * cols * dem.cell_size[0] * dem.cell_size[1] / 1e6
    sectors = synthetic_sectors(dem, round(area_km2 / km2_per_site), seed=seed)
    rng = np.random.default_rng([seed, 1])
    n_villages = round(area_km2 * villages_per_km2)
    xs, ys = dem.transform @ (rng.uniform(0, cols, n_villages), rng.uniform(0, rows, n_villages))
    villages = [
        Village(f"V{i:06d}", float(x), float(y), int(p))
        for i, (x, y, p) in enumerate(
            zip(xs, ys, rng.lognormal(math.log(400.0), 0.6, n_villages), strict=True)
        )
    ]
    sellers = []
    for v, n in zip(villages, rng.poisson(sellers_per_village, n_villages), strict=True):
        for _ in range(n):
            dx, dy = rng.normal(0.0, 300.0, 2)  # within a few hundred metres of the village
            phone = "5G" if rng.random() < 0.3 else "4G"
            sellers.append(Seller(f"P{len(sellers):07d}", v.code, v.x_m + dx, v.y_m + dy, phone))
    return Registry(sectors, villages, sellers)


def write_registry(registry: Registry, directory: Path) -> dict[str, Path]:
    """Sectors (the `SectorSpec` CSV `benchmarks/coverage.py --sectors` reads), villages and
    sellers as CSV files."""
    paths = {}
    for name, rows in (
        ("sectors", registry.sectors),
        ("villages", registry.villages),
        ("sellers", registry.sellers),
    ):
        path = paths[name] = directory / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, [f.name for f in fields(type(rows[0]))])
            writer.writeheader()
            writer.writerows(asdict(r) for r in rows)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--area-km2", type=float, default=NATIONAL_AREA_KM2)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    shape = national_shape(args.area_km2)
    print(f"DEM {shape[1]} x {shape[0]} cells of {CELL_SIZE_M:.0f} m (SYNTHETIC)")
    dem = write_dem(
        args.out_dir / "dem.tif",
        args.seed,
        shape,
        progress=lambda done, total: print(f"\r  block {done}/{total}", end=""),
    )
    print()
    paths = write_registry(synthetic_registry(dem, args.seed), args.out_dir)
    print(f"DEM {dem.path}; registry {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    main()
