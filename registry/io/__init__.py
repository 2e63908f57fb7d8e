"""Import and export of registry layers: GeoJSON, GeoPackage, CSV, KMZ, zipped shapefiles
(import) and OpenCelliD CSV (import).

Readers turn a file into ``{layer: [row, ...]}`` (rows are plain dicts with a ``geometry``);
``registry.store.import_layers`` then validates and stores them all or nothing. Writers take the
stored records and produce files QGIS and spreadsheets open directly.
"""

from __future__ import annotations

from registry.io.readers import FORMATS, frame_rows, read_layers
from registry.io.writers import (
    export_csv,
    export_geojson,
    export_gpkg,
    export_kmz,
    layer_frame,
    records_csv,
    records_geojson,
)

__all__ = [
    "FORMATS",
    "export_csv",
    "export_geojson",
    "export_gpkg",
    "export_kmz",
    "frame_rows",
    "layer_frame",
    "read_layers",
    "records_csv",
    "records_geojson",
]
