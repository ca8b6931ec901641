"""Road units: the road is the smallest unit of responsibility (every road has its squad).

:class:`RoadUnits` holds a shard of roads (those of some areas) and follows the brain's log:
for each road, the events open on it now, what was reported on it lately, and repeat alarms
(the same scenario on the same road again within a week — the case study counts them: −12 %
year on year). Its answer for a road names the squad that answers for it and who of that
squad is on duty now: the road board a dispatcher or a road chief looks at.

A plain class driven by ``step(now)`` like the patrol teams (:mod:`actors.feed`); the host
runs it in-process or as a Ray actor per group of areas (:mod:`actors.host`). It talks to
the brain only through a client's blocking calls (``client.sync``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from actors.client import BrainClient
from twin.district import District
from twin.errors import NotFound
from twin.workflow import TERMINAL

DAY_S = 86_400.0
#: Log records read per call to the brain.
FOLLOW_BATCH = 5000
#: The event no longer occupies its road.
_CLOSED = frozenset(s.value for s in TERMINAL)


class _Road:
    __slots__ = ("last_by_scenario", "open", "recent", "repeat_ids", "repeats", "reports")

    def __init__(self) -> None:
        self.open: dict[str, str] = {}                 # event id -> scenario, events open on the road
        self.recent: deque[tuple[float, str]] = deque()  # (reported at, event id), the last day
        self.reports = 0
        self.repeats = 0
        self.repeat_ids: set[str] = set()
        self.last_by_scenario: dict[str, float] = {}


class RoadUnits:
    """The road units of some areas (default: every patrolled road of the district).

    Args:
        district: The district.
        client: The brain (its log is followed through ``changes``).
        areas: Area ids whose roads this shard holds (default: all).
        repeat_window_s: A report of a scenario already reported on the same road within
            this many seconds counts as a repeat alarm.
    """

    def __init__(self, district: District, client: BrainClient, areas: Iterable[str] | None = None, *,
                 repeat_window_s: float = 7 * DAY_S, catch_up: bool = False) -> None:
        self.district, self.client = district, client
        road_areas = district.road_areas()
        self.areas = frozenset(areas) if areas is not None else frozenset(road_areas.values())
        self.area_of = {r: a for r, a in road_areas.items() if a in self.areas}
        self.roads: dict[str, _Road] = {}
        self.road_of: dict[str, str] = {}  # event id -> road id (events of this shard's roads)
        self.repeat_window_s = repeat_window_s
        self.seq = 0
        self.now = 0.0
        self.catch_up = catch_up  # read the log before every answer (no loop of its own)

    # --- following the log ---------------------------------------------------------------------------
    def step(self, now: float | None = None) -> int:
        """Read the brain's new log records (``now``: the twin's time, else asked of the brain);
        returns how many were read."""
        self.now = float(self.client.sync.now()) if now is None else now
        n = 0
        while True:
            batch = self.client.sync.road_changes(self.seq, FOLLOW_BATCH)
            self.absorb(batch)
            n += len(batch)
            if len(batch) < FOLLOW_BATCH:
                return n

    def absorb(self, changes: Sequence[Sequence[Any]]) -> None:
        """Take in the brain's ``road_changes`` (oldest first): ``(log seq, event id, action,
        to state, at, road id, scenario)``."""
        for seq, eid, action, to_state, at, road_id, scenario in changes:
            self.seq = max(self.seq, int(seq))
            if action == "report":
                if road_id not in self.area_of:
                    continue  # another shard's road
                self._reported(str(road_id), eid, str(scenario), float(at))
            road_id = self.road_of.get(eid)
            if road_id is None:
                continue
            road = self.roads[road_id]
            if to_state in _CLOSED:
                was_open = road.open.pop(eid, None)
                if to_state == "merged" and was_open is not None:  # a duplicate: not a report of its own
                    road.reports -= 1
                    road.recent = deque(r for r in road.recent if r[1] != eid)
                    if eid in road.repeat_ids:
                        road.repeats -= 1
                road.repeat_ids.discard(eid)
            elif eid not in road.open and action == "reopen":
                road.open[eid] = str(scenario or "")

    def _reported(self, road_id: str, eid: str, scenario: str, at: float) -> None:
        road = self.roads.get(road_id)
        if road is None:
            road = self.roads[road_id] = _Road()
        self.road_of[eid] = road_id
        road.open[eid] = scenario
        road.reports += 1
        road.recent.append((at, eid))
        last = road.last_by_scenario.get(scenario)
        if last is not None and at - last <= self.repeat_window_s:
            road.repeats += 1
            road.repeat_ids.add(eid)
        road.last_by_scenario[scenario] = at

    # --- answers -------------------------------------------------------------------------------------
    def road(self, road_id: str) -> dict[str, Any]:
        """One road unit: its street, squad and who of it is on duty, what is open on it, what
        was reported on it in the last day, and its repeat alarms.

        Raises:
            NotFound: the road is not one of this shard's patrolled roads.
        """
        if road_id not in self.area_of:
            raise NotFound("road", road_id)
        if self.catch_up:
            self.step()
        return self._view(road_id)

    def _view(self, road_id: str) -> dict[str, Any]:
        area = self.area_of[road_id]
        seg = self.district.roads.segment(road_id)
        squad = self.district.squad_for_area(area)
        duty = self.district.roster.on_duty_ids(self.now) if self.now else frozenset()
        road = self.roads.get(road_id) or _Road()
        while road.recent and road.recent[0][0] < self.now - DAY_S:
            road.recent.popleft()
        return {
            "road_id": road_id, "name": seg.name, "road_class": seg.road_class, "length_m": round(seg.length_m, 1),
            "area_id": area, "squad_id": squad.id, "squad_name": squad.name,
            "on_duty": sorted(m.id for m in self.district.roster.members if m.squad_id == squad.id and m.id in duty),
            "open_events": sorted(road.open), "reports_last_24h": len(road.recent), "reports": road.reports,
            "repeat_alarms": road.repeats,
        }

    def hot(self, limit: int = 20, area_id: str | None = None) -> list[dict[str, Any]]:
        """The roads with the most open events (then the most reports in the last day)."""
        if self.catch_up:
            self.step()
        keys = []
        for road_id, road in self.roads.items():
            if area_id is not None and self.area_of[road_id] != area_id:
                continue
            while road.recent and road.recent[0][0] < self.now - DAY_S:
                road.recent.popleft()
            if road.open or road.recent:
                keys.append((-len(road.open), -len(road.recent), road_id))
        return [self._view(r) for _, _, r in sorted(keys)[:limit]]
