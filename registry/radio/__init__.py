"""Pure numeric radio engine: path loss, diffraction, antenna, link budget, coverage.

Nothing in this package knows about Flask or the database: functions take
numpy arrays, affine transforms and dataclasses and return the same.

Modules
-------
pathloss
    Free-space loss, 3GPP TR 38.901 RMa, COST-231 Hata (scalar formulas).
diffraction
    ITU-R P.526 knife edge J(v) and the exact Deygout method on one profile.
antenna
    3GPP TR 36.814 sector antenna pattern.
linkbudget
    Parameters, resource blocks, noise, the TR 36.942 truncated Shannon
    mapping, uplink rate and service classes.
coverage
    Radial-sweep path loss per site, line-of-sight masks, mosaics
    (best server, RSRP, SINR, uplink rate, service class), on-disk cache,
    incremental update and GeoTIFF output.
calibration
    Least-squares RSRP offsets from measurements.
"""
