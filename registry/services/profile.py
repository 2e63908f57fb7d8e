"""Path profile pictures: a seller and its serving site, or any point and a site, as SVG.

The terrain between the two ends (DEM, bilinear, at the DEM resolution) is drawn with the
earth bulge (k = 4/3) so that the direct ray is straight, with both antennas, the first
Fresnel zone and Deygout's diffraction edges with their J(v) (`registry.radio.profile`); the
principal edge, the ridge that limits the path, is labelled with its distance from the phone
and its height. Drawn with matplotlib's object API (no pyplot, no GUI backend; DejaVu Sans,
which ships with matplotlib, covers Vietnamese), text kept as SVG text.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from sqlalchemy.orm import Session

from registry import store, terrain
from registry.errors import NotFoundError, ValidationError
from registry.models import Sector, Seller, Site
from registry.radio.profile import ProfileGeometry, profile_geometry
from registry.services import queries
from registry.services import readiness as readiness_service
from registry.services.coverage import (
    coverage_params,
    site_ground_m,
    to_dem,
    working_dem,
)

Config = Mapping[str, Any]
FIGURE_SIZE_IN = (9.0, 4.5)


@dataclass(frozen=True)
class ProfileLabels:
    """The picture's words (the web layer passes them translated); %-style placeholders."""

    distance_axis: str = "Distance from the phone (km)"
    height_axis: str = "Height above sea level (m)"
    terrain: str = "Terrain with the earth bulge (k = 4/3)"
    ray: str = "Direct ray"
    fresnel: str = "First Fresnel zone"
    edges: str = "Diffraction edges (Deygout)"
    phone: str = "Phone"
    site: str = "Site %(code)s"
    ridge: str = "Limiting ridge: %(km)s km, %(m)s m"
    clear: str = "Clear path; terrain closest to the ray: %(km)s km, %(m)s m"
    title: str = "%(a)s → %(b)s: %(mhz)s MHz, diffraction loss %(db)s dB"


def ridge_text(geometry: ProfileGeometry, labels: ProfileLabels) -> str | None:
    """The limiting ridge's label: its distance from the phone (km) and ground height (m); on
    a path without diffraction loss, the terrain point closest to the ray (Deygout's largest v)."""
    edge = geometry.limiting
    if edge is None:
        return None
    return (labels.ridge if edge.loss_db > 0.0 else labels.clear) % {
        "km": f"{edge.distance_m / 1000:.2f}",
        "m": f"{geometry.elevation_m[edge.index]:.0f}",
    }


def draw_svg(geometry: ProfileGeometry, *, site_code: str, labels: ProfileLabels) -> bytes:
    """The profile picture as an SVG document."""
    km = geometry.distance_m / 1000.0
    # SVG text kept as text (searchable, translatable); fixed ids: same input, same file
    with rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "registry-profile", "font.family": "DejaVu Sans"}
    ):
        fig = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        floor = float(min(geometry.terrain_m.min(), geometry.ray_m.min())) - 20.0
        ax.fill_between(km, floor, geometry.terrain_m, color="#c8b48c", label=labels.terrain)
        r = geometry.fresnel_radius_m
        ax.fill_between(
            km,
            geometry.ray_m - r,
            geometry.ray_m + r,
            color="#4c8fd6",
            alpha=0.2,
            label=labels.fresnel,
        )
        ax.plot(km, geometry.ray_m, color="#1f4e99", lw=1.2, label=labels.ray)
        for x, ground, top, text in (
            (km[0], geometry.terrain_m[0], geometry.z_a_m, labels.phone),
            (km[-1], geometry.terrain_m[-1], geometry.z_b_m, labels.site % {"code": site_code}),
        ):
            ax.plot([x, x], [ground, top], color="#333", lw=2)
            ax.plot([x], [top], marker="^", color="#333", ms=8)
            ax.annotate(text, (x, top), textcoords="offset points", xytext=(0, 8), ha="center")
        for edge in geometry.edges:
            if not edge.principal and edge.loss_db == 0.0:
                continue  # a secondary edge clear of its sub-path adds nothing
            colour = "#c0392b" if edge.principal else "#e67e22"
            x = edge.distance_m / 1000.0
            ax.plot([x], [edge.height_m], marker="v", color=colour, ms=8)
            ax.annotate(
                f"J = {edge.loss_db:.1f} dB",
                (x, edge.height_m),
                textcoords="offset points",
                xytext=(0, 10 if edge.principal else -16),
                ha="center",
                color=colour,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "lw": 0},
            )
        ax.plot([], [], "v", color="#c0392b", label=labels.edges)
        ridge = ridge_text(geometry, labels)
        if ridge is not None and geometry.limiting is not None:
            share = geometry.limiting.distance_m / geometry.distance_m[-1]
            ax.annotate(
                ridge,
                (geometry.limiting.distance_m / 1000.0, geometry.limiting.height_m),
                textcoords="offset points",
                xytext=(0, 30),
                ha="left" if share < 0.25 else "right" if share > 0.75 else "center",
                fontweight="bold",
                color="#c0392b",
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#c0392b"},
            )
        ax.set_xlim(km[0], km[-1])
        top = float(max(geometry.terrain_m.max(), geometry.z_a_m, geometry.z_b_m))
        ax.set_ylim(floor, top + 0.3 * (top - floor) + 30.0)  # room for the labels
        ax.set_xlabel(labels.distance_axis)
        ax.set_ylabel(labels.height_axis)
        ax.set_title(
            labels.title
            % {
                "a": labels.phone,
                "b": labels.site % {"code": site_code},
                "mhz": f"{geometry.freq_mhz:g}",
                "db": f"{geometry.diffraction_loss_db:.1f}",
            }
        )
        ax.grid(alpha=0.3)
        fig.legend(loc="outside lower center", ncols=4, fontsize="small", frameon=False)
        out = io.BytesIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _bad(field: str, reason: str) -> ValidationError:
    return ValidationError(f"bad {field}", details=[{"field": field, "reason": reason}])


def _ends(
    config: Config,
    session: Session,
    x_m: float,
    y_m: float,
    site: Site,
    sector_code: str | None,
    *,
    field: str,
) -> ProfileGeometry:
    """The geometry from a phone at (x, y) in the DEM CRS to ``site``'s antenna (that of
    ``sector_code``, else its highest), at that sector's frequency (else the site's lowest)."""
    dem = working_dem(config)
    sectors: list[Sector] = queries.sectors_of(session, [site.code])
    if not sectors:
        raise _bad("site", f"site {site.code} has no sectors")
    serving = next((s for s in sectors if s.code == sector_code), None)
    sx, sy = to_dem(dem).transform(site.geom.x, site.geom.y)
    ground = site_ground_m(dem, sx, sy, site.ground_elevation_m)
    here = float(terrain.elevation_at(dem, [x_m], [y_m])[0])
    if not math.isfinite(here) or not math.isfinite(ground):
        raise _bad(field, "the point and the site must lie on the DEM")
    profile = terrain.terrain_profile(dem, (x_m, y_m), (sx, sy))
    if profile.distance_m.size < 3:
        raise _bad(field, f"the point is at site {site.code}")
    height = serving.height_m if serving else max(s.height_m for s in sectors)
    freq = serving.freq_mhz if serving else min(s.freq_mhz for s in sectors)
    return profile_geometry(
        profile,
        z_a_m=here + coverage_params(config).radio.ue_height_m,
        z_b_m=ground + height,
        freq_mhz=freq,
    )


def _serving(config: Config, session: Session, seller: Seller) -> tuple[Site, str | None]:
    """The seller's serving site and sector by its verdict; without coverage or service, the
    nearest site that has sectors."""
    try:
        verdict = readiness_service.seller_verdict(
            readiness_service.load_inputs(config, session), seller.code
        )
    except NotFoundError:  # no coverage yet
        verdict = None
    if verdict and verdict["site_code"]:
        site = store.get_record(session, Site, verdict["site_code"])
        return site, verdict["sector_code"]
    with_sectors = {s.site_code for s in queries.sectors(session)}
    candidates = [s for s in queries.sites(session) if s.code in with_sectors]
    if not candidates:
        raise NotFoundError("there is no site with sectors to draw a profile to")
    nearest = min(
        candidates,
        key=lambda s: (s.geom.x - seller.geom.x) ** 2 + (s.geom.y - seller.geom.y) ** 2,
    )
    return nearest, None


def seller_profile_svg(config: Config, session: Session, code: str, labels: ProfileLabels) -> bytes:
    """The profile from a seller to its serving site (404 for an unknown seller)."""
    seller = store.get_record(session, Seller, code)
    site, sector_code = _serving(config, session, seller)
    x, y = to_dem(working_dem(config)).transform(seller.geom.x, seller.geom.y)
    geometry = _ends(config, session, x, y, site, sector_code, field="code")
    return draw_svg(geometry, site_code=site.code, labels=labels)


def point_profile_svg(
    config: Config,
    session: Session,
    lon: float,
    lat: float,
    site_code: str,
    labels: ProfileLabels,
) -> bytes:
    """The profile from a point (lon/lat) to a site (404 for an unknown site)."""
    site = store.get_record(session, Site, site_code)
    x, y = to_dem(working_dem(config)).transform(lon, lat)
    geometry = _ends(config, session, x, y, site, None, field="lon")
    return draw_svg(geometry, site_code=site.code, labels=labels)
