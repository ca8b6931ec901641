"""Staff: squads, members and their posts, and the roster.

- **Grid workers** go round-robin over the grids, longest road first when the count does not
  divide (two per grid in xiaohe, alternating day and evening slots).
- **Grid leaders and instructors** take contiguous runs of grids, community by community.
- **Brigade (co-governance) and enforcement** members are spread over the areas in
  proportion to road length, at least one per shift per area where the count allows, or by
  an explicit ``per_area`` table; their posts spread over the area's grids.

Each member's post is the patrolled-road node nearest a point of their grid (or a grid of
their area). Nothing here draws random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import shapely

from scenarios.spec import RotationParams, ScenarioFile
from twin.errors import ValidationError
from twin.geo import Region, RegionIndex, TravelMode
from twin.rota import Availability, Post, Rotation, parse_week_days
from twin.staff import Member, Role, Roster, Shift, ShiftPlan, Squad

ID_PREFIX = {Role.GRID_LEADER: "GL", Role.GRID_WORKER: "GW", Role.GRID_INSTRUCTOR: "GI",
             Role.CO_GOVERNANCE: "CG", Role.ENFORCEMENT: "EN"}

#: A member before their post is snapped: role, number within the role, area, grids, shift
#: slot, and the point of the local plane their post is nearest to.
_Pending = tuple[Role, int, str, tuple[str, ...], int, tuple[float, float]]


def squads_from_params(params: ScenarioFile, regions: RegionIndex) -> tuple[Squad, ...]:
    """The road squads: ``[[squads]]`` as given, or one per area when none are.

    Raises:
        ValidationError: a squad names an unknown area, or an area has no squad.
    """
    area_ids = [a.id for a in regions.areas]
    if not params.squads:
        return tuple(Squad(f"SQ-{a}", f"Squad of {a}", (a,)) for a in area_ids)
    squads = []
    for sq in params.squads:
        for a in sq.areas:
            if a not in area_ids:
                raise ValidationError(f"squads[{sq.id}].areas", f"unknown area '{a}'; the district's "
                                      f"areas are {', '.join(area_ids)}")
        squads.append(Squad(sq.id, sq.name or sq.id, tuple(sq.areas)))
    covered = {a for s in squads for a in s.area_ids}
    missing = [a for a in area_ids if a not in covered]
    if missing:
        raise ValidationError("squads", f"the roads of area{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)} are covered by no squad; every road needs a "
                              "responsible squad")
    return tuple(squads)


def members_from_params(params: ScenarioFile, regions: RegionIndex, grid_len: np.ndarray, *,
                        snap: Callable[[np.ndarray], np.ndarray], squads: Sequence[Squad]) -> list[Member]:
    """Every member of ``[staff]``, posted, in a fixed order (role by role, then by number).

    Args:
        params: The validated ``scenario.toml``.
        regions: Grids, communities and areas.
        grid_len: Patrolled road length of each grid, metres.
        snap: The post node nearest each of ``(n, 2)`` points.
        squads: The road squads (a member's squad is their area's).

    Raises:
        ValidationError: too few members of a role to cover its grids or areas, or a
            ``per_area`` table naming an unknown area.
    """
    grid_xy = _grid_points(regions)
    pending = [*_grid_workers(params, regions, grid_len, grid_xy), *_grid_cadres(params, regions, grid_xy),
               *_area_teams(params, regions, grid_len, grid_xy)]
    squad_of = {a: s.id for s in squads for a in s.area_ids}
    posts = snap(np.array([p[5] for p in pending], dtype=np.float64).reshape(-1, 2))
    own = _own_rotations(params)
    return [Member(id=f"{ID_PREFIX[role]}{k:03d}", name=f"{role.value.replace('_', ' ').title()} {k}",
                   role=role, area_id=area, squad_id=squad_of.get(area, ""), grid_ids=gids,
                   shift_slot=slot, post_node=int(node), travel_mode=TravelMode(params.staff[role].travel),
                   rotation=own.get((role, k), ""))
            for (role, k, area, gids, slot, _), node in zip(pending, posts)]


def _own_rotations(params: ScenarioFile) -> dict[tuple[Role, int], str]:
    """The rotation each member numbered by ``staff.<role>.patterns`` works, by (role, number)."""
    out = {}
    for role, spec in params.staff.items():
        k = 0
        for pat in spec.patterns or ():
            for _ in range(pat.people):
                k += 1
                out[(role, k)] = pat.rotation
    return out


def roster_from_params(params: ScenarioFile, members: Sequence[Member]) -> Roster:
    """The roster: ``[[shifts]]``, each role's rotation (or shifts and ``rotation_days``),
    handover, shrinkage, meal breaks and fixed posts."""
    plan = ShiftPlan(Shift(s.code, s.seconds("start"), s.seconds("end")) for s in params.shifts)
    rotations = rotations_from_params(params, plan)
    r = params.roster
    lo, hi = (int(t.split(":")[0]) * 3600 + int(t.split(":")[1]) * 60 for t in r.meal_break_window)
    availability = Availability(
        shrinkage=r.shrinkage, spell_days=r.absence_spell_days, seed=params.seed, meal_break_s=r.meal_break_min * 60,
        break_window=(lo, hi),
        posts=tuple(Post(p.name, p.role.value, p.per_area, p.seconds(), parse_week_days(p.days, f"posts.{p.name}.days"))
                    for p in params.posts))
    return Roster(members, plan, {role: tuple(sp.shifts) for role, sp in params.staff.items() if sp.shifts},
                  timezone_name=params.timezone, rotation_days=r.rotation_days, handover_s=r.handover_s,
                  rotations={role: rotations[sp.rotation] for role, sp in params.staff.items() if sp.rotation},
                  availability=availability, named=rotations, call_in_s=r.call_in_min * 60)


def rotations_from_params(params: ScenarioFile, plan: ShiftPlan) -> dict[str, Rotation]:
    """Each ``[rotations.<name>]`` as a :class:`twin.rota.Rotation`."""
    out = {}
    for name, rp in params.rotations.items():
        if rp.kind == "continuous":
            out[name] = Rotation.continuous(name, rp.shifts or tuple(s.code for s in plan), days_on=rp.days_on,
                                            days_off=rp.days_off)
        elif rp.kind == "weekly":
            out[name] = Rotation.weekly(name, rp.week, teams=rp.teams)
        else:
            out[name] = Rotation(name, tuple(tuple(d or None for d in c) for c in rp.cycles))
        if rp.on_call:
            out[name] = replace(out[name], on_call=True)
    return out


def _teams(params: ScenarioFile, role: Role) -> int:
    """How many teams (or shift slots) a role's members are spread over."""
    spec = params.staff[role]
    if spec.rotation is None:
        return len(spec.shifts)
    return _team_count(params.rotations[spec.rotation], params)


def _team_count(rp: RotationParams, params: ScenarioFile) -> int:
    """The teams of a ``[rotations.<name>]``."""
    if rp.kind == "continuous":
        n = len(rp.shifts or params.shifts)
        return max(1, (n * rp.days_on + rp.days_off) // rp.days_on)
    return rp.teams if rp.kind == "weekly" else len(rp.cycles)


def _grid_points(regions: RegionIndex) -> dict[str, tuple[float, float]]:
    """A point inside each grid (where posts in that grid are snapped from)."""
    grids = regions.grids
    rep = shapely.get_coordinates(shapely.point_on_surface(np.array([g.polygon for g in grids], dtype=object)))
    return {g.id: (float(x), float(y)) for g, (x, y) in zip(grids, rep)}


def _grid_workers(params: ScenarioFile, regions: RegionIndex, grid_len: np.ndarray,
                  grid_xy: dict[str, tuple[float, float]]) -> Iterator[_Pending]:
    """Grid workers round-robin over the grids, longest road first; the n-th in a grid takes slot n."""
    if Role.GRID_WORKER not in params.staff:
        return
    grids = regions.grids
    count = params.staff[Role.GRID_WORKER].count
    if count < len(grids):
        raise ValidationError("staff.grid_worker.count", f"{count} grid workers cannot cover "
                              f"{len(grids)} grids: at least one per grid is needed")
    order = np.argsort(-grid_len, kind="stable")
    per_grid: dict[int, int] = {}
    for k in range(count):
        g = int(order[k % len(grids)])
        slot = per_grid.get(g, 0)
        per_grid[g] = slot + 1
        gr = grids[g]
        # With a rotation, teams go round the grids in turn, so that a grid's workers are in
        # different teams.
        team = k if params.staff[Role.GRID_WORKER].rotation else slot
        yield Role.GRID_WORKER, k + 1, regions.area_of(gr.id), (gr.id,), team, grid_xy[gr.id]


def _grid_cadres(params: ScenarioFile, regions: RegionIndex,
                 grid_xy: dict[str, tuple[float, float]]) -> Iterator[_Pending]:
    """Grid leaders, then instructors, over contiguous runs of grids (numbered community by community)."""
    grids = regions.grids
    by_comm = sorted(range(len(grids)), key=lambda g: (grids[g].parent or "", g))
    for role in (Role.GRID_LEADER, Role.GRID_INSTRUCTOR):
        if role not in params.staff or params.staff[role].count == 0:
            continue
        count = params.staff[role].count
        chunks = np.array_split(np.array(by_comm), count)
        for k, chunk in enumerate(chunks):
            if len(chunk) == 0:
                chunk = np.array([by_comm[k % len(by_comm)]])
            gr = grids[int(chunk[0])]
            yield role, k + 1, regions.area_of(gr.id), tuple(grids[int(g)].id for g in chunk), k, grid_xy[gr.id]


def _area_teams(params: ScenarioFile, regions: RegionIndex, grid_len: np.ndarray,
                grid_xy: dict[str, tuple[float, float]]) -> Iterator[_Pending]:
    """Brigade, then enforcement: by the ``per_area`` table, or in proportion to road length."""
    areas = regions.areas
    area_pos = {a.id: j for j, a in enumerate(areas)}
    area_len = np.zeros(len(areas))
    grids_of_area: list[list[Region]] = [[] for _ in areas]
    for g, gr in enumerate(regions.grids):
        j = area_pos[regions.area_of(gr.id)]
        area_len[j] += grid_len[g]
        grids_of_area[j].append(gr)
    for role in (Role.CO_GOVERNANCE, Role.ENFORCEMENT):
        if role not in params.staff or params.staff[role].count == 0:
            continue
        if params.staff[role].patterns is not None:
            yield from _area_team_by_patterns(params, role, areas, grids_of_area, grid_xy)
        elif params.staff[role].per_area is not None:
            yield from _area_team_by_table(params, role, areas, grids_of_area, grid_xy)
        else:
            yield from _area_team_by_road(params, role, areas, area_len, grids_of_area, grid_xy)


def _area_team_by_table(params: ScenarioFile, role: Role, areas: Sequence[Region],
                        grids_of_area: list[list[Region]],
                        grid_xy: dict[str, tuple[float, float]]) -> Iterator[_Pending]:
    """An explicit head count per area and shift (``[staff.<role>] per_area``)."""
    spec = params.staff[role]
    per_area = spec.per_area or {}
    area_pos = {a.id: j for j, a in enumerate(areas)}
    unknown = [a for a in per_area if a not in area_pos]
    if unknown:
        raise ValidationError(f"staff.{role.value}.per_area", f"unknown area(s) {unknown}; the "
                              f"district's areas are {', '.join(area_pos)}")
    k = 0
    for area in areas:
        area_grids = grids_of_area[area_pos[area.id]]
        shifts = per_area.get(area.id) or {}
        for s, (code, n) in enumerate(shifts.items()):
            for j in range(n):
                k += 1
                post = _spread(area_grids, j, s, len(shifts), n)
                yield role, k, area.id, (), spec.shifts.index(code), grid_xy[post.id]


def _spread(grids: Sequence[Region], nth: int, team: int, teams: int, size: int) -> Region:
    """The post of a team's (or a shift's) ``nth`` member of ``size``: each team's members
    spread evenly over the area's grids, the teams offset from one another, so that whoever
    is on duty covers the whole area."""
    return grids[int((nth + team / teams) * len(grids) / max(size, 1)) % len(grids)]


def _area_team_by_patterns(params: ScenarioFile, role: Role, areas: Sequence[Region],
                           grids_of_area: list[list[Region]],
                           grid_xy: dict[str, tuple[float, float]]) -> Iterator[_Pending]:
    """Members by ``[staff.<role>] patterns``: in each pattern's area, numbered in order; a
    member's slot is their team in the pattern's rotation (one per team in turn)."""
    spec = params.staff[role]
    area_pos = {a.id: j for j, a in enumerate(areas)}
    rotations = {name: _team_count(rp, params) for name, rp in params.rotations.items()}
    k = 0
    for n, pat in enumerate(spec.patterns or ()):
        if pat.area not in area_pos:
            raise ValidationError(f"staff.{role.value}.patterns[{n}].area", f"unknown area '{pat.area}'; the "
                                  f"district's areas are {', '.join(area_pos)}")
        area_grids = grids_of_area[area_pos[pat.area]]
        teams = rotations[pat.rotation]
        size = math.ceil(pat.people / teams)
        for slot in range(pat.people):
            k += 1
            # Each team's members spread evenly over the area's grids (the teams offset from
            # one another): whoever is on duty covers the whole area.
            post = _spread(area_grids, slot // teams, slot % teams, teams, size)
            yield role, k, pat.area, (), slot, grid_xy[post.id]


def _area_team_by_road(params: ScenarioFile, role: Role, areas: Sequence[Region], area_len: np.ndarray,
                       grids_of_area: list[list[Region]],
                       grid_xy: dict[str, tuple[float, float]]) -> Iterator[_Pending]:
    """``count`` members spread over the areas in proportion to road length, at least one
    per shift per area where the count allows; slots round-robin within each area."""
    spec = params.staff[role]
    count = spec.count
    if count < len(areas):
        raise ValidationError(f"staff.{role.value}.count", f"{count} members cannot serve "
                              f"{len(areas)} areas: at least one per area is needed")
    per_area = _largest_remainder(count, area_len + 1.0, minimum=min(_teams(params, role), count // len(areas)))
    k = 0
    for j, area in enumerate(areas):
        area_grids = grids_of_area[j]
        teams = _teams(params, role)
        size = math.ceil(int(per_area[j]) / teams)
        seen: dict[int, int] = {}
        for i in range(int(per_area[j])):
            k += 1
            # Slots round-robin within the area; a rotation's teams continue from area to
            # area, so that they come out the same size.
            slot = k - 1 if spec.rotation else i
            team = slot % teams  # a rotation's team, or a shift
            nth = seen[team] = seen.get(team, -1) + 1
            post = _spread(area_grids, nth, team, teams, size)
            yield role, k, area.id, (), slot, grid_xy[post.id]


def _largest_remainder(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights``, each at least ``minimum``."""
    n = len(weights)
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - base.sum()
    if rest <= 0:
        return base
    share = weights / weights.sum() * rest
    extra = np.floor(share).astype(np.int64)
    left = int(rest - extra.sum())
    order = np.argsort(-(share - extra), kind="stable")
    extra[order[:left]] += 1
    out: np.ndarray = base + extra
    return out
