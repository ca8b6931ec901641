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

Two regimes (:attr:`DemandParams.responsive`):

- **held** (the default, for planning runs of days or weeks): each scenario's total is the
  catalog's rate, the present and observed regime; learning only moves *who* causes the
  incidents (weights are renormalised), so enforcement cannot change the total.
- **responsive** (for comparisons across enforcement regimes, months long: the reform):
  each agent emits at its own rate, ``catalog rate × propensity / Σ base propensity`` of
  its kind, so deterrence lowers the total. The catalog's rate is the rate at base
  propensity. Learning (deterrence) applies to behavioural scenarios only (those a
  reminder can correct, ``self_correct_p > 0``); fires, accidents, welfare calls and
  infrastructure faults are drawn at the catalog's rate from base weights. A caught
  party's propensity is multiplied by ``1 − strength × c(T)`` (certainty: only a caught
  incident deters; celerity: ``c(T) = 1 / (1 + T / celerity_h)``, ``T`` from the onset to
  the case's end), an uncaught one's by ``embolden``; every day it relaxes toward its base
  by ``relax_per_day`` (Nagin 2013: certainty of apprehension deters, severity little;
  the evidence on celerity is thin, hence a mild default and a wide sensitivity range).
  The stationary mean propensity of one agent solves the mean-field balance
  ``k (b − p) = r p² (1 − E[f])`` (:func:`mean_field_propensity`). Disputes recur
  (:attr:`DemandParams.recurrence_after_poor`, ``_after_handled``): a self-exciting,
  Hawkes-like process whose branching ratio is higher when the last case was left to a
  reminder, went unseen or unanswered, than when it was settled on site (Mohler et al.
  2011). Every draw comes from a substream of (day, scenario), and each incident carries
  its ``key`` so the discovery draws are per incident: two worlds compared share their
  demand and discovery draws as far as their propensities allow (common random numbers).
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
from scenarios.rng import child_seed
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
        responsive: Each agent emits at its own rate (see the module doc); ``False``: the
            catalog's totals are held and learning only redistributes them.
        celerity_h: Hours after which a caught incident deters half as much (responsive
            only; ``inf``: celerity does not matter).
        recurrence_after_poor: Probability that a dispute flares up again after a case that
            was only reminded, went unseen or was abandoned (responsive only).
        recurrence_after_handled: The same after a case settled on site.
        recurrence_days: Mean days until a recurrence, after a first day of calm.
    """

    rate_factor: float = 1.0
    elderly_alone: int = 1600
    propensity_sigma: float = 1.0
    learn_handled: float = 0.7
    learn_corrected: float = 0.85
    embolden: float = 1.1
    relax_per_day: float = 0.03
    referral_share: float = 0.3
    responsive: bool = False
    celerity_h: float = 4.0
    recurrence_after_poor: float = 0.35
    recurrence_after_handled: float = 0.10
    recurrence_days: float = 2.0

    def __post_init__(self) -> None:
        for name in ("learn_handled", "learn_corrected", "relax_per_day", "referral_share",
                     "recurrence_after_poor", "recurrence_after_handled"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: {v!r} is not between 0 and 1")
        for name in ("rate_factor", "embolden", "celerity_h", "recurrence_days", "propensity_sigma"):
            v = getattr(self, name)
            if not v >= 0.0:
                raise ValueError(f"{name}: {v!r} must not be negative")


def mean_field_propensity(rate: float, base: float, relax: float, mean_factor: float) -> float:
    """The stationary propensity of one agent by the mean-field balance.

    An agent with propensity ``p`` causes incidents at ``rate × p`` a day; each multiplies
    ``p`` by a factor of mean ``mean_factor``; every day ``p`` relaxes toward ``base`` by
    ``relax``. In balance ``relax (base − p) = rate p² (1 − mean_factor)``: the positive root.
    """
    a = rate * (1.0 - mean_factor)
    if abs(a) < 1e-15:
        return base
    disc = relax * relax + 4.0 * a * relax * base
    return (-relax + math.sqrt(disc)) / (2.0 * a) if disc >= 0 else math.inf
#: The first element of a recurrence's demand key (the rest is the key of the incident it follows).
RECURRENCE = 1_000_000


def is_recurrence(key: tuple[int, ...] | Sequence[int] | None) -> bool:
    """Whether an incident of this demand key is a dispute flaring up again."""
    return bool(key) and key[0] == RECURRENCE  # type: ignore[index]


def recurrent(spec: Any) -> bool:
    """Whether a scenario's incidents can flare up again (responsive demand): a 110 matter
    between parties who can settle it, a dispute (a reminder can correct it) or a police
    call itself."""
    return _REFERRAL_110 in spec.sources and (spec.self_correct_p > 0 or spec.sources == _ONLY_110)


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

    def outcome(self, what: str, celerity: float = 1.0) -> None:
        """React to what became of an incident this agent caused: caught, less (by
        ``celerity`` of the full effect); unseen, more."""
        p = self.model.params
        factor = {"handled": p.learn_handled, "self_corrected": p.learn_corrected,
                  "undiscovered": p.embolden, "abandoned": p.embolden}.get(what, 1.0)
        if factor < 1.0 and celerity < 1.0:
            factor = 1.0 - (1.0 - factor) * celerity
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

    def weights_raw(self, values: np.ndarray) -> np.ndarray:
        """``values`` with the agents who have no place in the district at 0 (not normalised)."""
        if not self.locations:
            return values
        placed = self.placed
        if placed is None or len(placed) != len(self.locations):
            placed = self.placed = np.array([loc is not None for loc in self.locations])
        out: np.ndarray = np.where(placed, values, 0.0)
        return out

    def weights(self) -> np.ndarray:
        w = self.weights_raw(self.prop)
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
        self._seed = seed
        self.daily: list[int] = []  # incidents drawn each day (responsive: recurrences included)
        self._pending: list[tuple[float, str, _Placed, Location, tuple[int, ...]]] = []  # recurrences
        self._codes = {spec.code: i for i, spec in enumerate(d.catalog)}
        self.recurrences = 0

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
        if self.params.responsive:
            return self._responsive(day, start_s, end_s)
        rng = self.rng
        weekday = day % 7  # runs start on a Monday
        out: list[tuple[float, str, _Placed, Location]] = []
        weights = {k: pool.weights() for k, pool in self.pools.items()}
        for spec in self.district.catalog:
            kind = spec.cause
            pool = self.pools.get(kind) or self.pools.get("street")
            if pool is None or spec.rate_per_day <= 0:
                continue
            n = int(rng.poisson(self._day_mean(spec, weekday)))
            if n == 0:
                continue
            hours = rng.choice(24, size=n, p=self._profile(spec.category))
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

    def _day_mean(self, spec: Any, weekday: int) -> float:
        """A scenario's expected incidents on a day of the week at base propensity."""
        return float(spec.rate_per_day * self._scale[spec.code] * self.params.rate_factor
                     * WEEKLY.get(spec.category, _FLAT_WEEK)[weekday])

    def _profile(self, category: str) -> np.ndarray:
        """Hour-of-day probabilities of a category (worked out once)."""
        prof = self._hourly.get(category)
        if prof is None:
            raw = np.asarray(HOURLY.get(category, [1.0] * 24), dtype=np.float64)
            prof = self._hourly[category] = raw / raw.sum()
        return prof

    def _substream(self, *key: int) -> np.random.Generator:
        """The generator of one substream of this run's demand seed (see the module doc)."""
        return np.random.default_rng(child_seed(self._seed, *key))

    def _responsive(self, day: int, start_s: float, end_s: float) -> list[Incident]:
        """A day of responsive demand: every agent at its own rate, each (day, scenario) on
        its own substream."""
        p = self.params
        weekday = day % 7
        out: list[tuple[float, str, _Placed, Location, float, float, tuple[int, ...]]] = []
        sums = {k: (pool.weights_raw(pool.prop), pool.weights_raw(pool.base)) for k, pool in self.pools.items()}
        for idx, spec in enumerate(self.district.catalog):
            kind = spec.cause if spec.cause in self.pools else "street"
            pool = self.pools.get(kind)
            if pool is None or spec.rate_per_day <= 0:
                continue
            prop_w, base_w = sums[kind]
            behavioural = spec.self_correct_p > 0
            w = prop_w if behavioural else base_w
            base_total = float(base_w.sum())
            g = self._substream(1, day, idx)
            n = int(g.poisson(self._day_mean(spec, weekday) * (float(w.sum()) / base_total if base_total else 0.0)))
            if n == 0:
                continue
            times = day * DAY_S + (g.choice(24, size=n, p=self._profile(spec.category)) + g.random(n)) * 3600.0
            cum = np.cumsum(w)
            picks = np.minimum(np.searchsorted(cum, g.random(n) * cum[-1], side="right"), len(w) - 1)
            normals = g.standard_normal(n)
            referral_u = g.random(n)
            only_110 = spec.sources == _ONLY_110
            can_110 = _REFERRAL_110 in spec.sources
            for k in range(n):
                t = float(times[k])
                if not start_s <= t < end_s:
                    continue
                agent = pool.agents[int(picks[k])]
                mu = _PERSISTENCE_MU.get(agent.kind, math.inf)
                duration = math.inf if mu == math.inf or spec.severity.rank >= 3 else \
                    math.exp(mu + _PERSISTENCE_SIGMA * float(normals[k]))
                referral = only_110 or (can_110 and float(referral_u[k]) < p.referral_share)
                loc = pool.locations[int(picks[k])]
                if loc is not None:  # (an agent with no place has no weight: never picked)
                    out.append((t, spec.code, agent, loc, duration, float(referral), (day, idx, k)))
        keep = []
        for item in self._pending:  # recurrences due today
            t, code, agent, loc, key = item
            if start_s <= t < end_s:
                spec = self.district.catalog[code]
                g = self._substream(2, *key)
                mu = _PERSISTENCE_MU.get(agent.kind, math.inf)
                duration = math.inf if mu == math.inf or spec.severity.rank >= 3 else \
                    float(g.lognormal(mu, _PERSISTENCE_SIGMA))
                referral = spec.sources == _ONLY_110 or (
                    _REFERRAL_110 in spec.sources and g.random() < p.referral_share)
                out.append((t, code, agent, loc, duration, float(referral), key))
            else:
                keep.append(item)
        self._pending = keep
        out.sort(key=lambda o: (o[0], o[1]))
        incidents = self._build([(t, c, a, loc) for t, c, a, loc, *_ in out],
                                [(dur, bool(ref), key) for *_, dur, ref, key in out])
        self.today_count = len(incidents)
        self.daily.append(len(incidents))
        self.datacollector.collect(self)
        return incidents

    def _materialise(self, drawn: Sequence[tuple[float, str, _Placed, Location]]) -> list[Incident]:
        if not drawn:
            return []
        rng, p = self.rng, self.params
        catalog = self.district.catalog
        extra = []
        for _t, code, agent, _loc in drawn:
            spec = catalog[code]
            mu = _PERSISTENCE_MU.get(agent.kind, math.inf)
            if mu == math.inf or spec.severity.rank >= 3:
                duration = math.inf
            else:
                duration = float(rng.lognormal(mu, _PERSISTENCE_SIGMA))
            only_110 = spec.sources == _ONLY_110
            referral = only_110 or (_REFERRAL_110 in spec.sources and rng.random() < p.referral_share)
            extra.append((duration, bool(referral), None))
        return self._build(drawn, extra)

    def _build(self, drawn: Sequence[tuple[float, str, _Placed, Location]],
               extra: Sequence[tuple[float, bool, tuple[int, ...] | None]]) -> list[Incident]:
        """The incidents of the drawn ``(onset, scenario, agent, place)`` with their
        ``(duration, referral, key)``: which cameras see each spot, whether a sensor does."""
        if not drawn:
            return []
        covered: list[list[str]] = [[] for _ in drawn]
        if self._fov_tree is not None:
            pts = shapely.points([(loc.x, loc.y) for _, _, _, loc in drawn])
            hit_pt, hit_cam = self._fov_tree.query(pts, predicate="within")
            for i, c in zip(hit_pt, hit_cam):
                covered[int(i)].append(self._cam_ids[int(c)])
        out = []
        catalog = self.district.catalog
        for (t, code, agent, loc), cams, (duration, referral, key) in zip(drawn, covered, extra):
            spec = catalog[code]
            sensor = bool(getattr(agent, "sensor", False)) and spec.sensor is not None
            self._next_id += 1
            agent.incidents += 1
            out.append(Incident(self._next_id, t, code, loc, duration_s=duration, agent_id=agent.uid,
                                cameras=tuple(sorted(cams)), sensor=sensor, referral=referral, key=key))
        return out

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        """Let the agent behind ``incident`` react to its outcome (responsive demand: with
        celerity, behavioural scenarios only, and disputes may recur)."""
        agent = self._by_uid.get(incident.agent_id or "")
        if agent is None:
            return
        p = self.params
        if not p.responsive:
            agent.outcome(outcome)
            return
        spec = self.district.catalog[incident.scenario]
        if spec.self_correct_p > 0:
            took_h = max(0.0, now_s - incident.t_s) / 3600.0
            agent.outcome(outcome, 1.0 / (1.0 + took_h / p.celerity_h) if p.celerity_h > 0 else 0.0)
        if recurrent(spec) and incident.key is not None:
            chance = {"handled": p.recurrence_after_handled, "self_corrected": p.recurrence_after_poor,
                      "undiscovered": p.recurrence_after_poor, "abandoned": p.recurrence_after_poor}.get(outcome)
            if chance:
                g = self._substream(3, *incident.key)
                if g.random() < chance:
                    t = max(now_s, incident.t_s) + DAY_S + g.exponential(p.recurrence_days * DAY_S)
                    self._pending.append((t, spec.code, agent, incident.location, (RECURRENCE, *incident.key)))
                    self.recurrences += 1

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        """A merchant's compliance scales the scenario's self-correction probability."""
        agent = self._by_uid.get(incident.agent_id or "")
        if agent is None:
            return base_p
        repeat_penalty = min(1.0, agent.base / max(agent.propensity, 1e-9))
        return float(min(1.0, base_p * agent.compliance * (0.5 + 0.5 * repeat_penalty)))

    def mean_propensity(self, kind: str) -> float:
        """Mean current propensity over base of the agents of ``kind`` (1: as at the start)."""
        pool = self.pools[kind]
        return float(np.mean(pool.prop / pool.base))

    def summary(self) -> dict[str, Any]:
        """Agent counts by kind."""
        return {k: len(p.agents) for k, p in self.pools.items()}
