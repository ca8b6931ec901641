"""Maps of simulation results: a what-if's events per grid and the share of them that met
their targets, over the district's own base map (:mod:`viz.layers`)."""

from __future__ import annotations

from typing import Any

import pydeck as pdk

from twin.district import District
from twin.staff import DAY_S
from viz.deck import district_deck
from viz.layers import areas_layer, boundary_layer, cameras_layer, grids_layer, roads_layer


def grid_figures(events: Any, *, replications: int, warmup_days: float = 0.0) -> dict[str, dict[str, float]]:
    """Per grid, from the simulator's event rows (``SimulationResult.to_pandas()``): events per
    replication, and the share of the closed ones handled within their scenario's own targets."""
    df = events[events["reported_s"] >= warmup_days * DAY_S]
    n = max(int(replications), 1)
    per_grid = df.groupby("grid_id").size() / n
    closed = df[df["outcome"] == "closed"]
    share = closed.groupby("grid_id")["within_targets"].mean()
    return {str(g): {"events": round(float(v), 2), **({"within_targets": float(share[g])} if g in share.index else {})}
            for g, v in per_grid.items()}


def simulation_deck(result: Any, district: District) -> pdk.Deck:
    """A simulation's map: the district (boundary, areas, roads by squad, camera views) under its
    grids coloured by the share of closed events within their targets (red low, green high;
    grey: none), each grid's events per replication in its tooltip."""
    figures = grid_figures(result.to_pandas(), replications=len(result.runs), warmup_days=result.warmup_days)
    shares = {g: f.get("within_targets") for g, f in figures.items()}
    grids = grids_layer(district, shares, label="within_targets", lo=0.0, hi=1.0)
    for row in grids.data:
        row["events"] = figures.get(row["id"], {}).get("events", 0.0)
    return district_deck(district, [boundary_layer(district), grids, areas_layer(district), roads_layer(district),
                                    cameras_layer(district)],
                         tooltip={"html": "{id} {name}: {events} events per replication, {within_targets} within "
                                          "targets",
                                  "style": {"fontSize": "12px", "backgroundColor": "#263238", "color": "white"}})


__all__ = ["grid_figures", "simulation_deck"]
