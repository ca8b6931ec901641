"""Assemble a :class:`twin.district.District` from validated parameters and geometry.

The steps, in the order they draw from the district's one random generator: the road
network and the patrolled roads inside the boundary; regions (:mod:`.regions`); squads,
members and the roster (:mod:`.staff`, no draws); shops, cameras, sensors and venues
(:mod:`.assets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon

from scenarios.build.assets import place_cameras, place_sensors, place_shops, place_venues, with_entrances
from scenarios.build.ground import Ground
from scenarios.build.regions import regions_from_roads
from scenarios.build.staff import members_from_params, roster_from_params, squads_from_params
from scenarios.spec import ScenarioFile
from twin.catalog import Catalog
from twin.district import District, PolicySettings
from twin.errors import ValidationError
from twin.geo import LocalProjection, TravelSpeeds, road_network_from_features


def build_district(
    params: ScenarioFile,
    *,
    boundary_lonlat: Polygon,
    road_features: Sequence[dict[str, Any]],
    catalog: Catalog,
    sources: dict[str, str] | None = None,
    explicit_assets: dict[str, list[dict[str, Any]]] | None = None,
    notes: dict[str, Any] | None = None,
) -> District:
    """Assemble the district.

    Args:
        params: The validated ``scenario.toml``.
        boundary_lonlat: Study boundary, WGS84.
        road_features: GeoJSON road features (see :func:`twin.geo.road_network_from_features`).
        catalog: The validated catalog.
        sources: File names for error messages (``boundary``, ``roads``, ...).
        explicit_assets: Point features given in files, by kind (``cameras``, ``shops``,
            ``sensors``, ``venues``), replacing procedural placement of that kind.
        notes: Provenance and attribution to keep with the district.

    Raises:
        ValidationError: naming the field (and the file, where one is to blame) and the reason.
    """
    sources = sources or {}
    explicit = explicit_assets or {}
    rng = np.random.default_rng(np.random.SeedSequence(params.seed))
    ground = _ground(params, boundary_lonlat, road_features, rng=rng, roads_source=sources.get("roads"))
    network, responsible = ground.network, ground.responsible
    road_grid = ground.regions.grids_at(network.midpoints, tolerance_m=1.0)  # midpoints on a boundary street
    road_grid[~np.isin(np.arange(len(network)), responsible)] = -1
    ok = road_grid >= 0
    grid_len = np.bincount(road_grid[ok], weights=network.lengths_m[ok], minlength=len(ground.regions.grids))

    squads = squads_from_params(params, ground.regions)
    members = members_from_params(params, ground.regions, grid_len, snap=lambda xy: ground.snap(xy)[1],
                                  squads=squads)
    roster = roster_from_params(params, members)

    a = params.assets
    shops = place_shops(ground, a, rng, features=explicit.get("shops"), source=sources.get("shops"))
    cameras = place_cameras(ground, shops, a, rng, features=explicit.get("cameras"), source=sources.get("cameras"))
    sensors = place_sensors(ground, a, rng, features=explicit.get("sensors"), source=sources.get("sensors"))
    venues = place_venues(ground, shops, a, rng, features=explicit.get("venues"), source=sources.get("venues"))
    cameras = with_entrances(cameras, venues)

    return District(
        name=params.name, title=params.title or params.name, boundary=ground.boundary, roads=network,
        responsible=responsible, road_grid=road_grid, regions=ground.regions, squads=squads, roster=roster,
        catalog=catalog, cameras=cameras, shops=shops, sensors=sensors, venues=venues,
        population=params.population, stated_area_km2=params.stated_area_km2,
        policy=PolicySettings(max_reassign=params.policy.max_reassign,
                              return_to_post=params.policy.return_to_post),
        notes={**(notes or {}), "seed": params.seed},
    )


def _ground(params: ScenarioFile, boundary_lonlat: Polygon, road_features: Sequence[dict[str, Any]], *,
            rng: np.random.Generator, roads_source: str | None) -> Ground:
    """The road network in a local plane centred on the boundary, the patrolled roads inside
    the boundary, and the regions cut from them.

    Raises:
        ValidationError: no patrolled road inside the boundary, or regions that cannot be cut.
    """
    c = boundary_lonlat.centroid
    projection = LocalProjection(round(c.x, 6), round(c.y, 6))
    speeds = TravelSpeeds(params.travel.walk_speed_mps, params.travel.ebike_speed_mps,
                          params.travel.car_speed_factor)
    network = road_network_from_features(road_features, projection=projection, speeds=speeds, source=roads_source)
    boundary = projection.geometry_to_xy(boundary_lonlat)
    shapely.prepare(boundary)
    mids = network.midpoints
    inside = shapely.contains_xy(boundary, mids[:, 0], mids[:, 1])
    patrolled = np.fromiter((s.patrolled for s in network.segments), dtype=bool)
    responsible = np.flatnonzero(inside & patrolled)
    if len(responsible) == 0:
        raise ValidationError("geometry.roads", "no patrolled road lies inside the boundary", source=roads_source)
    regions = regions_from_roads(network, responsible, boundary, params.regions, rng=rng)
    return Ground(network, responsible, boundary, projection, regions)
