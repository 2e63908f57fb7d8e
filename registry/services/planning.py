"""Planning assumptions shared by readiness and siting, read from the settings in one place.

Readiness and siting must agree on what a live stream needs: the backhaul share left for
streams (``READINESS_BACKHAUL_SHARE_FOR_STREAMS``), the usable-signal floor, the search
radius (the coverage radius) and the target class siting lifts points to
(``SITING_TARGET_CLASS``). Both params objects come from `planning`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.confidence import ConfidenceParams
from registry.radio.coverage import CoverageParams
from registry.readiness import ReadinessParams
from registry.services.coverage import coverage_params
from registry.siting import GainParams

Config = Mapping[str, Any]


@dataclass(frozen=True)
class Planning:
    """The parameters of one analysis: readiness, siting gains and the radio model."""

    readiness: ReadinessParams
    gain: GainParams
    coverage: CoverageParams


def planning(config: Config, *, concurrent_streams: int | None = None) -> Planning:
    """Every planning parameter from the settings; ``concurrent_streams`` overrides
    ``READINESS_CONCURRENT_STREAMS_PER_CELL`` (e.g. a query parameter)."""
    radio = coverage_params(config)
    sigma = config["READINESS_LOCATION_SIGMA"]
    readiness = ReadinessParams(
        concurrent_streams_per_cell=int(
            concurrent_streams or config["READINESS_CONCURRENT_STREAMS_PER_CELL"]
        ),
        backhaul_share_for_streams=float(config["READINESS_BACKHAUL_SHARE_FOR_STREAMS"]),
        walking_radius_m=float(config["READINESS_WALKING_RADIUS_M"]),
        search_radius_m=radio.max_radius_m,
        radio=radio.radio,
        uplink=radio.uplink,
        thresholds=radio.thresholds,
        confidence=ConfidenceParams(
            likely_min_p=float(config["READINESS_LIKELY_MIN_P"]),
            unlikely_max_p=float(config["READINESS_UNLIKELY_MAX_P"]),
            terrain_radius_m=float(config["READINESS_TERRAIN_RADIUS_M"]),
            location_sigma=sigma if sigma in ("shadow", "p1812") else float(sigma),
        ),
    )
    gain = GainParams(
        target_class=str(config["SITING_TARGET_CLASS"]),
        rsrp_floor_dbm=readiness.rsrp_floor_dbm,
        backhaul_share_for_streams=readiness.backhaul_share_for_streams,
    )
    return Planning(readiness, gain, radio)
