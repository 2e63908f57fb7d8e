"""Backhaul: the fibre network as a graph, each site's route to the core, and cut impact.

Pure functions over plain records (dicts or DataFrame rows); no Flask, no database. Links that
are ``cut`` or only ``planned`` carry nothing. A site's usable backhaul is the bottleneck of its
route (the shortest route, by length, to any core node) capped by its own access capacity;
microwave and satellite sites have only their own capacity. A site that is down, or whose fibre
route is cut, is unreachable.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
from pyproj import Geod

_GEOD = Geod(ellps="WGS84")
CARRYING_STATUS = "active"


@dataclass(frozen=True)
class SiteBackhaul:
    """One site's backhaul: reachable or not, its route and the capacity it can use."""

    site_code: str
    kind: str
    reachable: bool
    capacity_mbps: float
    route_links: tuple[str, ...] = ()
    reason: str = ""


def link_length_m(coords: Sequence[Sequence[float]]) -> float:
    """Geodesic length of a lon/lat line.

    >>> round(link_length_m([(103.0, 22.0), (103.01, 22.0)]))
    1033
    """
    lons, lats = zip(*((c[0], c[1]) for c in coords), strict=True)
    return float(_GEOD.line_length(lons, lats))


def fibre_graph(nodes: Iterable[Mapping[str, Any]], links: Iterable[Mapping[str, Any]]) -> nx.Graph:
    """Undirected graph of carrying links; nodes keep ``kind``, edges ``code``, capacity, length.

    Parallel links between the same two nodes are merged with their capacities added.
    """
    graph = nx.Graph()
    for node in nodes:
        graph.add_node(node["code"], kind=node["kind"])
    for link in links:
        if link["status"] != CARRYING_STATUS:
            continue
        a, b = link["from_node_code"], link["to_node_code"]
        length = link_length_m(link["geometry"].coords) if link.get("geometry") else 0.0
        if graph.has_edge(a, b):
            edge = graph.edges[a, b]
            edge["capacity_mbps"] += float(link["capacity_mbps"])
            edge["codes"] += (link["code"],)
        else:
            graph.add_edge(
                a,
                b,
                codes=(link["code"],),
                capacity_mbps=float(link["capacity_mbps"]),
                length_m=length,
            )
    return graph


def core_nodes(graph: nx.Graph) -> list[str]:
    return [n for n, kind in graph.nodes(data="kind") if kind == "core"]


def site_backhaul(sites: Iterable[Mapping[str, Any]], graph: nx.Graph) -> dict[str, SiteBackhaul]:
    """Each site's backhaul verdict, by site code."""
    cores = core_nodes(graph)
    routes: dict[str, list[str]] = {}
    if cores:
        graph_with_root = graph.copy()
        graph_with_root.add_edges_from(((" root", c) for c in cores), length_m=0.0)
        _, paths = nx.single_source_dijkstra(graph_with_root, " root", weight="length_m")
        routes = {node: path[1:] for node, path in paths.items() if node != " root"}
    out = {}
    for site in sites:
        code, kind = site["code"], site["backhaul_kind"]
        own = float(site["backhaul_capacity_mbps"])
        if site["status"] != "active":
            out[code] = SiteBackhaul(code, kind, False, 0.0, reason=f"site is {site['status']}")
            continue
        if kind != "fibre":
            out[code] = SiteBackhaul(code, kind, True, own)
            continue
        node = site.get("fibre_node_code")
        path = routes.get(node) if node else None
        if path is None:
            reason = (
                "no fibre node"
                if not node
                else f"fibre node {node} has no working route to a core node"
            )
            out[code] = SiteBackhaul(code, kind, False, 0.0, reason=reason)
            continue
        edges = [graph.edges[a, b] for a, b in itertools.pairwise(path)]
        bottleneck = min([own, *(e["capacity_mbps"] for e in edges)])
        out[code] = SiteBackhaul(
            code, kind, True, bottleneck, tuple(c for e in edges for c in e["codes"])
        )
    return out


def isolated_by_cut(graph: nx.Graph, link_code: str) -> set[str]:
    """Fibre nodes that lose every route to a core node when ``link_code`` is cut."""
    cores = core_nodes(graph)
    cut = graph.copy()
    cut.remove_edges_from(
        [
            (a, b)
            for a, b, codes in graph.edges(data="codes")
            if link_code in codes and len(codes) == 1
        ]
    )
    return _connected_to(graph, cores) - _connected_to(cut, cores)


def _connected_to(graph: nx.Graph, cores: list[str]) -> set[str]:
    return set().union(*(nx.node_connected_component(graph, c) for c in cores))


def single_points_of_failure(graph: nx.Graph) -> dict[str, set[str]]:
    """For every link whose cut isolates fibre nodes: the nodes it isolates, by link code.

    Only bridges of the graph can isolate anything, so only they are tested.
    """
    out = {}
    for a, b in nx.bridges(graph):
        for code in graph.edges[a, b]["codes"]:
            isolated = isolated_by_cut(graph, code)
            if isolated:
                out[code] = isolated
    return out
