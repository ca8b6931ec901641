"""The reform, reproduced: Xiaohe before and after City Eye, co-governance and joint inspection.

*Before*: no AI cameras (discovery by street patrol, citizens and 110 only), no
co-governance brigade (events go from the grid worker straight to enforcement; 110
referrals to enforcement), and each enforcement department inspecting shops on its own
rounds. *After*: the scenario as it is (320 cameras, the 50-member brigade, one joint
inspection of every shop).

The comparison reports the model's figures beside the case study's headline ones, and the
mechanism that produces each difference. Nothing is tuned to hit the study's numbers: every
parameter is the scenario's documented default, and where model and study differ the
report says so.

- **Street patrol manpower at equal discovery** (study −45%): the before-world's patrol
  effort is raised until its incidents are discovered as fast as the after-world's
  (median discovery delay of discovered incidents); the cut is ``1 − 1/k``.
- **Inspections** (−46%) and **problems found** (+12%): a SimPy model of shops that develop
  problems in five enforcement domains; separate rounds check one domain per visit, joint
  rounds all five, with the same inspector-hours.
- **Repeat alarms** (−12%) and **110 arrival time** (~5 minutes earlier): from the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from scenarios.model import ResponseParams
from scenarios.results import estimate
from scenarios.simulate import SimulationResult, run
from twin.district import District

BEFORE = {"assets.cameras": 0, "staff.co_governance.count": 0}
DOMAINS = ("city_management", "market_supervision", "culture_market", "emergency_fire", "health")


@dataclass(frozen=True)
class InspectionParams:
    """Shop inspection model (assumptions, documented; none tuned to the study).

    Args:
        problem_rate_per_year: New problems per shop per year, in each domain.
        self_resolve_days: Mean days before an unfound problem goes away by itself.
        separate_interval_days: Each department's round: every shop once per this many days.
        single_check_min: Minutes one department's visit takes (one domain).
        joint_check_min: Minutes a joint visit takes (five domains; shared parts —
            licence, premises walk-through — done once).
        detect_p: Probability a check of a domain finds a problem present in it.
    """

    problem_rate_per_year: float = 1.0
    self_resolve_days: float = 60.0
    separate_interval_days: float = 90.0
    single_check_min: float = 30.0
    joint_check_min: float = 80.0
    detect_p: float = 0.8


def inspections(district: District, *, joint: bool, days: float, seed: int,
                params: InspectionParams | None = None) -> dict[str, float]:
    """Simulate shop inspections; returns visits, domain checks, problems found, per year.

    Separate rounds: each of the five departments visits every shop every
    ``separate_interval_days``. Joint rounds: with the same inspector-hours per year, one
    team visits every shop checking all domains, as often as those hours allow.
    """
    p = params or InspectionParams()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    env = simpy.Environment()
    n_shops = len(district.shops)
    hours = len(DOMAINS) * (365.0 / p.separate_interval_days) * p.single_check_min / 60.0  # per shop per year
    joint_interval = 365.0 / (hours * 60.0 / p.joint_check_min)
    present = np.zeros((n_shops, len(DOMAINS)), dtype=bool)
    tally = {"visits": 0.0, "checks": 0.0, "found": 0.0, "arisen": 0.0}

    def problems() -> Any:
        rate = n_shops * len(DOMAINS) * p.problem_rate_per_year / 365.0
        while True:
            yield env.timeout(rng.exponential(1.0 / rate))
            shop, dom = int(rng.integers(n_shops)), int(rng.integers(len(DOMAINS)))
            if not present[shop, dom]:
                present[shop, dom] = True
                tally["arisen"] += 1
                env.process(fade(shop, dom))

    def fade(shop: int, dom: int) -> Any:
        yield env.timeout(rng.exponential(p.self_resolve_days))
        present[shop, dom] = False

    def rounds(domains: tuple[int, ...], interval: float) -> Any:
        offset = rng.uniform(0, interval, size=n_shops)  # visits spread over the round
        order = np.argsort(offset)
        t0 = 0.0
        while True:
            for shop in order:
                at = t0 + offset[shop]
                if at > env.now:
                    yield env.timeout(at - env.now)
                tally["visits"] += 1
                for dom in domains:
                    tally["checks"] += 1
                    if present[shop, dom] and rng.random() < p.detect_p:
                        present[shop, dom] = False
                        tally["found"] += 1
            t0 += interval

    env.process(problems())
    if joint:
        env.process(rounds(tuple(range(len(DOMAINS))), joint_interval))
    else:
        for d in range(len(DOMAINS)):
            env.process(rounds((d,), p.separate_interval_days))
    env.run(until=days)
    per_year = 365.0 / days
    return {k: v * per_year for k, v in tally.items()} | {"interval_days": joint_interval if joint else p.separate_interval_days}


@dataclass
class ReformReport:
    """Before/after figures beside the study's, with the mechanism behind each."""

    rows: list[dict[str, Any]]
    before: SimulationResult | None = field(default=None, repr=False)
    after: SimulationResult | None = field(default=None, repr=False)

    def to_pandas(self) -> Any:
        """The rows as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_markdown(self) -> str:
        """A table for a report."""
        head = "| figure | study | model before | model after | model change | mechanism |\n|---|---|---|---|---|---|\n"
        def fmt(v: Any, unit: str, change: bool = False) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "—"
            if change:
                return f"{v:+.1f} min" if unit == "min" else f"{v:+.0%}"
            return {"share": f"{v:.1%}", "min": f"{v:.1f} min", "relative": f"x{v:.2f}"}.get(unit, f"{v:,.0f}")

        return head + "\n".join(
            f"| {r['figure']} | {r['study']} | {fmt(r['before'], r['unit'])} | {fmt(r['after'], r['unit'])} | "
            f"{fmt(r['change'], r['unit'], change=True)} | {r['mechanism']} |" for r in self.rows) + "\n"


def _median_discovery(res: SimulationResult) -> float:
    return float(np.median([r.discovery_delay_s for r in res.events])) if res.events else math.nan


def _mean(res: SimulationResult, pick: Callable[[Any], bool], value: Callable[[Any], float]) -> float:
    vals = [value(r) for r in res.events if pick(r)]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def before_after(scenario: str = "xiaohe", *, days: float = 14.0, warmup_days: float = 1.0, seed: int = 0,
                 replications: int = 2, efforts: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0),
                 inspection: InspectionParams | None = None,
                 progress: Callable[[str], None] | None = None) -> ReformReport:
    """Run the before and after worlds and compare them with the study's headline figures.

    Args:
        scenario: The after-world scenario (the before-world is it with ``BEFORE`` overrides).
        days: Days per replication.
        warmup_days: Warm-up left out.
        seed: Root seed (both worlds share their demand draws).
        replications: Replications per world.
        efforts: Before-world patrol effort multipliers tried for equal discovery.
        inspection: Shop inspection parameters.
        progress: Called with a line of text at each step.
    """
    from scenarios.loader import load_cached

    say = progress or (lambda _m: None)
    after_d = load_cached(scenario)
    before_d = load_cached(scenario, BEFORE)
    def simulate(d: District, params: ResponseParams | None = None) -> SimulationResult:
        return run(d, days=days, seed=seed, replications=replications, warmup_days=warmup_days, params=params)

    say("after: the scenario as it is")
    after = simulate(after_d)
    say("before: no cameras, no brigade")
    before = simulate(before_d)
    # Patrol manpower at equal discovery: raise the before-world's patrol effort until its
    # median discovery delay falls to the after-world's.
    target = _median_discovery(after)
    curve = [(1.0, _median_discovery(before))]
    for k in efforts[1:]:
        say(f"before, patrol effort x{k:g}")
        curve.append((k, _median_discovery(simulate(before_d, ResponseParams(patrol_effort=k)))))
    ks, delays = zip(*curve)
    if delays[-1] > target:
        k_star = math.nan  # even the largest effort tried does not discover as fast
    else:
        k_star = float(np.interp(target, delays[::-1], ks[::-1]))
    manpower_cut = 1.0 - 1.0 / k_star if k_star and not math.isnan(k_star) else math.nan
    # Inspections.
    sep = inspections(after_d, joint=False, days=365.0, seed=seed, params=inspection)
    jnt = inspections(after_d, joint=True, days=365.0, seed=seed, params=inspection)
    # Repeat alarms and 110 arrivals.
    rep_b = estimate(k["repeat_alarms"] / max(k["events"], 1) for k in before.per_run).mean
    rep_a = estimate(k["repeat_alarms"] / max(k["events"], 1) for k in after.per_run).mean
    is110 = lambda r: r.source == "referral_110" and r.needs_on_scene
    arr_b = _mean(before, is110, lambda r: r.on_scene_s)
    arr_a = _mean(after, is110, lambda r: r.on_scene_s)
    rows = [
        {"figure": "street patrol manpower at equal discovery", "unit": "relative", "study": "−45%", "before": 1.0,
         "after": 1.0 - manpower_cut if not math.isnan(manpower_cut) else math.nan, "change": -manpower_cut,
         "mechanism": f"cameras find covered incidents within minutes; without them patrols must pass every spot "
                      f"more often: x{k_star:.2f} patrol effort gives the same median discovery delay "
                      f"({target / 60:.0f} min)" if not math.isnan(k_star) else
                      f"patrol effort up to x{efforts[-1]:g} never matches the cameras' discovery speed"},
        {"figure": "shop inspections (visits per year)", "unit": "count", "study": "−46%", "before": sep["visits"],
         "after": jnt["visits"], "change": jnt["visits"] / sep["visits"] - 1,
         "mechanism": f"five departments' single-domain visits become one {InspectionParams().joint_check_min:.0f}-min "
                      "joint visit with the same inspector-hours"},
        {"figure": "problems found and fixed (per year)", "unit": "count", "study": "+12%", "before": sep["found"], "after": jnt["found"],
         "change": jnt["found"] / sep["found"] - 1,
         "mechanism": f"each domain is checked every {jnt['interval_days']:.0f} instead of "
                      f"{sep['interval_days']:.0f} days, so fewer problems fade away unfound"},
        {"figure": "repeat alarms (share of events)", "unit": "share", "study": "−12%", "before": rep_b, "after": rep_a,
         "change": rep_a / rep_b - 1 if rep_b else math.nan,
         "mechanism": "two effects pull apart: on-site handling makes parties less likely to repeat (agents' "
                      "propensity learning), but cameras also *see* more of the repeats, and a repeat is only an "
                      "alarm if it is seen"},
        {"figure": "110 joint arrival time (mean, on scene after report)", "unit": "min", "study": "~5 min earlier", "before": arr_b / 60, "after": arr_a / 60,
         "change": (arr_a - arr_b) / 60,
         "mechanism": "before, enforcement cars answer 110; after, the brigade on e-bikes, posted across every "
                      "area and shift: similar speed in this model, so little change"},
    ]
    return ReformReport(rows, before=before, after=after)


def explain_differences(report: ReformReport) -> Mapping[str, str]:
    """Where model and study differ, and why (for the notebook and the report)."""
    return {
        "patrol manpower": "the model counts only patrol effort needed for discovery; the study's −45% also "
                           "reflects reorganisation (patrol tasks moved to the brigade).",
        "inspections": "the model holds inspector-hours equal; the study's pilot may also have changed hours.",
        "problems found": "depends on how fast unfound problems fade (self_resolve_days), which the study does not "
                          "give.",
        "repeat alarms": "the model counts a repeat only when it is discovered, and the after-world discovers far "
                         "more (cameras); the study compares year on year in a changing city with its own "
                         "detection, so its −12% mixes less repeating with unchanged seeing.",
        "110 arrival": "the model's before-world sends enforcement cars; the study's baseline (police only) is "
                       "not described.",
    }
