"""Sector antenna pattern of 3GPP TR 36.814 Table A.2.1.1-2 (scalar formulas).

Angles: bearings clockwise from grid north; vertical angles are depression
angles (positive below the horizon) and tilts are positive downwards.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

FRONT_TO_BACK_DB = 25.0  # A_m, TR 36.814 Table A.2.1.1-2
SIDE_LOBE_V_DB = 20.0  # SLA_v, TR 36.814 Table A.2.1.1-2


@register_jitable
def antenna_pattern_db(
    phi_deg: float,
    theta_deg: float,
    h_beamwidth_deg: float,
    v_beamwidth_deg: float,
    front_to_back_db: float = FRONT_TO_BACK_DB,
    side_lobe_v_db: float = SIDE_LOBE_V_DB,
) -> float:
    """Relative gain of the TR 36.814 pattern, dB (0 at boresight).

    A_H = -min(12 (phi/phi_3dB)^2, A_m), A_V = -min(12 (theta/theta_3dB)^2, SLA_v),
    A = -min(-(A_H + A_V), A_m).

    Parameters
    ----------
    phi_deg : float
        Horizontal angle from boresight, degrees, in [-180, 180].
    theta_deg : float
        Vertical angle from the (tilted) boresight, degrees.
    h_beamwidth_deg, v_beamwidth_deg : float
        Half-power (3 dB) beamwidths, degrees.
    front_to_back_db : float
        A_m, the floor of the pattern in dB (25 dB).
    side_lobe_v_db : float
        SLA_v, the vertical side-lobe floor in dB (20 dB).

    Returns
    -------
    float
        Relative gain in dB (<= 0).

    Examples
    --------
    >>> antenna_pattern_db(0.0, 0.0, 65.0, 7.0) == 0.0
    True
    >>> antenna_pattern_db(32.5, 0.0, 65.0, 7.0)
    -3.0
    >>> antenna_pattern_db(180.0, 0.0, 65.0, 7.0)
    -25.0
    """
    a_h = -min(12.0 * (phi_deg / h_beamwidth_deg) ** 2, front_to_back_db)
    a_v = -min(12.0 * (theta_deg / v_beamwidth_deg) ** 2, side_lobe_v_db)
    return -min(-(a_h + a_v), front_to_back_db)


@register_jitable
def sector_gain_dbi(
    bearing_deg: float,
    depression_deg: float,
    azimuth_deg: float,
    mech_tilt_deg: float,
    elec_tilt_deg: float,
    h_beamwidth_deg: float,
    v_beamwidth_deg: float,
    gain_dbi: float,
    front_to_back_db: float = FRONT_TO_BACK_DB,
    side_lobe_v_db: float = SIDE_LOBE_V_DB,
) -> float:
    """Gain of a sector antenna towards a point, dBi.

    The horizontal angle is the bearing minus the azimuth, wrapped to
    [-180, 180). Electrical tilt lowers the beam in every direction;
    mechanical tilt tilts the panel, so its effect is scaled by cos(phi)
    (full downtilt at boresight, none at the sides, uptilt behind).

    Parameters
    ----------
    bearing_deg : float
        Bearing from the antenna to the point, degrees clockwise from north.
    depression_deg : float
        Angle of the point below the antenna's horizon, degrees.
    azimuth_deg : float
        Boresight azimuth, degrees clockwise from north.
    mech_tilt_deg, elec_tilt_deg : float
        Mechanical and electrical downtilt, degrees.
    h_beamwidth_deg, v_beamwidth_deg : float
        Half-power beamwidths, degrees.
    gain_dbi : float
        Boresight gain, dBi.
    front_to_back_db, side_lobe_v_db : float
        Pattern floors, see `antenna_pattern_db`.

    Returns
    -------
    float
        Gain in dBi.

    Examples
    --------
    >>> sector_gain_dbi(120.0, 6.0, 120.0, 2.0, 4.0, 65.0, 7.0, 17.0)
    17.0
    """
    phi = wrap_deg(bearing_deg - azimuth_deg)
    return tilted_gain_dbi(
        phi,
        math.cos(math.radians(phi)),
        depression_deg,
        mech_tilt_deg,
        elec_tilt_deg,
        h_beamwidth_deg,
        v_beamwidth_deg,
        gain_dbi,
        front_to_back_db,
        side_lobe_v_db,
    )


@register_jitable
def tilted_gain_dbi(
    phi_deg: float,
    cos_phi: float,
    depression_deg: float,
    mech_tilt_deg: float,
    elec_tilt_deg: float,
    h_beamwidth_deg: float,
    v_beamwidth_deg: float,
    gain_dbi: float,
    front_to_back_db: float,
    side_lobe_v_db: float,
) -> float:
    """`sector_gain_dbi` from the horizontal angle φ off boresight (`wrap_deg`) and cos φ,
    which the coverage kernels take from `view_angles` without a cosine per sector."""
    theta = depression_deg - elec_tilt_deg - mech_tilt_deg * cos_phi
    return gain_dbi + antenna_pattern_db(
        phi_deg, theta, h_beamwidth_deg, v_beamwidth_deg, front_to_back_db, side_lobe_v_db
    )


@register_jitable
def wrap_deg(angle_deg: float) -> float:
    """An angle wrapped to [-180, 180) degrees; within a turn and a half of it (a bearing
    less an azimuth) without a division.

    Examples
    --------
    >>> [wrap_deg(a) for a in (-200.0, 180.0, 30.0, 725.0)]
    [160.0, -180.0, 30.0, 5.0]
    """
    if angle_deg < -180.0 and angle_deg >= -540.0:
        return angle_deg + 360.0
    if angle_deg >= 180.0 and angle_deg < 540.0:
        return angle_deg - 360.0
    if angle_deg >= -180.0 and angle_deg < 180.0:
        return angle_deg
    return (angle_deg + 180.0) % 360.0 - 180.0


@register_jitable
def view_angles(
    east_m: float, north_m: float, drop_m: float, inv_2kr: float
) -> tuple[float, float, float, float]:
    """From an antenna to a point east_m, north_m away and drop_m below it: the bearing and
    the depression (degrees; the Earth's bulge d² / (2 k R) added to the drop) and the unit
    vector (north, east) of the bearing, (1, 0) at the antenna's own position."""
    d2 = east_m * east_m + north_m * north_m
    dist = math.sqrt(d2)
    bearing = math.degrees(math.atan2(east_m, north_m))
    if dist > 0.0:  # atan2(y, x) = atan(y / x) for x > 0, and atan is cheaper
        depression = math.degrees(math.atan((drop_m + d2 * inv_2kr) / dist))
        return bearing, depression, north_m / dist, east_m / dist
    return bearing, math.degrees(math.atan2(drop_m, 0.0)), 1.0, 0.0
