"""Turn a validated scenario (parameters + geometry) into a :class:`twin.district.District`.

Everything the case study leaves open is placed *procedurally but seeded*: the same file
and seed give the same district, bit for bit. The rules, each documented in the xiaohe
README, by module:

- :mod:`.regions` — **grids** (网格): the district's patrolled road length is clustered into
  ``grids`` compact pieces (length-weighted k-means on segment midpoints), and each grid is
  the Voronoi cell of its centre, clipped to the boundary. **Communities** cluster grids,
  **areas** (片区) cluster communities, so the three nest exactly.
- :mod:`.staff` — two grid workers per grid (alternating day/evening slots), grid leaders and
  instructors over contiguous runs of grids, brigade and enforcement members spread over
  areas in proportion to road length, each area with its own squad; the roster.
- :mod:`.assets` — **shops** along commercial streets, denser near hotspots (the historic
  block); **cameras** at busy junctions and along shop streets; **sensors** in residential
  blocks; **venues** near shop streets.
- :mod:`.ground` — snapping points to the patrolled roads and naming their grid.
- :mod:`.district` — :func:`build_district`, which composes them.
"""

from scenarios.build.district import build_district

__all__ = ["build_district"]
