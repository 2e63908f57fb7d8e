"""Geometry of a path profile picture: terrain with the earth bulge, the direct ray, the first
Fresnel zone and the Deygout diffraction edges (pure; `registry.services.profile` draws it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from registry.radio.diffraction import DiffractionEdge, deygout_edges
from registry.radio.pathloss import SPEED_OF_LIGHT_M_S
from registry.terrain import TerrainProfile


@dataclass(frozen=True)
class ProfileGeometry:
    """Everything a profile picture shows, along the path from end A (the phone) to end B.

    Heights in metres above sea level on the effective-earth scale (terrain plus the earth
    bulge d1 d2 / (2 k R), so the ray is straight); distances in metres from A.
    """

    distance_m: np.ndarray
    elevation_m: np.ndarray  # ground, without the bulge
    terrain_m: np.ndarray  # ground plus the earth bulge
    ray_m: np.ndarray  # the straight line between the antennas
    fresnel_radius_m: np.ndarray  # first Fresnel zone radius around the ray
    z_a_m: float  # antenna at A
    z_b_m: float  # antenna at B
    freq_mhz: float
    edges: tuple[DiffractionEdge, ...]  # Deygout's, principal first
    diffraction_loss_db: float  # sum of the edges' J(v)

    @property
    def limiting(self) -> DiffractionEdge | None:
        """The principal edge: the ridge that limits the path (or comes closest to it)."""
        return self.edges[0] if self.edges else None

    def clearance_m(self, edge: DiffractionEdge) -> float:
        """Height of an edge above (+) or below (-) the direct ray."""
        return float(edge.height_m - self.ray_m[edge.index])


def fresnel_radius_m(d1_m: np.ndarray, d2_m: np.ndarray, freq_mhz: float) -> np.ndarray:
    """First Fresnel zone radius sqrt(lambda d1 d2 / (d1 + d2)), ITU-R P.526 eq. (2).

    Examples
    --------
    >>> float(fresnel_radius_m(np.array([500.0]), np.array([500.0]), 1800.0)[0]).__round__(2)
    6.45
    """
    wavelength_m = SPEED_OF_LIGHT_M_S / (freq_mhz * 1e6)
    total = d1_m + d2_m
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sqrt(wavelength_m * d1_m * d2_m / total)
    return np.where(total > 0, r, 0.0)


def profile_geometry(
    profile: TerrainProfile, *, z_a_m: float, z_b_m: float, freq_mhz: float
) -> ProfileGeometry:
    """The picture's geometry of ``profile`` between antennas at absolute heights ``z_a_m``
    (first point) and ``z_b_m`` (last point), at ``freq_mhz``."""
    d = np.asarray(profile.distance_m, dtype=np.float64)
    if d.size < 3:
        raise ValueError("a profile needs at least 3 points")
    terrain = np.asarray(profile.effective_m, dtype=np.float64)
    ray = z_a_m + (z_b_m - z_a_m) * d / d[-1]
    edges = tuple(deygout_edges(d, terrain, z_a_m, z_b_m, freq_mhz))
    return ProfileGeometry(
        distance_m=d,
        elevation_m=np.asarray(profile.elevation_m, dtype=np.float64),
        terrain_m=terrain,
        ray_m=ray,
        fresnel_radius_m=fresnel_radius_m(d, d[-1] - d, freq_mhz),
        z_a_m=z_a_m,
        z_b_m=z_b_m,
        freq_mhz=freq_mhz,
        edges=edges,
        diffraction_loss_db=math.fsum(e.loss_db for e in edges),
    )
