"""Demand: a Mesa agent model of what creates street events.

Agents (Mesa 3.3 API) stand for the people and places behind the catalog's scenarios:

- :class:`Merchant` — a street-front shop; spills goods onto the pavement, trades without
  a licence, ... Each has a *propensity* (heavy-tailed: a few repeat offenders cause much
  of the trouble) and a *compliance* that sets how likely a reminder makes them
  self-correct. Being caught lowers their propensity for a while; getting away with it
  raises it.
- :class:`StreetSpot` — a patrolled road segment: illegal parking, stalls, litter, traffic.
  Busier streets (higher class, more shops) attract more.
- :class:`ResidentBlock` — a grid's housing: disputes, rented-room risks, e-bike charging,
  floating population.
- :class:`ElderlyResident` — an elderly person living alone; some homes have a door or
  water-meter sensor (the scenario's ``[assets] sensors``), the rest are found by visits,
  neighbours or patrols.
- :class:`Venue` — a rented room where health-product sales meetings target the elderly.

Each day the model draws, per scenario, a Poisson number of incidents at the catalog's
``rate_per_day`` × day-of-week factor, spreads them over the day by the category's hourly
profile, and picks the agents that cause them in proportion to their propensity; the
scenario's ``cause`` in the catalog says which kind of agent that is (``street`` unless it
says otherwise; a kind the district has none of falls back to ``street``). The
response engine reports back what happened (``feedback``), which changes the agents.
Rates come from the scenario's catalog; the profiles below are documented defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np
import shapely

from scenarios.model import Incident
from twin.catalog import Source
from twin.district import District
from twin.geo import Location
from twin.staff import DAY_S

#: Relative incident intensity by hour of day (0-23), per category; each sums to 24 after
#: normalisation. Assumptions: shop spill-over and stalls peak late morning and evening;
#: market issues in business hours; traffic at the rush hours with night parking;
#: public security in the evening and night; public services in the morning.
HOURLY = {
    "city_management": [2, 1, 1, 1, 1, 2, 4, 7, 9, 11, 12, 12, 10, 9, 9, 10, 11, 12, 12, 11, 9, 6, 4, 3],
    "market_supervision": [1, 1, 1, 1, 1, 1, 2, 4, 8, 12, 13, 12, 9, 10, 12, 12, 10, 8, 6, 4, 3, 2, 1, 1],
    "traffic": [4, 3, 3, 3, 3, 4, 6, 11, 13, 10, 8, 8, 9, 8, 8, 9, 11, 13, 12, 10, 8, 7, 6, 5],
    "public_security": [6, 5, 4, 3, 3, 3, 4, 5, 6, 6, 7, 7, 7, 7, 7, 8, 8, 9, 10, 11, 11, 10, 9, 8],
    "public_services": [2, 1, 1, 1, 2, 4, 8, 11, 12, 11, 10, 9, 8, 8, 8, 8, 8, 7, 6, 5, 4, 3, 2, 2],
}
#: Day-of-week factors (Monday first).
WEEKLY = {
    "city_management": [0.95, 0.95, 0.95, 0.95, 1.0, 1.1, 1.1],
    "market_supervision": [1.05, 1.05, 1.05, 1.05, 1.05, 0.9, 0.85],
    "traffic": [1.0, 1.0, 1.0, 1.0, 1.05, 0.95, 1.0],
    "public_security": [0.95, 0.95, 0.95, 0.95, 1.05, 1.1, 1.05],
    "public_services": [1.0] * 7,
}
#: Mean duration (minutes) of an incident left alone, per agent kind (lognormal, cv 1);
#: ``inf``: it lasts until someone handles it.
PERSISTENCE_MIN = {"merchant": 180.0, "street": 60.0, "block": math.inf, "elderly": math.inf, "venue": 120.0}
#: The lognormal persistence's parameters per kind (mean ``PERSISTENCE_MIN``, cv 1), worked out once.
_PERSISTENCE_MU = {k: math.log(m * 60.0) - 0.5 * math.log(2) if m != math.inf else math.inf
                   for k, m in PERSISTENCE_MIN.items()}
_PERSISTENCE_SIGMA = math.sqrt(math.log(2))
_REFERRAL_110 = Source.REFERRAL_110
_ONLY_110 = (Source.REFERRAL_110,)
_FLAT_WEEK = [1.0] * 7


@dataclass(frozen=True)
class DemandParams:
    """Parameters of the demand model.

    Args:
        rate_factor: Multiplies every catalog rate (what-if: more or less trouble).
        elderly_alone: Elderly residents living alone in the catalog's reference district
            (a district of another size has them in proportion to its residents; a sensor
            sits at ``[assets] sensors`` of them).
        propensity_sigma: Log-sd of agents' propensity (heterogeneity; repeat offenders).
        learn_handled: Propensity factor after a case is handled on site.
        learn_corrected: Propensity factor after self-correcting on a reminder.
        embolden: Propensity factor after an incident nobody noticed.
        relax_per_day: Daily pull of propensity back to the agent's baseline (0-1).
        referral_share: Share of incidents of scenarios with a 110 source that arrive as
            110 referrals (1 for scenarios whose only source is 110).
    """

    rate_factor: float = 1.0
    elderly_alone: int = 1600
    propensity_sigma: float = 1.0
    learn_handled: float = 0.7
    learn_corrected: float = 0.85
    embolden: float = 1.1
    relax_per_day: float = 0.03
    referral_share: float = 0.3


class _Placed(mesa.Agent):  # type: ignore[misc]
    """An agent at a fixed place with a propensity to cause incidents.

    The propensity lives in its pool's arrays (one vector update a day for all agents of
    a kind); the agent reads and writes its own entry.
    """

    kind = "street"

    def __init__(self, model: DemandModel, uid: str, x: float, y: float, weight: float) -> None:
        super().__init__(model)
        self.uid = uid
        self.x, self.y = x, y
        self.base = weight * float(model.rng.lognormal(-model.params.propensity_sigma ** 2 / 2,
                                                       model.params.propensity_sigma))
        self.compliance = float(model.rng.beta(4.0, 2.0)) * 1.5  # mean 1.0
        self.incidents = 0
        self._pool: _Pool | None = None
        self._i = 0

    @property
    def propensity(self) -> float:
        """Current propensity (relative rate of causing incidents)."""
        return float(self._pool.prop[self._i]) if self._pool is not None else self.base

    def outcome(self, what: str) -> None:
        """React to what became of an incident this agent caused: caught, less; unseen, more."""
        p = self.model.params
        factor = {"handled": p.learn_handled, "self_corrected": p.learn_corrected,
                  "undiscovered": p.embolden, "abandoned": p.embolden}.get(what, 1.0)
        if self._pool is not None:
            self._pool.prop[self._i] = min(max(self.propensity * factor, 0.2 * self.base), 5.0 * self.base)


class Merchant(_Placed):
    """A street-front shop."""

    kind = "merchant"


class StreetSpot(_Placed):
    """A patrolled road segment (parking, stalls, litter, traffic)."""

    kind = "street"


class ResidentBlock(_Placed):
    """The housing of one grid."""

    kind = "block"


class ElderlyResident(_Placed):
    """An elderly person living alone, with or without a home sensor."""

    kind = "elderly"

    def __init__(self, model: DemandModel, uid: str, x: float, y: float, weight: float, sensor: bool) -> None:
        super().__init__(model, uid, x, y, weight)
        self.sensor = sensor


class Venue(_Placed):
    """A room where health-product sales meetings gather."""

    kind = "venue"


@dataclass
class _Pool:
    """The agents of one kind, their places and their propensities as arrays."""

    agents: list[_Placed]
    xy: np.ndarray
    locations: list[Location | None] = field(default_factory=list)
    base: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prop: np.ndarray = field(default_factory=lambda: np.zeros(0))
    placed: np.ndarray | None = None  # which agents have a place in the district (from ``locations``)

    def __post_init__(self) -> None:
        self.base = np.array([a.base for a in self.agents], dtype=np.float64)
        self.prop = self.base.copy()
        for i, a in enumerate(self.agents):
            a._pool, a._i = self, i

    def weights(self) -> np.ndarray:
        if not self.locations:
            w = self.prop
        else:
            placed = self.placed
            if placed is None or len(placed) != len(self.locations):  # the places are resolved once
                placed = self.placed = np.array([loc is not None for loc in self.locations])
            w = np.where(placed, self.prop, 0.0)
        out: np.ndarray = w / w.sum()
        return out


class DemandModel(mesa.Model):  # type: ignore[misc]
    """The Mesa model; implements :class:`scenarios.model.Demand` for the engine.

    Args:
        district: The district.
        seed: The run's demand stream.
        params: Demand parameters.
    """

    def __init__(self, district: District, seed: np.random.SeedSequence, params: DemandParams | None = None) -> None:
        super().__init__(rng=np.random.default_rng(seed))
        self.district = district
        self.params = params or DemandParams()
        self._next_id = 0
        self._day = -1
        d, rng = district, self.rng
        pools: dict[str, _Pool] = {}
        shops_per_seg: dict[str, int] = {}
        for sh in d.shops:
            shops_per_seg[sh.road_id] = shops_per_seg.get(sh.road_id, 0) + 1
        pools["merchant"] = _Pool([Merchant(self, sh.id, sh.x, sh.y, 1.0) for sh in d.shops],
                                  np.array([[sh.x, sh.y] for sh in d.shops]).reshape(-1, 2))
        class_w = {"primary": 1.5, "secondary": 1.5, "tertiary": 1.3, "residential": 1.0, "living_street": 1.0}
        street = []
        for i in d.responsible:
            seg = d.roads.segments[int(i)]
            mid = d.roads.midpoints[int(i)]
            w = seg.length_m / 100.0 * class_w.get(seg.road_class, 0.5) * (1.0 + 0.3 * shops_per_seg.get(seg.id, 0))
            street.append(StreetSpot(self, seg.id, float(mid[0]), float(mid[1]), w))
        pools["street"] = _Pool(street, np.array([[a.x, a.y] for a in street]))
        blocks = []
        for g in d.regions.grids:
            p = g.polygon.representative_point()
            blocks.append(ResidentBlock(self, g.id, p.x, p.y, max(g.area_km2, 0.01)))
        pools["block"] = _Pool(blocks, np.array([[a.x, a.y] for a in blocks]))
        elderly: list[_Placed] = [ElderlyResident(self, s.id, s.x, s.y, 1.0, True) for s in d.sensors]
        alone = self.params.elderly_alone
        if d.catalog.reference is not None and d.population:  # the parameter is the reference district's
            alone = round(alone * d.population / d.catalog.reference.residents)
        extra = max(0, alone - len(elderly))
        if extra and len(d.responsible):
            segs = rng.choice(d.responsible, size=extra)
            along = shapely.line_interpolate_point(d.roads.lines[segs], rng.uniform(0.1, 0.9, extra), normalized=True)
            for k, pt in enumerate(shapely.get_coordinates(along)):
                elderly.append(ElderlyResident(self, f"R{k + 1:05d}", float(pt[0]), float(pt[1]), 1.0, False))
        pools["elderly"] = _Pool(elderly, np.array([[a.x, a.y] for a in elderly]).reshape(-1, 2))
        pools["venue"] = _Pool([Venue(self, v.id, v.x, v.y, 1.0) for v in d.venues],
                               np.array([[v.x, v.y] for v in d.venues]).reshape(-1, 2))
        self.pools = {k: p for k, p in pools.items() if p.agents}
        for pool in self.pools.values():  # resolve every agent's place once
            pool.locations = district.locate_many(pool.xy)
        self._by_uid = {a.uid: a for pool in self.pools.values() for a in pool.agents}
        self._fov_tree = shapely.STRtree([c.fov for c in d.cameras]) if d.cameras else None
        self._cam_ids = [c.id for c in d.cameras]
        self._hourly: dict[str, np.ndarray] = {}  # category → hour-of-day probabilities
        # Each scenario's rate for this district: the catalog's, times this district's
        # exposure over the catalog's reference district (1 for the reference itself).
        ref = d.catalog.reference
        road_km = float(sum(d.roads.segments[int(i)].length_m for i in d.responsible)) / 1000.0
        self._scale: dict[str, float] = {
            spec.code: 1.0 if ref is None else ref.factor(spec.cause, residents=d.population, shops=len(d.shops),
                                                           road_km=road_km, venues=len(d.venues))
            for spec in d.catalog}
        self.datacollector = mesa.DataCollector(model_reporters={"incidents": lambda m: m.today_count})
        self.today_count = 0

    def step(self) -> None:
        """A new day: every agent's propensity drifts back toward its baseline."""
        r = self.params.relax_per_day
        for pool in self.pools.values():
            pool.prop += r * (pool.base - pool.prop)

    # --- the Demand protocol -------------------------------------------------------------------
    def incidents(self, start_s: float, end_s: float) -> list[Incident]:
        """The incidents of one day (``[start_s, end_s)`` lies within one day)."""
        day = int(start_s // DAY_S)
        if day != self._day:
            self._day = day
            self.step()
        rng, p = self.rng, self.params
        weekday = day % 7  # runs start on a Monday
        out: list[tuple[float, str, _Placed, Location]] = []
        weights = {k: pool.weights() for k, pool in self.pools.items()}
        hourly = self._hourly
        for spec in self.district.catalog:
            kind = spec.cause
            pool = self.pools.get(kind) or self.pools.get("street")
            if pool is None or spec.rate_per_day <= 0:
                continue
            mean = spec.rate_per_day * self._scale[spec.code] * p.rate_factor \
                * WEEKLY.get(spec.category, _FLAT_WEEK)[weekday]
            n = int(rng.poisson(mean))
            if n == 0:
                continue
            prof = hourly.get(spec.category)
            if prof is None:
                raw = np.asarray(HOURLY.get(spec.category, [1.0] * 24), dtype=np.float64)
                prof = hourly[spec.category] = raw / raw.sum()
            hours = rng.choice(24, size=n, p=prof)
            times = day * DAY_S + (hours + rng.random(n)) * 3600.0
            picks = rng.choice(len(pool.agents), size=n, p=weights[kind if kind in weights else "street"])
            agents, locations, code = pool.agents, pool.locations, spec.code
            for t, k in zip(times.tolist(), picks.tolist()):
                if start_s <= t < end_s:
                    out.append((t, code, agents[k], locations[k]))
        out.sort(key=lambda o: (o[0], o[1]))
        incidents = self._materialise(out)
        self.today_count = len(incidents)
        self.datacollector.collect(self)
        return incidents

    def _materialise(self, drawn: Sequence[tuple[float, str, _Placed, Location]]) -> list[Incident]:
        if not drawn:
            return []
        rng, p = self.rng, self.params
        covered: list[list[str]] = [[] for _ in drawn]
        if self._fov_tree is not None:
            pts = shapely.points([(loc.x, loc.y) for _, _, _, loc in drawn])
            hit_pt, hit_cam = self._fov_tree.query(pts, predicate="within")
            for i, c in zip(hit_pt, hit_cam):
                covered[int(i)].append(self._cam_ids[int(c)])
        out = []
        catalog = self.district.catalog
        for (t, code, agent, loc), cams in zip(drawn, covered):
            spec = catalog[code]
            mu = _PERSISTENCE_MU.get(agent.kind, math.inf)
            if mu == math.inf or spec.severity.rank >= 3:
                duration = math.inf
            else:
                duration = float(rng.lognormal(mu, _PERSISTENCE_SIGMA))
            only_110 = spec.sources == _ONLY_110
            referral = only_110 or (_REFERRAL_110 in spec.sources and rng.random() < p.referral_share)
            sensor = bool(getattr(agent, "sensor", False)) and spec.sensor is not None
            self._next_id += 1
            agent.incidents += 1
            out.append(Incident(self._next_id, t, code, loc, duration_s=duration, agent_id=agent.uid,
                                cameras=tuple(sorted(cams)), sensor=sensor, referral=referral))
        return out

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        """Let the agent behind ``incident`` react to its outcome."""
        agent = self._by_uid.get(incident.agent_id or "")
        if agent is not None:
            agent.outcome(outcome)

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        """A merchant's compliance scales the scenario's self-correction probability."""
        agent = self._by_uid.get(incident.agent_id or "")
        if agent is None:
            return base_p
        repeat_penalty = min(1.0, agent.base / max(agent.propensity, 1e-9))
        return float(min(1.0, base_p * agent.compliance * (0.5 + 0.5 * repeat_penalty)))

    def summary(self) -> dict[str, Any]:
        """Agent counts by kind."""
        return {k: len(p.agents) for k, p in self.pools.items()}
