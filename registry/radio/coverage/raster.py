"""Coverage layers as cloud-optimised GeoTIFFs (tiled, DEFLATE, overviews).

Every file carries tags: the model, all parameters (JSON), the DEM fingerprint, the
sector lookup of best_server and the service class codes. The service-class layer
also carries a colour table and GDAL category names (in the ``.aux.xml`` sidecar GDAL
reads with the file), so GIS software shows it in colour with the class names.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from registry.radio.coverage import mosaic
from registry.radio.coverage.types import LAYERS, CoverageParams, CoverageResult, SectorSpec, Tile
from registry.radio.linkbudget import SERVICE_CLASS_NODATA, SERVICE_CLASSES
from registry.terrain import DemSource

CATEGORICAL = ("best_server", "service_class")  # overviews by nearest, not by average

SERVICE_CLASS_COLOURS: dict[str, str] = {
    # ColorBrewer RdYlGn from data_only to fullhd_live; "none" grey (a TIFF palette has no
    # transparency; maps that overlay the classes leave "none" out).
    "none": "#bdbdbd",
    "data_only": "#d7191c",
    "basic_live": "#fdae61",
    "sd_live": "#ffffbf",
    "hd_live": "#a6d96a",
    "fullhd_live": "#1a9641",
}
"""Colour of each service class, by name."""


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


SERVICE_CLASS_COLORMAP: dict[int, tuple[int, int, int, int]] = {
    code: (*_rgb(SERVICE_CLASS_COLOURS[name]), 255) for code, name in enumerate(SERVICE_CLASSES)
}
"""GDAL colour table of a service-class raster: code to RGBA (`DatasetWriter.write_colormap`)."""


def write_category_names(path: str | Path, names: Sequence[str], *, band: int = 1) -> Path:
    """Name a band's values (value i is ``names[i]``) in the raster's GDAL ``.aux.xml``.

    GDAL (and what builds on it: QGIS, ``gdalinfo``, rasterio) reads the sidecar with the
    file; rasterio has no call that writes category names itself. Replaces any sidecar.

    Returns
    -------
    pathlib.Path
        The sidecar written.
    """
    root = ET.Element("PAMDataset")
    band_element = ET.SubElement(root, "PAMRasterBand", band=str(band))
    categories = ET.SubElement(band_element, "CategoryNames")
    for name in names:
        ET.SubElement(categories, "Category").text = name
    sidecar = Path(f"{path}.aux.xml")
    ET.ElementTree(root).write(sidecar, encoding="utf-8", xml_declaration=False)
    return sidecar


class LayerWriter:
    """Every layer as a tiled GeoTIFF written window by window, made a COG on closing.

    Only the windows being written are in memory; the conversion to cloud-optimised
    GeoTIFFs (with overviews) at the end reads block by block as well.
    """

    def __init__(
        self,
        directory: str | Path,
        prefix: str,
        shape: tuple[int, int],
        transform: Affine,
        crs: CRS,
        tags: Mapping[str, str],
    ) -> None:
        self.directory = Path(directory)
        self.paths = {name: self.directory / f"{prefix}_{name}.tif" for name in LAYERS}
        self._partial = {name: self.directory / f".{prefix}_{name}.partial.tif" for name in LAYERS}
        self._grid = {"height": shape[0], "width": shape[1], "transform": transform, "crs": crs}
        self._tags = tags
        self._files: dict[str, DatasetWriter] = {}

    def __enter__(self) -> LayerWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, (dtype, nodata, description) in LAYERS.items():
            dst = rasterio.open(
                self._partial[name],
                "w",
                driver="GTiff",
                count=1,
                dtype=dtype,
                nodata=nodata,
                tiled=True,
                blockxsize=mosaic.TILE_SIZE,
                blockysize=mosaic.TILE_SIZE,
                compress="DEFLATE",
                BIGTIFF="IF_SAFER",
                **self._grid,
            )
            self._files[name] = dst
            dst.update_tags(layer=name, **self._tags)
            dst.set_band_description(1, description)
            if name == "service_class":
                dst.write_colormap(1, SERVICE_CLASS_COLORMAP)
        return self

    def write(self, tile: Tile, layers: Mapping[str, np.ndarray]) -> None:
        r0, c0, r1, c1 = tile
        window = Window(c0, r0, c1 - c0, r1 - r0)
        for name, dst in self._files.items():
            dst.write(layers[name].astype(LAYERS[name][0], copy=False), 1, window=window)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        for name, dst in self._files.items():
            dst.close()
            if exc_type is None:
                rasterio.shutil.copy(
                    self._partial[name],
                    self.paths[name],
                    driver="COG",
                    compress="DEFLATE",
                    blocksize=256,
                    BIGTIFF="IF_SAFER",
                    overview_resampling="nearest" if name in CATEGORICAL else "average",
                )
                if name == "service_class":
                    write_category_names(self.paths[name], SERVICE_CLASSES)
            self._partial[name].unlink()


def coverage_tags(
    params: CoverageParams, dem: DemSource, sectors: Sequence[SectorSpec]
) -> dict[str, str]:
    return {
        "model": params.model,
        "params": json.dumps(asdict(params), sort_keys=True),
        "dem_fingerprint": dem.fingerprint,
        "sector_lookup": json.dumps([f"{s.site_code}/{s.sector_code}" for s in sectors]),
        "service_classes": json.dumps(
            dict(enumerate(SERVICE_CLASSES)) | {SERVICE_CLASS_NODATA: "nodata"}
        ),
    }


def write_coverage_geotiffs(
    result: CoverageResult, directory: str | Path, *, prefix: str = "coverage"
) -> dict[str, Path]:
    """Write each mosaic as a cloud-optimised GeoTIFF (tiled, DEFLATE, overviews).

    Every file carries tags: the model, all parameters (JSON), the DEM
    fingerprint, the sector lookup of best_server and the service class
    codes.

    Parameters
    ----------
    result : CoverageResult
    directory : str or pathlib.Path
        Output directory (created if missing).
    prefix : str
        File name prefix: ``{prefix}_{layer}.tif``.

    Returns
    -------
    dict
        Layer name to path.
    """
    shape = result.best_server.shape
    tags = coverage_tags(result.params, result.dem, result.sectors)
    with LayerWriter(directory, prefix, shape, result.transform, result.crs, tags) as writer:
        writer.write((0, 0, *shape), {name: getattr(result, name) for name in LAYERS})
    return dict(writer.paths)
