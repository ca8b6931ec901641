"""Grids, communities and areas cut from the patrolled roads (weighted k-means, Voronoi cells).

The district's patrolled road length is clustered into ``grids`` compact pieces
(length-weighted k-means on segment midpoints), and each grid is the Voronoi cell of its
centre, clipped to the boundary. Communities cluster grids and areas cluster communities, so
the three levels nest exactly. Ids read north-west first (``G001``, ``C01``, ``A1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import unary_union

from scenarios.spec import RegionParams
from twin.errors import ValidationError
from twin.geo import Region, RegionIndex, RoadNetwork


def kmeans(points: np.ndarray, k: int, *, weights: np.ndarray | None, rng: np.random.Generator,
           iterations: int = 40) -> np.ndarray:
    """Weighted k-means (k-means++ start for small k, Lloyd iterations); returns ``k`` centres.

    Args:
        points: ``(n, 2)`` coordinates, n ≥ k.
        k: Number of clusters.
        weights: Positive weight per point (``None``: equal).
        rng: The run's random generator.
        iterations: Lloyd iterations at most.
    """
    n = len(points)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if k <= 256:
        centres: np.ndarray = np.empty((k, 2))
        centres[0] = points[rng.choice(n, p=w / w.sum())]
        d2 = ((points - centres[0]) ** 2).sum(1)
        for i in range(1, k):
            p = w * d2
            total = p.sum()
            idx = rng.choice(n, p=p / total) if total > 0 else int(rng.integers(n))
            centres[i] = points[idx]
            d2 = np.minimum(d2, ((points - centres[i]) ** 2).sum(1))
    else:  # large k: a weighted sample without replacement is a good enough start
        centres = points[rng.choice(n, size=k, replace=False, p=w / w.sum())].copy()
    for _ in range(iterations):
        label = _assign(points, centres)
        wsum = np.bincount(label, weights=w, minlength=k)
        new = np.column_stack([np.bincount(label, weights=w * points[:, 0], minlength=k),
                               np.bincount(label, weights=w * points[:, 1], minlength=k)])
        empty = wsum == 0
        new[~empty] /= wsum[~empty, None]
        if empty.any():  # empty clusters restart at the points farthest from their centres
            far = np.argsort(-((points - centres[label]) ** 2).sum(1) * w)[: int(empty.sum())]
            new[empty] = points[far]
        if np.allclose(new, centres):
            break
        centres = new
    return centres


def _assign(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point."""
    return np.asarray(cKDTree(centres).query(points)[1], dtype=np.int64)


def _reading_order(xy: np.ndarray, cell_m: float = 500.0) -> np.ndarray:
    """Order points north-west first, in bands, so ids read like a map."""
    band = np.floor(-xy[:, 1] / cell_m)
    return np.lexsort((xy[:, 0], band))


def _voronoi_cells(centres: np.ndarray, boundary: Polygon) -> list[Polygon | MultiPolygon]:
    """Voronoi cells of ``centres`` clipped to ``boundary``, in the order of ``centres``."""
    cells = list(shapely.voronoi_polygons(shapely.multipoints(centres),
                                          extend_to=boundary.buffer(1000)).geoms)
    pts, cell_idx = shapely.STRtree(cells).query(shapely.points(centres), predicate="within")
    out: list[Any] = [Polygon()] * len(centres)
    clipped = shapely.intersection(np.asarray(cells, dtype=object)[cell_idx], boundary)
    for p, geom in zip(pts, clipped):
        out[int(p)] = geom
    return out


def regions_from_roads(network: RoadNetwork, responsible: np.ndarray, boundary: Polygon,
                       params: RegionParams, *, rng: np.random.Generator) -> RegionIndex:
    """Cut the district into nested grids, communities and areas.

    Args:
        network: The road network, local plane.
        responsible: Indices of the patrolled segments inside the boundary.
        boundary: The study boundary, local plane.
        params: How many grids, communities and areas (``[regions]``).
        rng: The district's random generator (k-means starts).

    Raises:
        ValidationError: fewer patrolled segments than grids, or a community or area left
            without grids.
    """
    mids = network.midpoints[responsible]
    lengths = network.lengths_m[responsible]
    n_grids, n_comm, n_areas = params.grids, params.communities, params.areas
    if len(responsible) < n_grids:
        raise ValidationError("regions.grids", f"{n_grids} grids need at least as many patrolled "
                              f"road segments inside the boundary; there are {len(responsible)}")
    centres = kmeans(mids, n_grids, weights=lengths, rng=rng)
    centres = centres[_reading_order(centres)]
    cells = _voronoi_cells(centres, boundary)
    grid_len = np.bincount(_assign(mids, centres), weights=lengths, minlength=n_grids)
    comm_centres = kmeans(centres, n_comm, weights=grid_len + 1.0, rng=rng)
    comm_centres = comm_centres[_reading_order(comm_centres)]
    grid_comm = _assign(centres, comm_centres)
    comm_len = np.bincount(grid_comm, weights=grid_len, minlength=n_comm)
    area_centres = kmeans(comm_centres, n_areas, weights=comm_len + 1.0, rng=rng)
    area_centres = area_centres[_reading_order(area_centres)]
    comm_area = _assign(comm_centres, area_centres)
    # A cluster left empty by the assignment would be a region without grids: reject early.
    for what, labels, n in (("communities", grid_comm, n_comm), ("areas", comm_area, n_areas)):
        if len(np.unique(labels)) != n:
            raise ValidationError(f"regions.{what}", f"cannot cut {n} {what} with at least one "
                                  "grid each from this boundary; use fewer")
    comm_cells: list[list[Any]] = [[] for _ in range(n_comm)]
    area_cells: list[list[Any]] = [[] for _ in range(n_areas)]
    for g in range(n_grids):
        comm_cells[grid_comm[g]].append(cells[g])
        area_cells[comm_area[grid_comm[g]]].append(cells[g])
    areas = [Region(f"A{j + 1}", "area", f"Area {j + 1} (片区{j + 1})", unary_union(area_cells[j]))
             for j in range(n_areas)]
    comms = [Region(f"C{j + 1:02d}", "community", f"Community {j + 1} (社区{j + 1})",
                    unary_union(comm_cells[j]), parent=f"A{comm_area[j] + 1}")
             for j in range(n_comm)]
    grids = [Region(f"G{g + 1:03d}", "grid", f"Grid {g + 1} (网格{g + 1})", cells[g],
                    parent=f"C{grid_comm[g] + 1:02d}") for g in range(n_grids)]
    return RegionIndex(grids, comms, areas)
