"""Staffing optimisation: the fewest members per area and shift that meet a planner's target.

The method follows the iterative staffing algorithm (ISA) of Feldman, Mandelbaum, Massey &
Whitt (2008), which holds under time-varying demand where period-by-period stationary
staffing (SIPP) fails:

1. **Offered load.** Simulate with ample staff and sample, every 10 minutes, the number
   of events per area in system for the role (being handled or waiting). With ample
   staff its mean is the offered load ``R(area, hour)`` (Little's law).
2. **Warm start from theory.** Square-root staffing per hour,
   ``s = ceil(R + β √R)`` with β from the Halfin-Whitt delay probability ``alpha``; a
   shift gets the largest hourly value within it (staffing is fixed for a shift).
3. **Iterate.** Simulate with the current staffing and set each hour's staffing to the
   smallest ``s`` with ``P(L(t) ≥ s) ≤ alpha`` over days and replications; take the
   maximum within each shift; repeat until the table stops changing. Because ``L(t)`` is
   observed under the staffing being improved, waiting, lag and abandonment are in it.
4. **Verify.** Simulate the result with more replications and check the planner's KPI
   (for the role's events); while it falls short, add one member where the area's KPI is
   worst (on the shift with the heaviest load per member) and verify again.

Every evaluated staffing is kept, giving the cost/service curve. The plan is written as
the ``per_area`` table of ``scenario.toml`` (with ``roster.rotation_days = 0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenarios.engine import replicate
from scenarios.model import RunResult
from scenarios.results import Estimate, columns, estimate, outcomes
from scenarios.theory import halfin_whitt_beta, square_root_staffing
from twin import kpis as twin_kpis
from twin.district import District
from twin.staff import DAY_S, Role

KPIS = (twin_kpis.ON_SCENE, twin_kpis.RESPONDED, "no_wait")


@dataclass(frozen=True)
class Evaluation:
    """One staffing table and how it did."""

    step: str
    table: dict[str, dict[str, int]]
    total: int
    kpi: Estimate


@dataclass
class StaffingPlan:
    """The result of :func:`optimise_staffing`.

    Attributes:
        role: The role staffed.
        kpi: The KPI targeted (computed over the role's events).
        target: The target share.
        alpha: The delay probability used by the ISA.
        table: Members per area per shift.
        met: Whether the verified KPI reaches the target (mean).
        evaluations: Every staffing evaluated, in order (the cost/service curve).
        reason: Why the target was not met, when it was not.
    """

    role: str
    kpi: str
    target: float
    alpha: float
    table: dict[str, dict[str, int]]
    met: bool
    evaluations: list[Evaluation] = field(default_factory=list)
    reason: str = ""

    @property
    def total(self) -> int:
        """Members in the plan."""
        return sum(n for shifts in self.table.values() for n in shifts.values())

    def curve(self) -> list[dict[str, Any]]:
        """Cost/service curve: members vs KPI (mean and 95% CI), one point per evaluation."""
        return [{"step": e.step, "members": e.total, "kpi": e.kpi.mean, "lo": e.kpi.lo, "hi": e.kpi.hi}
                for e in sorted(self.evaluations, key=lambda e: e.total)]

    def overrides(self) -> dict[str, Any]:
        """Scenario overrides that apply the plan."""
        return {"roster.rotation_days": 0, f"staff.{self.role}.count": self.total,
                f"staff.{self.role}.per_area": self.table, f"staff.{self.role}.rotation": None,
                f"staff.{self.role}.shifts": self._codes()}

    def _codes(self) -> list[str]:
        return list(next(iter(self.table.values()), {}))

    def to_toml(self) -> str:
        """The plan as a ``scenario.toml`` fragment."""
        lines = ["[roster]", "rotation_days = 0", "", f"[staff.{self.role}]", f"count = {self.total}",
                 "shifts = [" + ", ".join(f'"{c}"' for c in self._codes()) + "]"]
        lines.append("per_area = { " + ", ".join(
            f"{a} = {{ " + ", ".join(f"{s} = {n}" for s, n in shifts.items()) + " }"
            for a, shifts in self.table.items()) + " }")
        return "\n".join(lines) + "\n"


def _role_kpi(run: RunResult, role: str, kpi: str, warmup_days: float) -> float:
    """``kpi`` over the events ``role`` handled in the end, timed on the stage it handled
    (from the escalation that brought the event to it, not the grid worker's reminder)."""
    rows = [r for r in run.records if r.reported_s >= warmup_days * DAY_S and r.handler_role == role]
    if kpi == "no_wait":  # dispatched to the role the moment the stage began
        ok = [not math.isnan(r.stage_wait_s) and r.stage_wait_s <= 1e-6 for r in rows]
        return float(np.mean(ok)) if ok else math.nan
    if not rows:
        return math.nan
    c = columns(rows)
    c["age_s"] = run.days * DAY_S - c["reported_s"]
    met, of = twin_kpis.masks(outcomes(c, stage=True))[kpi]
    n = int(of.sum())
    return float((met & of).sum()) / n if n else math.nan


def _simulate(scenario: str, overrides: Mapping[str, Any], *, role: Role, days: float, seed: int,
              replications: int, warmup_days: float, sample: bool
              ) -> tuple[list[RunResult], list[list[tuple[float, dict[str, int]]]], District]:
    from scenarios.demand import DemandModel
    from scenarios.loader import load_cached

    district = load_cached(scenario, dict(overrides))
    district.roads.precompute_travel()
    runs = replicate(district, lambda ss: DemandModel(district, ss), days=days, seed=seed,
                     replication_ids=range(replications), warmup_days=warmup_days,
                     sample_role=role if sample else None)
    return runs, [run.samples for run in runs], district


def _hourly(samples: list[list[tuple[float, dict[str, int]]]], areas: list[str], warmup_days: float
            ) -> dict[tuple[str, int], list[int]]:
    """Samples of the number in system per (area, hour of day), over days and replications."""
    out: dict[tuple[str, int], list[int]] = {(a, h): [] for a in areas for h in range(24)}
    for run in samples:
        for t, counts in run:
            if t < warmup_days * DAY_S:
                continue
            h = int((t % DAY_S) // 3600)
            for a in areas:
                out[(a, h)].append(counts.get(a, 0))
    return out


def _table_from_hours(per_hour: Mapping[tuple[str, int], int], district: District, role: Role,
                      floor: int) -> dict[str, dict[str, int]]:
    codes = district.roster.role_shifts.get(role, tuple(s.code for s in district.roster.plan))
    table: dict[str, dict[str, int]] = {}
    for area in (a.id for a in district.regions.areas):
        table[area] = {}
        for code in codes:
            shift = district.roster.plan[code]
            hours = [h for h in range(24) if shift.contains(h * 3600 + 1800)]
            table[area][code] = max(floor, max(per_hour[(area, h)] for h in hours))
    return table


def _trim(table: dict[str, dict[str, int]], evaluate: Callable[..., Any], *, target: float, floor: int,
          samples: Any, areas: list[str], codes: tuple[str, ...], district: District, warmup_days: float,
          plan_args: tuple[str, str, float, float], evaluations: list[Evaluation], reps: int,
          max_tries: int) -> StaffingPlan:
    """Remove members, least-loaded cell first, while the verified KPI still meets the target."""
    hourly = _hourly(samples, areas, warmup_days)

    def load(a: str, c: str) -> float:
        hours = [h for h in range(24) if district.roster.plan[c].contains(h * 3600 + 1800)]
        return max(float(np.mean(hourly[(a, h)])) if hourly[(a, h)] else 0.0 for h in hours) / max(table[a][c], 1)

    cells = sorted(((a, c) for a in areas for c in codes if table[a][c] > floor), key=lambda ac: (load(*ac), ac))
    for tries, (a, c) in enumerate(cells):
        if tries >= max_tries:
            break
        trial = {x: dict(y) for x, y in table.items()}
        trial[a][c] -= 1
        est, _, _ = evaluate(f"trim-{tries}", trial, reps, sample=False)
        if est.mean >= target:
            table = trial
    return StaffingPlan(*plan_args, table, True, evaluations)


def optimise_staffing(
    scenario: str = "xiaohe",
    *,
    role: str = "co_governance",
    kpi: str = "no_wait",
    target: float = 0.9,
    alpha: float = 0.1,
    days: float = 7.0,
    warmup_days: float = 1.0,
    replications: int = 3,
    verify_replications: int = 5,
    seed: int = 0,
    max_iterations: int = 6,
    max_additions: int = 20,
    max_trims: int = 8,
    floor: int = 1,
    overrides: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> StaffingPlan:
    """The fewest members of ``role`` per area and shift that meet ``target`` on ``kpi``.

    Args:
        scenario: Scenario name or folder.
        role: ``co_governance`` or ``enforcement`` (roles staffed per area).
        kpi: ``on_scene_within_180s``, ``responded_within_60s`` or ``no_wait`` (share of the
            role's events dispatched at once), over the role's events.
        target: Share to reach (0-1).
        alpha: Delay probability the ISA staffs for (0-1).
        days: Days per simulation.
        warmup_days: Warm-up left out.
        replications: Replications per ISA iteration.
        verify_replications: Replications when verifying.
        seed: Root seed (common random numbers across every staffing evaluated).
        max_iterations: ISA iterations at most.
        max_additions: Members added at most while verifying.
        max_trims: Removals tried at most once the target is met (the ISA is conservative:
            its criterion, all busy with probability ≤ alpha, is stricter than most KPIs).
        floor: Members per area and shift at least (24-hour cover).
        overrides: Other scenario overrides (kept in every evaluation).
        progress: Called with a line of text at each step.

    Raises:
        ValueError: naming the argument when one is out of range.
    """
    try:
        r = Role(role)
    except ValueError:
        raise ValueError(f"role: must be co_governance or enforcement, got {role!r}") from None
    if r not in (Role.CO_GOVERNANCE, Role.ENFORCEMENT):
        raise ValueError(f"role: must be co_governance or enforcement, got {role!r}")
    if kpi not in KPIS:
        raise ValueError(f"kpi: must be one of {', '.join(KPIS)}, got {kpi!r}")
    if not 0 < target <= 1:
        raise ValueError(f"target: must be in (0, 1], got {target!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}")
    say = progress or (lambda _msg: None)
    base = {**(overrides or {}), "roster.rotation_days": 0}
    evaluations: list[Evaluation] = []

    def apply(table: dict[str, dict[str, int]]) -> dict[str, Any]:
        # Positions per area and shift, every day (the role's rotation set aside); shrinkage
        # and breaks still apply, so the table is of people rostered, not of people present.
        total = sum(n for s in table.values() for n in s.values())
        return {**base, f"staff.{role}.count": total, f"staff.{role}.per_area": table,
                f"staff.{role}.rotation": None, f"staff.{role}.shifts": list(codes)}

    def evaluate(step: str, table: dict[str, dict[str, int]], reps: int, sample: bool) -> tuple[Estimate, Any, District]:
        runs, samples, district = _simulate(scenario, apply(table), role=r, days=days, seed=seed,
                                            replications=reps, warmup_days=warmup_days, sample=sample)
        est = estimate((_role_kpi(run, role, kpi, warmup_days) for run in runs), bounds=(0.0, 1.0))
        evaluations.append(Evaluation(step, table, sum(n for s in table.values() for n in s.values()), est))
        say(f"{step}: {evaluations[-1].total} members, {kpi} {est.mean:.3f}")
        return est, samples, district

    # 1. Offered load with ample staff: 3x the current head count, spread evenly.
    from scenarios.loader import load_cached

    current = load_cached(scenario, dict(overrides) if overrides else None)
    codes = current.roster.role_shifts.get(r, tuple(s.code for s in current.roster.plan))
    areas = [a.id for a in current.regions.areas]
    av = current.roster.availability  # ample after leave, breaks and fixed posts too
    ample_n = max(floor + 2, math.ceil(3 * len(current.members(r)) / (len(areas) * len(codes)) / (1 - av.shrinkage))) \
        + sum(p.per_area for p in av.posts if p.role == role) + (1 if av.meal_break_s else 0)
    ample = {a: {c: ample_n for c in codes} for a in areas}
    ample_kpi, samples, district = evaluate("ample", ample, replications, sample=True)
    if ample_kpi.mean < target:
        # Staff cannot buy it: travel and signing times bound the KPI, not queueing.
        say(f"target unreachable: with {sum(n for s in ample.values() for n in s.values())} members "
            f"{kpi} is only {ample_kpi.mean:.3f}")
        return StaffingPlan(role, kpi, target, alpha, ample, False, evaluations,
                            reason=f"unreachable: {kpi} reaches only {ample_kpi.mean:.3f} even with "
                                   f"{ample_n} members per area and shift (travel and signing bound it)")
    hourly = _hourly(samples, areas, warmup_days)
    # 2. Warm start from theory: square-root staffing on the offered load per hour.
    beta = halfin_whitt_beta(alpha)
    table = _table_from_hours({k: square_root_staffing(float(np.mean(v)) if v else 0.0, beta) for k, v in hourly.items()},
                              district, r, floor)
    # 3. ISA iterations.
    for it in range(1, max_iterations + 1):
        _, samples, district = evaluate(f"isa-{it}", table, replications, sample=True)
        hourly = _hourly(samples, areas, warmup_days)
        per_hour = {}
        for key, values in hourly.items():
            v = np.asarray(values)
            s = 0
            while len(v) and np.mean(v >= s) > alpha:
                s += 1
            per_hour[key] = s
        new = _table_from_hours(per_hour, district, r, floor)
        if new == table:
            break
        table = new
    # 4. Verify, adding members where the KPI is worst.
    for step in range(max_additions + 1):
        runs, samples, district = _simulate(scenario, apply(table), role=r, days=days, seed=seed,
                                            replications=verify_replications, warmup_days=warmup_days, sample=True)
        est = estimate((_role_kpi(run, role, kpi, warmup_days) for run in runs), bounds=(0.0, 1.0))
        total = sum(n for s in table.values() for n in s.values())
        evaluations.append(Evaluation(f"verify-{step}", table, total, est))
        say(f"verify-{step}: {total} members, {kpi} {est.mean:.3f} [{est.lo:.3f}, {est.hi:.3f}]")
        if est.mean >= target:
            return _trim(table, evaluate, target=target, floor=floor, samples=samples, areas=areas, codes=codes,
                         district=district, warmup_days=warmup_days, plan_args=(role, kpi, target, alpha),
                         evaluations=evaluations, reps=verify_replications, max_tries=max_trims)
        if step == max_additions:
            return StaffingPlan(role, kpi, target, alpha, table, False, evaluations,
                                reason=f"still short after adding {max_additions} members")
        by_area: dict[str, list[float]] = {a: [] for a in areas}
        for run in runs:
            for a in areas:
                sub = RunResult([x for x in run.records if x.area_id == a], 0, 0, run.days, {}, {}, {}, {}, 0.0, 0)
                by_area[a].append(_role_kpi(sub, role, kpi, warmup_days))
        worst = min(areas, key=lambda a: (np.nanmean(by_area[a]) if by_area[a] else 1.0, a))
        hourly = _hourly(samples, [worst], warmup_days)
        load = {c: max(np.mean(hourly[(worst, h)]) for h in range(24)
                       if district.roster.plan[c].contains(h * 3600 + 1800)) / max(table[worst][c], 1) for c in codes}
        shift = max(codes, key=lambda c: (load[c], c))
        table = {a: dict(s) for a, s in table.items()}
        table[worst][shift] += 1
    raise AssertionError("unreachable")  # pragma: no cover
