"""The registry's area: where new records may lie (the union of its provinces' boundaries).

Pure geometry (shapely only). The check runs for every row of an import, so it is made cheap:
a bounding-box test first (most rows of a wrong file fail there), then the prepared union.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

BBox = tuple[float, float, float, float]

#: Margin (degrees, ~100 m) around the provinces' union: communes drawn from different
#: sources leave slivers between them, and a GPS fix on a boundary road may fall just outside.
AREA_MARGIN_DEG = 0.001


@dataclass(frozen=True)
class Area:
    """A lon/lat region with a name for messages, e.g. "Lai Châu" or "the box [...]".

    >>> a = Area.from_bbox((102.0, 21.0, 104.0, 23.0))
    >>> a.covers(shapely.Point(103, 22)), a.covers(shapely.Point(105, 22))
    (True, False)
    """

    name: str
    shape: BaseGeometry
    bounds: BBox = field(init=False)

    def __post_init__(self) -> None:
        shapely.prepare(self.shape)
        object.__setattr__(self, "bounds", tuple(self.shape.bounds))

    @classmethod
    def from_bbox(cls, bbox: BBox) -> Area:
        return cls(f"the registry area {list(bbox)}", box(*bbox))

    @classmethod
    def union(
        cls, boundaries: Iterable[tuple[str, BaseGeometry]], *, margin_deg: float = AREA_MARGIN_DEG
    ) -> Area:
        """The union of named boundaries (provinces), widened by ``margin_deg``."""
        names: list[str] = []
        shapes: list[BaseGeometry] = []
        for name, shape in boundaries:
            names.append(name)
            shapes.append(shape)
        merged = shapely.union_all(shapes)
        if margin_deg > 0:
            merged = merged.buffer(margin_deg, quad_segs=2)
        label = "every province (" + ", ".join(sorted(set(names))) + ")"
        return cls(label, merged)

    def covers(self, geom: BaseGeometry) -> bool:
        """Whether ``geom`` lies wholly inside the area (bounding box first, then the shape)."""
        x0, y0, x1, y1 = geom.bounds
        a0, b0, a1, b1 = self.bounds
        if x0 < a0 or y0 < b0 or x1 > a1 or y1 > b1:
            return False
        return bool(self.shape.covers(geom))

    def reaches(self, geom: BaseGeometry) -> bool:
        """Whether ``geom`` has a part inside the area (bounding boxes first, then the shape)."""
        x0, y0, x1, y1 = geom.bounds
        a0, b0, a1, b1 = self.bounds
        if x1 < a0 or y1 < b0 or x0 > a1 or y0 > b1:
            return False
        return bool(self.shape.intersects(geom))

    def admits(self, geom: BaseGeometry) -> bool:
        """Whether a record with this geometry belongs to the area: points and polygons lie
        inside it; lines (fibre links) reach into it, as backbone links run between provinces
        and to cores outside them."""
        return self.reaches(geom) if geom.geom_type == "LineString" else self.covers(geom)

    def swapped_admits(self, geom: BaseGeometry) -> bool:
        """Whether ``geom`` would be admitted with longitude and latitude exchanged."""
        return self.admits(shapely.transform(geom, lambda xy: xy[:, ::-1]))
