"""Classical queueing systems, run by the normal engine (not a separate toy simulator).

Each preset builds a small district (a street of ``atoms`` grids, ``servers`` brigade
members on one 24-hour shift, one catalog scenario handled by the brigade alone), a Poisson
demand, and behaviour parameters that switch off what the classical model leaves out
(signing delay, reminders, escalation timers, citizen discovery). What remains is the
engine's own queueing, dispatch, abandonment and bookkeeping, so agreement with theory
validates the engine that runs Xiaohe.

- :func:`single_pool`: M/M/c (Erlang C), M/M/c+M (Erlang A) with ``patience_min``.
- :func:`hypercube`: Larson's hypercube model (fixed preference lists, loss or FCFS queue).
- :func:`infinite_server`: M_t/M/∞ with a sinusoidal arrival rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry import box

from scenarios.engine import replicate
from scenarios.model import Demand, Incident, ResponseParams, RunResult
from scenarios.results import Estimate, estimate
from twin.catalog import Catalog, Category, ScenarioSpec, Severity, Source
from twin.district import District
from twin.geo import LocalProjection, Region, RegionIndex, TravelMode, road_network_from_features
from twin.staff import DAY_S, Member, Role, Roster, Shift, ShiftPlan, Squad

_PROJ = LocalProjection(120.13, 30.31)
_SPACING_M = 200.0


SHIFTS_3 = (("night", 0, 8), ("day", 8, 16), ("evening", 16, 24))


def pool_district(servers: int, *, atoms: int = 1, homes: Sequence[int] | None = None,
                  handling_min: float = 10.0, per_shift: Mapping[str, int] | None = None,
                  severities: Sequence[Severity] = (Severity.MEDIUM,)) -> District:
    """A street of ``atoms`` grids with ``servers`` brigade members, always on duty.

    Args:
        servers: Members (units); ignored when ``per_shift`` is given.
        atoms: Grids along the street (demand atoms).
        homes: Grid index where each member is posted (default: spread evenly).
        handling_min: Mean handling time of the one catalog scenario, minutes.
        per_shift: Members on each of three 8-hour shifts (``night`` 0-8, ``day`` 8-16,
            ``evening`` 16-24) instead of one 24-hour crew.
        severities: One catalog scenario per severity (``P01``, ``P02``, ...), alike but
            for it: classes of a priority queue (the desk serves the most severe first).
    """
    if per_shift is not None:
        servers = sum(per_shift.values())
    if servers < 1 or atoms < 1:
        raise ValueError("servers and atoms must be >= 1")
    feats = []
    for i in range(atoms):
        a = _PROJ.to_lonlat(i * _SPACING_M, 0.0)
        b = _PROJ.to_lonlat((i + 1) * _SPACING_M, 0.0)
        feats.append({"type": "Feature", "geometry": {"type": "LineString",
                                                      "coordinates": [[float(a[0]), float(a[1])], [float(b[0]), float(b[1])]]},
                      "properties": {"id": f"r{i}", "from": f"n{i}", "to": f"n{i + 1}", "length_m": _SPACING_M,
                                     "speed_kmh": 30.0, "oneway": False}})
    net = road_network_from_features(feats, projection=_PROJ)
    grids = [Region(f"G{i + 1:03d}", "grid", f"Atom {i + 1}",
                    box(i * _SPACING_M, -50, (i + 1) * _SPACING_M, 50), parent="C01") for i in range(atoms)]
    outline = box(0, -50, atoms * _SPACING_M, 50)
    regions = RegionIndex(grids, [Region("C01", "community", "C01", outline, parent="A1")],
                          [Region("A1", "area", "A1", outline)])
    homes = list(homes) if homes is not None else [int(k * atoms / servers) for k in range(servers)]
    node = {key: i for i, key in enumerate(net.node_keys)}
    slots = [0] * servers
    if per_shift is not None:
        slots = [i for i, (code, _, _) in enumerate(SHIFTS_3) for _ in range(per_shift.get(code, 0))]
        plan = ShiftPlan([Shift(code, a * 3600, b * 3600) for code, a, b in SHIFTS_3])
        role_shifts = {Role.CO_GOVERNANCE: tuple(code for code, _, _ in SHIFTS_3)}
    else:
        plan = ShiftPlan([Shift("all", 0, 86_400)])
        role_shifts = {Role.CO_GOVERNANCE: ("all",)}
    members = [Member(f"U{k + 1:02d}", f"Unit {k + 1}", Role.CO_GOVERNANCE, "A1", "SQ-A1",
                      (grids[homes[k]].id,), slots[k], node[f"n{homes[k]}"], TravelMode.EBIKE) for k in range(servers)]
    roster = Roster(members, plan, role_shifts)
    specs = [ScenarioSpec(code=f"P{k + 1:02d}", name_zh="调度", name_en="Call", category="public_security",
                          sources=(Source.REFERRAL_110,), severity=sev, department="—",
                          handler_chain=(Role.CO_GOVERNANCE,), respond_s=1e9, on_scene_s=2e9, reinforce_s=3e9,
                          handling_min=handling_min, merge_radius_m=0.0, merge_window_s=0.0)
             for k, sev in enumerate(severities)]
    catalog = Catalog([Category("public_security", "社会治安", "Public security", "P01")], specs)
    mids = net.midpoints
    return District(name="pool", title="Preset: one pool", boundary=outline, roads=net,
                    responsible=np.arange(len(net)), road_grid=regions.grids_at(mids), regions=regions,
                    squads=(Squad("SQ-A1", "SQ-A1", ("A1",)),), roster=roster, catalog=catalog)


@dataclass
class PoissonDemand:
    """Poisson arrivals per atom with rate ``rate_per_s(t) * weights[atom]`` (thinning).

    Args:
        district: The preset district (atoms are its grids, in order).
        rate_per_s: Total arrival rate at time ``t`` (seconds since start).
        max_rate_per_s: An upper bound of ``rate_per_s`` (for thinning).
        weights: Share of arrivals per atom (sums to 1).
        patience_s: Mean patience (exponential): the incident ends that long after onset.
        seed: The run's demand stream.
    """

    district: District
    rate_per_s: Callable[[float], float]
    max_rate_per_s: float
    weights: np.ndarray
    seed: np.random.SeedSequence
    patience_s: float | None = None
    mix: Sequence[float] | None = None  # share of scenario P01, P02, ... (default: all P01)
    _next_id: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._locs = []
        for g in self.district.regions.grids:
            c = g.polygon.centroid
            self._locs.append(self.district.locate_xy(c.x, c.y))

    def incidents(self, start_s: float, end_s: float) -> list[Incident]:
        """Thinned Poisson arrivals in ``[start_s, end_s)``."""
        n = self.rng.poisson(self.max_rate_per_s * (end_s - start_s))
        times = np.sort(self.rng.uniform(start_s, end_s, size=n))
        keep = self.rng.random(n) * self.max_rate_per_s < np.array([self.rate_per_s(t) for t in times])
        times = times[keep]
        atoms = self.rng.choice(len(self._locs), size=len(times), p=self.weights)
        patience = (self.rng.exponential(self.patience_s, size=len(times)) if self.patience_s
                    else np.full(len(times), math.inf))
        locs, first = self._locs, self._next_id + 1
        self._next_id += len(times)
        codes = (["P01"] * len(times) if self.mix is None else
                 [f"P{k + 1:02d}" for k in self.rng.choice(len(self.mix), size=len(times), p=self.mix).tolist()])
        return [Incident(first + k, t, code, locs[a], dur, None, (), False, True)
                for k, (t, a, dur, code) in enumerate(zip(times.tolist(), atoms.tolist(), patience.tolist(), codes))]

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        """Poisson arrivals do not react."""

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        """Not used (the brigade handles every call)."""
        return base_p


def _preset_params(*, queue: bool = True, travel_s: float = 0.0, abandon: bool = False,
                   run_cards: dict[str, list[str]] | None = None) -> ResponseParams:
    return ResponseParams(sign_mean_s=0.0, fixed_travel_s=travel_s, handling="exponential", resolve_p=1.0,
                          verify_mean_s=0.0, citizen_p=0.0, referral_s=0.0, patrol_share={}, queue=queue,
                          abandon=abandon, timers=False, run_cards=run_cards, keep_audit=False)


@dataclass(frozen=True)
class PresetResult:
    """Simulated estimates (95% CI over replications) beside the analytic values."""

    p_wait: Estimate
    mean_wait_s: Estimate
    p_abandon: Estimate
    p_loss: Estimate
    workloads: tuple[Estimate, ...]
    interarea_fraction: Estimate
    replications: int
    theory: dict[str, Any]
    per_run: dict[str, Any] = field(repr=False, default_factory=dict)
    runs: tuple[RunResult, ...] = field(repr=False, default=())


def _replicate(district: District, demand: Callable[[np.random.SeedSequence], Demand], params: ResponseParams,
               *, days: float, replications: int, seed: int, warmup_days: float,
               sample_role: Role | None = None) -> list[RunResult]:
    return replicate(district, demand, days=days, seed=seed, replication_ids=range(replications), params=params,
                     warmup_days=warmup_days, sample_role=sample_role)


def _measure(runs: Sequence[RunResult], *, warmup_days: float, homes: dict[str, str] | None = None,
             theory: dict[str, Any], units: Sequence[str], cooldown_days: float = 0.25) -> PresetResult:
    """Event figures from arrivals after the warm-up and before a cool-down at the end (so
    that every measured event has finished: no censoring); workloads over the whole run."""
    p_wait, mean_wait, p_ab, p_loss, inter = [], [], [], [], []
    loads: list[list[float]] = [[] for _ in units]
    for run in runs:
        end = (run.days - cooldown_days) * DAY_S
        rows = [r for r in run.records if warmup_days * DAY_S <= r.reported_s < end]
        if not rows:
            continue
        p_wait.append(sum((r.wait_s > 0) or r.outcome in ("abandoned", "lost") for r in rows) / len(rows))
        waits = [r.wait_s if r.outcome not in ("abandoned", "lost") else (r.closed_s if r.outcome == "abandoned" else 0.0)
                 for r in rows]
        mean_wait.append(float(np.mean(waits)))
        p_ab.append(sum(r.outcome == "abandoned" for r in rows) / len(rows))
        p_loss.append(sum(r.outcome == "lost" for r in rows) / len(rows))
        served = [r for r in rows if r.handler]
        if homes is not None and served:
            inter.append(sum(homes[r.grid_id] != r.handler for r in served) / len(served))
        for k, mid in enumerate(units):
            loads[k].append(run.busy_s[mid] / run.duty_s[mid])
    per_run = {"p_wait": p_wait, "mean_wait_s": mean_wait, "p_abandon": p_ab, "p_loss": p_loss,
               "workloads": loads, "interarea_fraction": inter}
    return PresetResult(p_wait=estimate(p_wait), mean_wait_s=estimate(mean_wait), p_abandon=estimate(p_ab),
                        p_loss=estimate(p_loss), workloads=tuple(estimate(v) for v in loads),
                        interarea_fraction=estimate(inter), replications=len(runs), theory=theory,
                        per_run=per_run, runs=tuple(runs))


def single_pool(arrival_rate_per_h: float, mean_handling_min: float, servers: int, *,
                patience_min: float | None = None, travel_s: float = 0.0, days: float = 20.0,
                warmup_days: float = 1.0, replications: int = 30, seed: int = 1) -> PresetResult:
    """One pool of ``servers`` brigade members: M/M/c (Erlang C) or M/M/c+M (Erlang A).

    Args:
        arrival_rate_per_h: Events per hour.
        mean_handling_min: Mean handling time, minutes (exponential).
        servers: Members.
        patience_min: Mean patience (exponential) of waiting events; ``None``: infinite.
        travel_s: Fixed travel time added to every handling (occupies the member).
        days: Simulated days per replication.
        warmup_days: Days left out at the start of each replication.
        replications: Independent replications (≥ 30 for the validation tests).
        seed: Root seed; replications use its child streams.
    """
    from scenarios import theory as th

    if arrival_rate_per_h <= 0 or mean_handling_min <= 0 or servers < 1:
        raise ValueError("arrival_rate_per_h and mean_handling_min must be > 0, servers >= 1")
    district = pool_district(servers, handling_min=mean_handling_min)
    lam = arrival_rate_per_h / 3600.0
    params = _preset_params(travel_s=travel_s, abandon=patience_min is not None)

    def demand(ss: np.random.SeedSequence) -> Demand:
        return PoissonDemand(district, lambda t: lam, lam, np.ones(1), ss,
                             patience_s=patience_min * 60.0 if patience_min else None)

    runs = _replicate(district, demand, params, days=days, replications=replications, seed=seed,
                      warmup_days=warmup_days)
    mu = 1.0 / (mean_handling_min * 60.0 + travel_s)
    if patience_min is None:
        t = th.mmc(lam, mu, servers)
        theory = {"p_wait": t.p_wait, "mean_wait_s": t.mean_wait, "p_abandon": 0.0, "utilisation": t.utilisation}
    else:
        a = th.erlang_a(lam, mu, servers, 1.0 / (patience_min * 60.0))
        theory = {"p_wait": a.p_wait, "mean_wait_s": a.mean_wait, "p_abandon": a.p_abandon, "utilisation": a.utilisation}
    return _measure(runs, warmup_days=warmup_days, theory=theory,
                    units=[m.id for m in district.roster.members])


def hypercube(arrival_rates: Sequence[float], preferences: Sequence[Sequence[int]], service_rate: float, *,
              queue: bool = True, days: float = 20.0, warmup_days: float = 1.0, replications: int = 30,
              seed: int = 1) -> PresetResult:
    """Larson's hypercube: atoms with fixed preference lists of units (run cards).

    Args:
        arrival_rates: Events per hour in each atom.
        preferences: For each atom, the order in which units are tried (a permutation).
        service_rate: Services per hour per unit (travel included).
        queue: FCFS queue when all units are busy (else calls are lost).
        days: Simulated days per replication.
        warmup_days: Days left out at the start of each replication.
        replications: Independent replications.
        seed: Root seed.
    """
    from scenarios import theory as th

    rates = np.asarray(arrival_rates, dtype=np.float64)
    n_units = len(preferences[0])
    homes = [int(p[0]) for p in preferences]
    # Post unit n at the first atom whose home it is (or atom 0): posts do not matter to the model.
    posts = [next((j for j, h in enumerate(homes) if h == n), 0) for n in range(n_units)]
    district = pool_district(n_units, atoms=len(rates), homes=posts, handling_min=60.0 / service_rate)
    units = [m.id for m in district.roster.members]
    grid_ids = [g.id for g in district.regions.grids]
    cards = {grid_ids[j]: [units[n] for n in preferences[j]] for j in range(len(rates))}
    lam = rates.sum() / 3600.0
    params = _preset_params(queue=queue, run_cards=cards)

    def demand(ss: np.random.SeedSequence) -> Demand:
        return PoissonDemand(district, lambda t: lam, lam, rates / rates.sum(), ss)

    runs = _replicate(district, demand, params, days=days, replications=replications, seed=seed,
                      warmup_days=warmup_days)
    exact = th.hypercube(rates.tolist(), [list(p) for p in preferences], service_rate, queue="fcfs" if queue else "loss",
                         method="exact" if n_units <= 12 else "larson")
    theory = {"workloads": exact.workloads.tolist(), "interarea_fraction": exact.interarea_fraction,
              "p_loss": exact.p_loss, "p_all_busy": exact.p_all_busy}
    return _measure(runs, warmup_days=warmup_days, homes={grid_ids[j]: units[homes[j]] for j in range(len(rates))},
                    theory=theory, units=units)


@dataclass(frozen=True)
class TimeVaryingResult:
    """Mean number in service at sample times: simulation (95% CI) beside the closed form."""

    times_h: np.ndarray
    simulated: tuple[Estimate, ...]
    theory: np.ndarray
    per_run: list[list[float]] = field(repr=False, default_factory=list)


def infinite_server(mean_rate_per_h: float, amplitude: float, period_h: float, mean_handling_min: float, *,
                    servers: int = 400, days: float = 4.0, warmup_days: float = 1.0, replications: int = 30,
                    samples: int = 24, seed: int = 1) -> TimeVaryingResult:
    """M_t/M/∞ with rate ``mean_rate (1 + amplitude sin(2π t / period))`` (servers ≫ load).

    The number in service at the sample times is compared with the periodic closed form of
    Eick, Massey & Whitt (1993).
    """
    from scenarios import theory as th

    district = pool_district(servers, handling_min=mean_handling_min)
    lam, period = mean_rate_per_h / 3600.0, period_h * 3600.0
    rate = lambda t: lam * (1.0 + amplitude * math.sin(2 * math.pi * t / period))

    def demand(ss: np.random.SeedSequence) -> Demand:
        return PoissonDemand(district, rate, lam * (1 + abs(amplitude)), np.ones(1), ss)

    runs = _replicate(district, demand, _preset_params(), days=days, replications=replications, seed=seed,
                      warmup_days=warmup_days)
    t_s = warmup_days * DAY_S + np.linspace(0, period, samples, endpoint=False)
    counts: list[list[float]] = [[] for _ in t_s]
    for run in runs:
        starts = np.array([r.reported_s for r in run.records])
        ends = starts + np.array([r.resolved_s for r in run.records])
        for k, t in enumerate(t_s):
            counts[k].append(float(np.sum((starts <= t) & (ends > t))))
    closed = th.mt_m_inf_sinusoid(t_s, mean_rate=lam, amplitude=amplitude, period=period,
                                  service_rate=1.0 / (mean_handling_min * 60.0))
    return TimeVaryingResult(times_h=t_s / 3600.0, simulated=tuple(estimate(c) for c in counts), theory=closed,
                             per_run=counts)


@dataclass(frozen=True)
class PriorityPool:
    """Mean wait of each severity class (95% CI) beside the non-preemptive priority M/M/c
    formula (:func:`scenarios.theory.mmc_priority_waits`), highest priority first."""

    severities: tuple[Severity, ...]
    mean_wait_s: tuple[Estimate, ...]
    theory_s: np.ndarray
    per_run: list[list[float]] = field(repr=False, default_factory=list)


def priority_pool(rates_per_h: Sequence[float], mean_handling_min: float, servers: int, *,
                  severities: Sequence[Severity] = (Severity.CRITICAL, Severity.HIGH, Severity.LOW),
                  days: float = 8.0, warmup_days: float = 1.0, replications: int = 20, seed: int = 1) -> PriorityPool:
    """One pool serving calls of several severities (one rate each, highest first): the desk
    takes the most severe waiting call first, then the oldest, without interrupting work."""
    from scenarios import theory as th

    if len(rates_per_h) != len(severities):
        raise ValueError("rates_per_h: give one rate per severity")
    total = sum(rates_per_h) / 3600.0
    district = pool_district(servers, handling_min=mean_handling_min, severities=severities)
    mix = [r / sum(rates_per_h) for r in rates_per_h]
    runs = _replicate(district, lambda ss: PoissonDemand(district, lambda t: total, total, np.ones(1), ss, mix=mix),
                      _preset_params(), days=days, replications=replications, seed=seed, warmup_days=warmup_days)
    per_class: list[list[float]] = [[] for _ in severities]
    for run in runs:
        end = (run.days - 0.25) * DAY_S
        for k in range(len(severities)):
            code = f"P{k + 1:02d}"
            w = [r.wait_s for r in run.records if r.scenario == code and warmup_days * DAY_S <= r.reported_s < end]
            if w:
                per_class[k].append(float(np.mean(w)))
    theory = th.mmc_priority_waits([r / 3600.0 for r in rates_per_h], 1.0 / (mean_handling_min * 60.0), servers)
    return PriorityPool(tuple(severities), tuple(estimate(v) for v in per_class), theory, per_class)


@dataclass(frozen=True)
class FiniteServerWave:
    """M_t/M/c under a daily wave: the twin's delay probability per hour of arrival and
    number in system at sample times (95% CI over replications), beside the numerical
    solution of the Kolmogorov forward equations (:func:`scenarios.theory.mt_m_st`)."""

    p_wait: tuple[Estimate, ...]
    p_wait_theory: np.ndarray
    times_h: np.ndarray
    in_system: tuple[Estimate, ...]
    in_system_theory: np.ndarray
    per_run: dict[str, list[list[float]]] = field(repr=False, default_factory=dict)


def finite_server_wave(mean_rate_per_h: float, amplitude: float, mean_handling_min: float, servers: int, *,
                       days: float = 3.0, warmup_days: float = 1.0, replications: int = 30, samples: int = 12,
                       seed: int = 1) -> FiniteServerWave:
    """``servers`` members always on duty, arrivals at ``mean (1 + amplitude sin(2π (t - 6 h) /
    24 h))`` (peak at noon): where the peak load exceeds the servers the queue builds up and
    drains after the peak, which stationary formulas cannot say and the forward equations can.

    Measured on the normal engine: P(wait) of the arrivals in each hour of the day, and the
    number in system (waiting or in service) at ``samples`` times of the day, from arrivals
    and times between the warm-up and a cool-down of 0.1 day.
    """
    from scenarios import theory as th

    lam, mu = mean_rate_per_h / 3600.0, 1.0 / (mean_handling_min * 60.0)

    def rate(t: float) -> float:
        return lam * (1.0 + amplitude * math.sin(2 * math.pi * (t - 6 * 3600) / DAY_S))

    district = pool_district(servers, handling_min=mean_handling_min)
    runs = _replicate(district, lambda ss: PoissonDemand(district, rate, lam * (1 + abs(amplitude)), np.ones(1), ss),
                      _preset_params(), days=days, replications=replications, seed=seed, warmup_days=warmup_days)
    sample_s = np.linspace(0, DAY_S, samples, endpoint=False)
    waits: list[list[float]] = [[] for _ in range(24)]
    in_sys: list[list[float]] = [[] for _ in sample_s]
    end = (days - 0.1) * DAY_S
    for run in runs:
        rows = [r for r in run.records if warmup_days * DAY_S <= r.reported_s < end]
        for h in range(24):
            sel = [r.wait_s > 1e-9 for r in rows if r.hour == h]
            if sel:
                waits[h].append(sum(sel) / len(sel))
        starts = np.array([r.reported_s for r in run.records])
        ends = starts + np.array([r.resolved_s for r in run.records])
        for k, t0 in enumerate(sample_s):
            ts = [d * DAY_S + t0 for d in range(math.ceil(warmup_days), math.floor(days - 0.1))]
            in_sys[k].append(float(np.mean([np.sum((starts <= t) & (ends > t)) for t in ts])))
    # Theory: arrival-weighted P(all busy) within each hour (every 5 minutes), L at the samples.
    cap = int(lam * (1 + abs(amplitude)) / mu * 3 + servers + 60)
    grid = np.arange(0, DAY_S, 300.0) + 150.0
    dist = th.mt_m_st(rate, mu, lambda t: servers, period=DAY_S, times=np.concatenate([grid, sample_s]),
                      capacity=cap)
    busy = dist[: len(grid), servers:].sum(axis=1)
    w = np.array([rate(t) for t in grid])
    p_theory = np.array([np.sum((busy * w)[h * 12:(h + 1) * 12]) / np.sum(w[h * 12:(h + 1) * 12]) for h in range(24)])
    l_theory = dist[len(grid):] @ np.arange(cap + 1)
    return FiniteServerWave(tuple(estimate(v, bounds=(0.0, 1.0)) for v in waits), p_theory, sample_s / 3600.0,
                            tuple(estimate(v) for v in in_sys), l_theory, {"p_wait": waits, "in_system": in_sys})


@dataclass(frozen=True)
class ShiftStaffing:
    """SIPP and ISA staffing of one pool under a daily wave of demand, and how each does.

    Attributes:
        alpha: Target delay probability, in every hour.
        sipp: Members per shift from stationary Erlang C at each shift's *average* rate.
        isa: Members per shift from the iterative staffing algorithm.
        p_wait_sipp: P(wait) of arrivals in each hour of the day under SIPP (95% CI).
        p_wait_isa: The same under ISA.
        iterations: ISA iterations until the staffing stopped changing.
    """

    alpha: float
    sipp: dict[str, int]
    isa: dict[str, int]
    p_wait_sipp: tuple[Estimate, ...]
    p_wait_isa: tuple[Estimate, ...]
    iterations: int


def time_varying_staffing(mean_rate_per_h: float, amplitude: float, mean_handling_min: float, *,
                          alpha: float = 0.1, days: float = 4.0, warmup_days: float = 1.0,
                          replications: int = 6, seed: int = 1, max_iterations: int = 6,
                          verify_seed: int | None = None) -> ShiftStaffing:
    """Staff three fixed 8-hour shifts for a sinusoidal day: SIPP versus the ISA.

    The arrival rate is ``mean (1 + amplitude sin(2π (t - 6 h) / 24 h))`` (trough at midnight,
    peak at noon). SIPP staffs each shift for its average rate with stationary Erlang C; the
    ISA (Feldman, Mandelbaum, Massey & Whitt 2008) simulates, samples the number in system
    every 10 minutes, and staffs each shift for the worst hour in it, ``min{s : P(L ≥ s) ≤
    alpha}``, until the staffing stops changing. Both are then judged by the delay
    probability in every hour of the day, on the ISA's own random numbers or, with
    ``verify_seed``, on fresh ones.
    """
    from scenarios import theory as th
    lam, mu = mean_rate_per_h / 3600.0, 1.0 / (mean_handling_min * 60.0)
    def rate(t: float) -> float:
        return lam * (1.0 + amplitude * math.sin(2 * math.pi * (t - 6 * 3600) / DAY_S))

    def shift_mean(a_h: int, b_h: int) -> float:
        t = np.linspace(a_h * 3600, b_h * 3600, 481)
        return float(np.mean([rate(x) for x in t]))

    sipp = {code: th.staff_for_p_wait(shift_mean(a, b), mu, alpha) for code, a, b in SHIFTS_3}

    def simulate(per_shift: dict[str, int], on_seed: int = seed) -> tuple[list[Any], list[list[tuple[float, dict[str, int]]]]]:
        district = pool_district(0, per_shift=per_shift, handling_min=mean_handling_min)
        runs = _replicate(district, lambda ss: PoissonDemand(district, rate, lam * (1 + abs(amplitude)), np.ones(1), ss),
                          _preset_params(), days=days, replications=replications, seed=on_seed,
                          warmup_days=warmup_days, sample_role=Role.CO_GOVERNANCE)
        return runs, [run.samples for run in runs]

    def p_wait_by_hour(runs: list[Any]) -> tuple[Estimate, ...]:
        per_hour: list[list[float]] = [[] for _ in range(24)]
        for run in runs:
            rows = [r for r in run.records if warmup_days * DAY_S <= r.reported_s < (days - 0.1) * DAY_S]
            for h in range(24):
                sel = [r for r in rows if r.hour == h]
                if sel:
                    per_hour[h].append(sum(r.wait_s > 1e-9 for r in sel) / len(sel))
        return tuple(estimate(v, bounds=(0.0, 1.0)) for v in per_hour)

    isa = dict(sipp)
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - reported below
        _, samples = simulate(isa)
        by_hour: list[list[int]] = [[] for _ in range(24)]
        for run in samples:
            for t, counts in run:
                if t >= warmup_days * DAY_S:
                    by_hour[int((t % DAY_S) // 3600)].append(counts.get("A1", 0))
        need = []
        for values in by_hour:
            v, s_ = np.asarray(values), 0
            while len(v) and np.mean(v >= s_) > alpha:
                s_ += 1
            need.append(s_)
        new = {code: max(1, max(need[a:b])) for code, a, b in SHIFTS_3}
        if new == isa:
            break
        isa = new
    judge = seed if verify_seed is None else verify_seed
    runs_sipp, _ = simulate(sipp, judge)
    runs_isa, _ = simulate(isa, judge)
    return ShiftStaffing(alpha, sipp, isa, p_wait_by_hour(runs_sipp), p_wait_by_hour(runs_isa), iterations)
