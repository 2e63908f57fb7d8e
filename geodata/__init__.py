"""Lai Châu demo data: the real 2025 communes plus clearly labelled synthetic layers.

``geodata.build.build_demo`` builds everything (DEM GeoTIFF, villages, sites,
sectors, fibre, sellers, events); ``python -m geodata.build OUT_DIR`` runs it.
Sources and methods: geodata/SOURCES.md.
"""
