"""Use cases between the views (pages, API, CLI) and the pure core.

One module per use case: `coverage`, `readiness`, `siting`, `scenarios`, `records` (and
`planning`, the parameters readiness and siting share). Each loads what it needs through the
small query functions of `queries`, calls the core (`registry.radio`, `terrain`, `readiness`,
`backhaul`, `siting`) in metres of the DEM's CRS, and hands back dataclasses, or plain rows
with lon/lat at the JSON edge. Views parse, call one service, render.
"""
