"""Who notices an incident, and when: the ground truth between the street and the brain.

An incident is reported by the first of a camera whose view covers the spot (it sees it
with the camera's detection probability, after the scenario's dwell rule and the camera's
latency), a sensor watching it, a 110 referral, a citizen (with probability
``citizen_p``, after an exponential delay), or a patrol passing by (a Poisson passing rate:
members on duty in the area × their patrol share × patrol speed (walking by default) × the
chance of noticing, over the area's road length, plus any patrollers from outside the roster).
A camera's alert is screened by the command centre before it becomes an event. An incident that ends before anyone notices it goes
unreported. An incident with a demand ``key`` draws from its own substream (common random
numbers across compared worlds, whatever each world draws for other incidents).

The what-if engine and the live twin on a virtual clock (:mod:`actors.virtual`) discover
incidents with the same :class:`Discovery`, so both see the same reports for the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scenarios.model import Incident, ResponseParams
from scenarios.rng import Draws, child_seed
from twin.catalog import Source
from twin.district import District

#: Module-level aliases (an Enum class attribute costs ~0.1 us, ``.value`` ~0.3 us; this runs per incident).
_CAMERA, _SENSOR, _REFERRAL_110, _CITIZEN, _PATROL = (Source.CAMERA, Source.SENSOR, Source.REFERRAL_110,
                                                      Source.CITIZEN, Source.PATROL)
_V_CAMERA, _V_SENSOR, _V_REFERRAL_110, _V_CITIZEN, _V_PATROL = (s.value for s in (_CAMERA, _SENSOR, _REFERRAL_110,
                                                                                  _CITIZEN, _PATROL))

class Discovery:
    """Draws how and when incidents are discovered (see the module doc).

    Args:
        district: The district (its roster says who patrols when).
        params: Citizen, referral and patrol parameters.
        draws: The discovery stream.
        epoch: POSIX time of the run's second 0 (incident onsets count from it).
    """

    def __init__(self, district: District, params: ResponseParams, draws: Draws, epoch: float) -> None:
        self.district, self.p, self.r, self.epoch = district, params, draws, epoch
        self._root = draws.seed  # per-incident substreams hang from it
        self._cams = {c.id: c for c in district.cameras}
        self._specs = district.catalog.scenarios
        self._road_m = road_length_by_area(district)
        self._patrollers: dict[tuple[float, str], float] = {}  # (shift start, area) → patrol rate
        self._speed = params.patrol_speed_mps or district.roads.speeds.walk_mps
        total_road = sum(self._road_m.values())
        # Patrollers from outside the roster, spread over the district by road length: a spot is
        # passed at (patrollers × speed × notice / all road), whatever its area.
        self._background = (params.background_patrol * self._speed * params.patrol_notice_p / total_road
                            if params.background_patrol > 0 and total_road > 0 else 0.0)
        self.alerts = {"true": 0.0, "false": 0.0, "screen_h": 0.0, "false_dispatched": 0.0}
        self._shares: tuple[object, dict[str, list[tuple[str, float]]]] = (None, {})  # roster → area → shares

    def first(self, inc: Incident) -> tuple[float, str] | None:
        """``(seconds after the onset, source)`` of the incident's report, or ``None`` if
        nobody notices it before it ends."""
        spec = self._specs[inc.scenario]
        r = self.r if inc.key is None else self.substream(inc.key)
        best, how = math.inf, ""
        if _CAMERA in spec.sources and inc.cameras and spec.camera is not None:
            recall = self.p.camera_recall.get(inc.scenario)
            for cid in inc.cameras:
                cam = self._cams[cid]
                if r.random() < (cam.detect_p if recall is None else recall):
                    t = spec.camera.dwell_s + r.exponential(cam.latency_s) if cam.latency_s else spec.camera.dwell_s
                    if t < best:
                        best, how = t, _V_CAMERA
            if how and self.p.screen_s > 0:  # the command centre looks at the alert first
                best += r.exponential(self.p.screen_s)
        if inc.sensor and spec.sensor is not None:
            t = spec.sensor.threshold if spec.sensor.rule in ("no_activity", "offline") else 60.0
            if t < best:
                best, how = t, _V_SENSOR
        if inc.referral and _REFERRAL_110 in spec.sources:
            t = self.p.referral_s
            if t < best:
                best, how = t, _V_REFERRAL_110
        if _CITIZEN in spec.sources and r.random() < self.p.citizen_p:
            t = r.exponential(self.p.citizen_mean_s)
            if t < best:
                best, how = t, _V_CITIZEN
        if _PATROL in spec.sources:
            rate = self.patrol_rate(inc.location.area_id, inc.t_s)
            if rate > 0:
                t = r.exponential(1.0 / rate)
                if t < best:
                    best, how = t, _V_PATROL
        if best >= inc.duration_s or math.isinf(best):
            return None
        return best, how

    def count_alert(self, scenario: str) -> None:
        """Tally one true camera alert of ``scenario`` and the false ones that come with it
        (their expected number, by the rule's precision), and the screening they cost."""
        prec = self.p.camera_precision
        precision = prec.get(scenario, 1.0) if isinstance(prec, Mapping) else float(prec)
        for k, v in camera_alerts(1.0, precision, self.p.screen_s, self.p.screen_reject_p).items():
            self.alerts[k] += v

    def substream(self, key: tuple[int, ...]) -> Draws:
        """The discovery draws of the incident with this demand ``key``: the same in every
        world that shares the run's seed, whatever else was drawn before."""
        return Draws(child_seed(self._root, *key), block=8)

    def _area_shares(self, area: str) -> list[tuple[str, float]]:
        """``(member id, patrol share)`` of the area's members, in roster order."""
        roster = self.district.roster
        of, by_area = self._shares
        if of is not roster:
            by_area = {}
            for m in roster.members:
                by_area.setdefault(m.area_id, []).append((m.id, self.p.patrol_share.get(m.role, 0.0)))
            self._shares = (roster, by_area)
        return by_area.get(area, [])

    def patrol_rate(self, area: str, at_s: float) -> float:
        """Rate (per second) at which some patrol passes a given spot of ``area`` at ``at_s``
        (seconds of the run)."""
        roster = self.district.roster
        now = self.epoch + at_s
        key = (roster.duty_window(now)[0], area)
        rate = self._patrollers.get(key)
        if rate is None:  # patrol manpower on duty in the area (members × their patrol share)
            duty = roster.on_duty_ids(now)
            n = sum(share for mid, share in self._area_shares(area) if mid in duty)
            road = self._road_m.get(area, 0.0)
            # Patrols walk their streets; a spot is passed at rate (walkers × speed / road length).
            rate = self._background + (0.0 if n == 0 or road <= 0 else (
                n * self.p.patrol_effort * self._speed * self.p.patrol_notice_p / road))
            self._patrollers[key] = rate
        return rate


def camera_alerts(true: float, precision: float, screen_s: float, reject_p: float) -> dict[str, float]:
    """What ``true`` camera alerts come with at a rule's ``precision``: the false alerts (their
    expected number, ``true × (1 − precision) / precision``), the command centre's hours screening
    all of them (``screen_s`` each), and the false ones it passes on as events (``1 − reject_p``)."""
    false = true * (1.0 - precision) / precision if precision > 0 else 0.0
    return {"true": true, "false": false, "screen_h": (true + false) * screen_s / 3600.0,
            "false_dispatched": false * (1.0 - reject_p)}


def road_length_by_area(district: District) -> dict[str, float]:
    """Metres of responsible road in each area."""
    d = district
    out: dict[str, float] = {}
    for i in d.responsible:
        g = d.road_grid[int(i)]
        if g >= 0:
            area = d.regions.area_of(d.regions.grids[int(g)].id)
            out[area] = out.get(area, 0.0) + d.roads.segments[int(i)].length_m
    return out
