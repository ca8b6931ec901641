"""The ground things are placed on: the patrolled roads inside the boundary, and the grids.

Staff posts and assets are placed in the local plane and then tied to the street network:
a member's post is the nearer end of the nearest patrolled road, an asset belongs to the
road it stands beside and the grid it stands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import Polygon

from twin.geo import LocalProjection, RegionIndex, RoadNetwork


@dataclass(frozen=True)
class Ground:
    """The district's patrolled ground, for placing staff and assets.

    Args:
        network: The road network (routing margin included), local plane.
        responsible: Indices of the patrolled segments inside the boundary.
        boundary: The study boundary, local plane (prepared).
        projection: The local plane.
        regions: Grids, communities and areas.
    """

    network: RoadNetwork
    responsible: np.ndarray
    boundary: Polygon
    projection: LocalProjection
    regions: RegionIndex

    @cached_property
    def _tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.network.lines[self.responsible])

    def snap(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest patrolled segment of each point and that segment's nearer end node.

        Args:
            xy: ``(n, 2)`` points, metres in the local plane.

        Returns:
            ``(segment index, node index)``, each of length ``n``.
        """
        network = self.network
        pts = shapely.points(xy)
        seg = self.responsible[np.asarray(self._tree.nearest(pts), dtype=np.int64)]
        along = shapely.line_locate_point(network.lines[seg], pts)
        u = np.fromiter((network.segments[int(i)].u for i in seg), np.int64, len(seg))
        v = np.fromiter((network.segments[int(i)].v for i in seg), np.int64, len(seg))
        return seg, np.where(along <= network.lengths_m[seg] / 2, u, v)

    def grid_ids(self, xy: np.ndarray) -> list[str]:
        """The id of the grid each point stands in (50 m tolerance), ``""`` for none."""
        idx = self.regions.grids_at(xy, tolerance_m=50.0)
        return [self.regions.grids[int(i)].id if i >= 0 else "" for i in idx]
