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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenarios.engine import replicate
from scenarios.model import RunResult
from scenarios.results import Estimate, columns, estimate, outcomes
from scenarios.rostering import AreaRoster, roster_for
from scenarios.theory import halfin_whitt_beta, square_root_staffing
from twin import kpis as twin_kpis
from twin.district import District
from twin.rota import MIN_REST_S, Rotation, min_rest_s
from twin.staff import DAY_S, Mode, Role, ShiftPlan

KPIS = (twin_kpis.ALL_TARGETS, twin_kpis.ON_SCENE, twin_kpis.RESPONDED, twin_kpis.REINFORCED, "no_wait")
#: Replication ids of the verification runs: streams the ISA never saw.
VERIFY_FROM = 1000
#: Replication ids of the confirmation of the people roster: streams nothing else saw.
CONFIRM_FROM = 2000
#: Employer's cost of one brigade or enforcement member a year, CNY: an assumption (pay of
#: 5,000-8,000 a month for auxiliary and contract staff in Hangzhou, plus about 35% social
#: insurance and housing fund; range 80,000-130,000; scenarios/xiaohe/README.md).
SALARY_PER_YEAR = 100_000.0


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
        reason: Why the target was not met, or why it does not bind.
        binds: Whether the target decides the size (``False``: the floor already meets it).
        rotation: The role's working pattern in the scenario (e.g. ``four_team``).
        teams: Its teams (4 for 四班三倒); each works every shift in turn.
        working_share: Share of days a member of it is rostered (0.75 for 四班三倒).
        pattern: The role's rotation itself.
        confirmed: The KPI of the people roster (:meth:`roster`) simulated as such, on
            replications neither the ISA nor the verification saw (``CONFIRM_FROM`` on).
        shifts: The shift times chosen (``[[shifts]]`` tables), or ``None``: the scenario's own.
        start_choices: Each shift start considered: ``offset_h`` (hours later than the
            scenario's), ``shifts`` (their times), ``allowed`` and ``why`` (the shortest rest
            a rotation in use leaves), ``positions`` and ``people`` (the ISA's hourly
            requirement cut into those shifts, rostered), ``chosen``.
    """

    role: str
    kpi: str
    target: float
    alpha: float
    table: dict[str, dict[str, int]]
    met: bool
    evaluations: list[Evaluation] = field(default_factory=list)
    reason: str = ""
    binds: bool = True
    rotation: str = ""
    teams: int = 1
    working_share: float = 1.0
    pattern: Rotation | None = None
    confirmed: Estimate | None = None
    shifts: list[dict[str, str]] | None = None
    start_choices: list[dict[str, Any]] = field(default_factory=list)

    def roster(self, table: Mapping[str, Mapping[str, int]] | None = None) -> list[AreaRoster]:
        """The people that staff ``table`` (default: the plan's) at least as well on every
        shift of every day: the role's rotation topped up with weekly five-day patterns,
        the fewest people (:mod:`scenarios.rostering`)."""
        table = self.table if table is None else table
        if self.pattern is None:
            raise ValueError("pattern: the plan does not know the role's rotation")
        return roster_for(table, self.pattern)

    def roster_overrides(self) -> dict[str, Any]:
        """Scenario overrides that put :meth:`roster` in place: the members of the role by area
        and working pattern (``staff.<role>.patterns``), the five-day patterns as rotations."""
        if self.pattern is None:
            raise ValueError("pattern: the plan does not know the role's rotation")
        from scenarios.rostering import candidate_patterns

        out: dict[str, Any] = {}
        rows = []
        for r in self.roster():
            pats = {p.code: p for p in candidate_patterns(self.pattern, list(self.table[r.area]))}
            for code, n in r.units.items():
                p = pats[code]
                name = self.rotation
                if p.week:
                    name = "_".join("".join(ch if ch.isalnum() else " " for ch in code).split())
                    out[f"rotations.{name}"] = {"kind": "weekly", "week": list(p.week)}
                rows.append({"area": r.area, "rotation": name, "people": n * p.people})
        return {**out, **self._shift_overrides(), f"staff.{self.role}.count": sum(row["people"] for row in rows),
                f"staff.{self.role}.patterns": rows}

    def reserve_overrides(self, reserve: Mapping[str, int]) -> dict[str, Any]:
        """:meth:`roster_overrides` with an on-call reserve (备勤): ``reserve`` people per area
        on the role's rotation as an ``on_call`` pattern, off the street until wartime calls
        them in (:meth:`twin.staff.Roster.for_mode`)."""
        if self.pattern is None:
            raise ValueError("pattern: the plan does not know the role's rotation")
        out = self.roster_overrides()
        name = f"{self.rotation}_on_call"
        rows: list[dict[str, Any]] = [{"area": a, "rotation": name, "people": n} for a, n in reserve.items() if n > 0]
        if not rows:
            return out
        out[f"rotations.{name}"] = {"kind": "cycles", "cycles": [[d or "" for d in c] for c in self.pattern.cycles],
                                    "on_call": True}
        out[f"staff.{self.role}.patterns"] = [*out[f"staff.{self.role}.patterns"], *rows]
        out[f"staff.{self.role}.count"] += sum(r["people"] for r in rows)
        return out

    def _shift_overrides(self) -> dict[str, Any]:
        return {} if self.shifts is None else {"shifts": self.shifts}

    def headcount(self) -> dict[str, int]:
        """People to employ per area (:meth:`roster`; the table's positions already allow for
        shrinkage, which the simulation applies to them)."""
        if self.pattern is None:
            return {a: self.teams * max(shifts.values(), default=0) for a, shifts in self.table.items()}
        return {r.area: r.people for r in self.roster()}

    def headcount_floor(self) -> int:
        """A lower bound of the people the positions need: the positions of a day over the
        rotation's working share (no pattern works more days; :meth:`headcount` is at least
        this)."""
        return math.ceil(self.total / self.working_share - 1e-9)

    @property
    def total(self) -> int:
        """Members in the plan."""
        return sum(n for shifts in self.table.values() for n in shifts.values())

    def people(self, table: Mapping[str, Mapping[str, int]]) -> int:
        """People a positions table takes (see :meth:`roster`)."""
        if self.pattern is None:
            return sum(self.teams * max(shifts.values(), default=0) for shifts in table.values())
        return sum(r.people for r in self.roster(table))

    def curve(self, salary_per_year: float = SALARY_PER_YEAR) -> list[dict[str, Any]]:
        """Cost/service curve, one point per evaluation, by people: positions a day, people
        with the role's rotation, their cost a year (``salary_per_year`` per person, the
        employer's whole cost), and the KPI (mean and 95% CI); ``efficient`` marks the points
        no cheaper point beats."""
        people = {id(e): self.people(e.table) for e in self.evaluations}
        points = sorted(self.evaluations, key=lambda e: (people[id(e)], -e.kpi.mean if math.isfinite(e.kpi.mean) else math.inf,
                                                          e.total))
        out, best, last = [], -math.inf, None
        for e in points:
            n = people[id(e)]
            # the best of its head count (the first at it), and better than every cheaper one
            efficient = n != last and e.kpi.mean > best
            if n != last:
                best, last = max(best, e.kpi.mean), n
            out.append({"step": e.step, "members": e.total, "people": n,
                        "cost_per_year": n * salary_per_year, "kpi": e.kpi.mean, "lo": e.kpi.lo,
                        "hi": e.kpi.hi, "efficient": efficient})
        return out

    def overrides(self) -> dict[str, Any]:
        """Scenario overrides that apply the plan."""
        return {**self._shift_overrides(), "roster.rotation_days": 0, f"staff.{self.role}.count": self.total,
                f"staff.{self.role}.per_area": self.table, f"staff.{self.role}.rotation": None,
                f"staff.{self.role}.shifts": self._codes()}

    def _codes(self) -> list[str]:
        return list(next(iter(self.table.values()), {}))

    def to_toml(self) -> str:
        """The plan as a ``scenario.toml`` fragment."""
        lines = []
        for sh in self.shifts or ():  # shift times chosen by the optimiser replace the scenario's
            lines += ["[[shifts]]", *(f'{k} = "{sh[k]}"' for k in ("code", "start", "end")), ""]
        lines += ["[roster]", "rotation_days = 0", "", f"[staff.{self.role}]", f"count = {self.total}",
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
    o = outcomes(c, stage=True)
    met, of = twin_kpis.all_targets(o) if kpi == twin_kpis.ALL_TARGETS else twin_kpis.masks(o)[kpi]
    n = int(of.sum())
    return float((met & of).sum()) / n if n else math.nan


def _replications(scenario: str, overrides: Mapping[str, Any], role: Role | None, days: float, seed: int,
                  ids: Sequence[int], warmup_days: float, mode: str = "peacetime") -> list[RunResult]:
    """Replications ``ids`` of a scenario variant (in this process, or as one Ray task)."""
    from scenarios.demand import DemandModel
    from scenarios.loader import load_cached
    from scenarios.model import ResponseParams

    district = load_cached(scenario, dict(overrides))
    district.roads.precompute_travel()
    return replicate(district, lambda ss: DemandModel(district, ss), days=days, seed=seed, replication_ids=ids,
                     warmup_days=warmup_days, sample_role=role, params=ResponseParams(mode=Mode(mode)))


def _simulate(scenario: str, overrides: Mapping[str, Any], *, role: Role, days: float, seed: int,
              replications: int, warmup_days: float, sample: bool, first: int = 0, backend: str = "local",
              mode: str = "peacetime") -> tuple[list[RunResult], list[list[tuple[float, dict[str, int]]]], District]:
    from scenarios.loader import load_cached

    district = load_cached(scenario, dict(overrides))
    ids = list(range(first, first + replications))
    sample_role = role if sample else None
    if backend == "ray":  # one task per replication; the same streams, whichever worker runs them
        from scenarios.ray_setup import init_ray

        ray = init_ray()
        task = ray.remote(num_cpus=1, max_retries=1)(_replications)
        refs = [task.remote(scenario, dict(overrides), sample_role, days, seed, [k], warmup_days, mode) for k in ids]
        runs = [run for part in ray.get(refs) for run in part]
    else:
        runs = _replications(scenario, overrides, sample_role, days, seed, ids, warmup_days, mode)
    return runs, [run.samples for run in runs], district


def _hourly(samples: list[list[tuple[float, dict[str, int]]]], areas: list[str], warmup_days: float
            ) -> dict[tuple[str, int], list[int]]:
    """Samples of the number in system per (area, hour of the week: day of week × 24 + hour),
    over replications (runs start on a Monday). Days of the week are kept apart: weekend
    demand differs, and a shift is staffed for its worst day."""
    out: dict[tuple[str, int], list[int]] = {(a, h): [] for a in areas for h in range(7 * 24)}
    for run in samples:
        for t, counts in run:
            if t < warmup_days * DAY_S:
                continue
            h = int(t // DAY_S) % 7 * 24 + int((t % DAY_S) // 3600)
            for a in areas:
                out[(a, h)].append(counts.get(a, 0))
    return out


def _table_from_hours(per_hour: Mapping[tuple[str, int], int], district: District, role: Role,
                      floor: Mapping[str, int], plan: ShiftPlan | None = None) -> dict[str, dict[str, int]]:
    """Members per area and shift: the most any hour of the shift (on any day) needs."""
    plan = plan or district.roster.plan
    codes = district.roster.role_shifts.get(role, tuple(s.code for s in plan))
    table: dict[str, dict[str, int]] = {}
    for area in (a.id for a in district.regions.areas):
        table[area] = {}
        for code in codes:
            shift = plan[code]
            hours = [d * 24 + h for d in range(7) for h in range(24) if shift.contains(h * 3600 + 1800)]
            table[area][code] = max(floor[code], max(per_hour.get((area, h), 0) for h in hours))
    return table


def _start_choices(per_hour: Mapping[tuple[str, int], int], district: District, role: Role, floor: Mapping[str, int],
                   offsets: Sequence[int], min_rest: float) -> list[dict[str, Any]]:
    """Each candidate shift start (:meth:`ShiftPlan.shifted` by ``offsets`` hours): whether
    every rotation in use leaves ``min_rest`` seconds between a team's shifts (the scenario's
    own times always do), and the positions and people its shifts need for ``per_hour``."""
    roster = district.roster
    rotations = {rot.code: rot for rot in roster.rotations.values()} | dict(roster.named)
    out = []
    for h in sorted(set(offsets) | {0}):  # the scenario's own times are always a choice
        plan = roster.plan.shifted(h)
        times = {sh.code: (sh.start_s, sh.duration_s) for sh in plan}
        rests = {name: min_rest_s(rot, times) for name, rot in rotations.items()}
        name, rest = min(rests.items(), key=lambda kv: kv[1])
        allowed = h == 0 or rest >= min_rest
        table = _table_from_hours(per_hour, district, role, floor, plan)
        out.append({"offset_h": h, "shifts": ", ".join(f"{sh['code']} {sh['start']}-{sh['end']}" for sh in plan.as_data()),
                    "allowed": allowed, "why": f"rotation {name} leaves {rest / 3600:g} h between shifts",
                    "positions": sum(n for row in table.values() for n in row.values()),
                    "people": sum(a.people for a in roster_for(table, roster.rotations[role])), "chosen": False})
    return out


def _trim(table: dict[str, dict[str, int]], evaluate: Callable[..., Any], *, target: float, floor: Mapping[str, int],
          samples: Any, areas: list[str], codes: tuple[str, ...], district: District, warmup_days: float,
          plan_args: tuple[str, str, float, float], evaluations: list[Evaluation], reps: int,
          max_tries: int) -> StaffingPlan:
    """Remove members, least-loaded cell first, while the verified KPI still meets the target."""
    hourly = _hourly(samples, areas, warmup_days)

    def load(a: str, c: str) -> float:
        hours = [d * 24 + h for d in range(7) for h in range(24) if district.roster.plan[c].contains(h * 3600 + 1800)]
        return max(float(np.mean(hourly[(a, h)])) if hourly[(a, h)] else 0.0 for h in hours) / max(table[a][c], 1)

    cells = sorted(((a, c) for a in areas for c in codes if table[a][c] > floor[c]), key=lambda ac: (load(*ac), ac))
    for tries, (a, c) in enumerate(cells):
        if tries >= max_tries:
            break
        trial = {x: dict(y) for x, y in table.items()}
        trial[a][c] -= 1
        est, _, _ = evaluate(f"trim-{tries}", trial, reps, sample=False, first=VERIFY_FROM)
        if est.lo >= target:
            table = trial
    return StaffingPlan(*plan_args, table, True, evaluations)


def optimise_staffing(
    scenario: str = "xiaohe",
    *,
    role: str = "co_governance",
    kpi: str = twin_kpis.ALL_TARGETS,
    target: float = 0.9,
    alpha: float = 0.1,
    days: float = 8.0,
    warmup_days: float = 1.0,
    replications: int = 3,
    verify_replications: int = 10,
    seed: int = 0,
    max_iterations: int = 6,
    max_bisections: int = 6,
    max_trims: int = 8,
    floor: int = 1,
    min_per_shift: Mapping[str, int] | None = None,
    shift_offsets: Sequence[int] = (0,),
    min_rest_h: float = MIN_REST_S / 3600,
    overrides: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    backend: str = "local",
    mode: str = "peacetime",
) -> StaffingPlan:
    """The fewest members of ``role`` per area and shift that meet ``target`` on ``kpi``,
    and the people that takes with the role's rotation (:meth:`StaffingPlan.headcount`).

    Every KPI is measured on the stage the role handles (from the escalation that brought an
    event to it, not the grid worker's reminder), over the events the role handled in the
    end. The plan is judged on replications the ISA never saw (``VERIFY_FROM`` on) and
    accepted on the lower 95% confidence bound, not the mean. When even ``floor`` members per
    area and shift meet the target, the plan says so: the target does not bind.

    Args:
        scenario: Scenario name or folder.
        role: ``co_governance`` or ``enforcement`` (roles staffed per area).
        kpi: ``met_1_3_5`` (every 1/3/5-minute target an event is counted for; the default),
            ``on_scene_within_180s``, ``responded_within_60s``, ``reinforced_within_300s`` or
            ``no_wait`` (dispatched to the role the moment its stage began).
        target: Share to reach (0-1).
        alpha: Delay probability the ISA staffs for (0-1).
        days: Days per simulation (8: every day of the week after a one-day warm-up).
        warmup_days: Warm-up left out.
        replications: Replications per ISA iteration.
        verify_replications: Replications when verifying (at least 10).
        seed: Root seed.
        max_iterations: ISA iterations at most.
        max_bisections: Halvings at most between the ISA's table and ample staff when the
            ISA's table falls short.
        max_trims: Removals tried at most once the target is met (the ISA is conservative:
            its criterion, all busy with probability ≤ alpha, is stricter than most KPIs).
        floor: Members per area and shift at least (24-hour cover).
        min_per_shift: More than ``floor`` on some shifts, e.g. ``{"night": 2}`` for
            two-person night patrols (members at fixed posts come on top).
        shift_offsets: Shift start times to choose among, as hours later than the scenario's
            (``range(0, 8)``: 00:00, 01:00, ... 07:00 for the first shift of 00:00-08:00). Each
            moves every shift, lengths kept; one is allowed when every rotation in use still
            leaves ``min_rest_h`` between a team's shifts. The one whose shifts need the fewest
            people for the ISA's hourly requirement is chosen (ties: the nearest the
            scenario's), then iterated, verified and trimmed as such (``plan.start_choices``).
        min_rest_h: Shortest rest between shifts a start time may leave (11 h: the EU Working
            Time Directive; the scenario's own times are always allowed).
        overrides: Other scenario overrides (kept in every evaluation).
        progress: Called with a line of text at each step.
        backend: ``local`` (this process) or ``ray`` (each replication a Ray task, on a local
            cluster started lean: the same results, in parallel).
        mode: ``peacetime``, or ``wartime`` (平战结合: every event on the 1/3/5-minute targets,
            the brigade first): the staff a surge needs; the difference from peacetime is
            the on-call reserve (:func:`surge_reserve`).

    Raises:
        ValueError: naming the argument when one is out of range.
    """
    def size() -> StaffingPlan:
        """The positions: the ISA, verified, trimmed (returns at its verdict)."""
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
        if backend not in ("local", "ray"):
            raise ValueError(f"backend: must be 'local' or 'ray', got {backend!r}")
        if mode not in ("peacetime", "wartime"):
            raise ValueError(f"mode: must be 'peacetime' or 'wartime', got {mode!r}")
        if not shift_offsets:
            raise ValueError("shift_offsets: give at least one (0: the scenario's shift times)")
        if min_rest_h < 0:
            raise ValueError(f"min_rest_h: must be >= 0, got {min_rest_h!r}")
        if verify_replications < 10:
            raise ValueError(f"verify_replications: at least 10 (the plan is accepted on a confidence bound), "
                             f"got {verify_replications!r}")
        say = progress or (lambda _msg: None)
        base: dict[str, Any] = {**(overrides or {}), "roster.rotation_days": 0}
        evaluations: list[Evaluation] = []

        def apply(table: dict[str, dict[str, int]]) -> dict[str, Any]:
            # Positions per area and shift, every day (the role's rotation set aside); shrinkage
            # and breaks still apply, so the table is of people rostered, not of people present.
            total = sum(n for s in table.values() for n in s.values())
            return {**base, f"staff.{role}.count": total, f"staff.{role}.per_area": table,
                    f"staff.{role}.rotation": None, f"staff.{role}.shifts": list(codes)}

        def evaluate(step: str, table: dict[str, dict[str, int]], reps: int, sample: bool, first: int = 0
                     ) -> tuple[Estimate, Any, District]:
            runs, samples, district = _simulate(scenario, apply(table), role=r, days=days, seed=seed,
                                                replications=reps, warmup_days=warmup_days, sample=sample, first=first,
                                                backend=backend, mode=mode)
            est = estimate((_role_kpi(run, role, kpi, warmup_days) for run in runs), bounds=(0.0, 1.0))
            evaluations.append(Evaluation(step, table, sum(n for s in table.values() for n in s.values()), est))
            say(f"{step}: {evaluations[-1].total} members, {kpi} {est.mean:.3f} [{est.lo:.3f}, {est.hi:.3f}]")
            return est, (runs, samples), district

        # 1. Offered load with ample staff: 3x the current head count, spread evenly.
        from scenarios.loader import load_cached

        current = load_cached(scenario, dict(overrides) if overrides else None)
        codes = current.roster.role_shifts.get(r, tuple(s.code for s in current.roster.plan))
        areas = [a.id for a in current.regions.areas]
        av = current.roster.availability  # ample after leave, breaks and fixed posts too
        ample_n = max(floor + 2, math.ceil(3 * len(current.members(r)) / (len(areas) * len(codes)) / (1 - av.shrinkage))) \
            + sum(p.per_area for p in av.posts if p.role == role) + (1 if av.meal_break_s else 0)
        longest = min(s.duration_s for s in current.roster.plan) // 3600
        bad = [h for h in shift_offsets if not -longest < h < longest]
        if bad:
            raise ValueError(f"shift_offsets: {bad} hour(s) out of range; moves of -{longest - 1}..{longest - 1} hours "
                             "keep every shift in its place in the day")
        unknown = sorted(set(min_per_shift or {}) - set(codes))
        if unknown:
            raise ValueError(f"min_per_shift: unknown shift(s) {unknown}; the role works {', '.join(codes)}")
        at_posts = sum(p.per_area for p in av.posts if p.role == role)
        least = {a: {c: max(floor, (min_per_shift or {}).get(c, floor)) + at_posts for c in codes} for a in areas}
        ample = {a: {c: max(ample_n, least[a][c] + 1) for c in codes} for a in areas}
        ample_kpi, (_, samples), district = evaluate("ample", ample, replications, sample=True)
        plan_args = (role, kpi, target, alpha)
        if ample_kpi.mean < target:
            # Staff cannot buy it: travel and signing times bound the KPI, not queueing.
            say(f"target unreachable: with {sum(n for s in ample.values() for n in s.values())} members "
                f"{kpi} is only {ample_kpi.mean:.3f}")
            return StaffingPlan(*plan_args, ample, False, evaluations,
                                reason=f"unreachable: {kpi} reaches only {ample_kpi.mean:.3f} even with "
                                       f"{ample_n} members per area and shift (travel and signing bound it)")
        # 2. Does the target bind at all? The floor, judged on fresh replications.
        least_kpi, _, _ = evaluate("floor", least, verify_replications, sample=False, first=VERIFY_FROM)
        if least_kpi.lo >= target:
            say(f"the target does not bind: {sum(n for s in least.values() for n in s.values())} members meet it")
            return StaffingPlan(*plan_args, least, True, evaluations, binds=False,
                                reason=f"the target does not bind: {kpi} is {least_kpi.mean:.3f} (lower bound "
                                       f"{least_kpi.lo:.3f}) with the floor ("
                                       + ", ".join(f"{c} {n}" for c, n in least[areas[0]].items())
                                       + " per area, minimum staffing and fixed posts included); ask for more (a "
                                       "higher target, a tighter KPI) to size the team")
        floors = least[areas[0]]  # minimum staffing and fixed posts are constraints: per shift, in every area
        hourly = _hourly(samples, areas, warmup_days)
        # 3. Warm start from theory: square-root staffing on the offered load per hour.
        beta = halfin_whitt_beta(alpha)
        table = _table_from_hours({k: square_root_staffing(float(np.mean(v)) if v else 0.0, beta) for k, v in hourly.items()},
                                  district, r, floors)
        # 4. ISA iterations.
        def isa(table: dict[str, dict[str, int]]) -> tuple[dict[str, dict[str, int]], dict[tuple[str, int], int]]:
            per_hour: dict[tuple[str, int], int] = {}
            for it in range(1, max_iterations + 1):
                _, (_, samples), district = evaluate(f"isa-{it}", table, replications, sample=True)
                for key, values in _hourly(samples, areas, warmup_days).items():
                    v = np.asarray(values)
                    n = 0
                    while len(v) and np.mean(v >= n) > alpha:
                        n += 1
                    per_hour[key] = n
                new = _table_from_hours(per_hour, district, r, floors)
                if new == table:
                    return table, per_hour
                table = new
            say(f"the ISA did not settle in {max_iterations} iterations; verifying its last table")
            return table, per_hour

        table, per_hour = isa(table)
        # 4b. Shift start times, where the rotations allow: the hourly requirement cut into each
        #     candidate's shifts and rostered; the fewest people win, then the ISA settles there.
        if list(shift_offsets) != [0]:
            choices = _start_choices(per_hour, current, r, floors, shift_offsets, min_rest_h * 3600)
            chosen = min((c for c in choices if c["allowed"]), key=lambda c: (c["people"], abs(c["offset_h"]), c["offset_h"]))
            chosen["chosen"] = True
            start_choices[:] = choices
            for c in choices:
                say(f"shifts {c['shifts']}: " + (f"{c['positions']} positions, {c['people']} people"
                                                  if c["allowed"] else f"not allowed ({c['why']})")
                    + (" <- chosen" if c["chosen"] else ""))
            if chosen["offset_h"] != 0:
                moved = current.roster.plan.shifted(chosen["offset_h"])
                base["shifts"] = chosen_shifts[:] = moved.as_data()
                table, _ = isa(_table_from_hours(per_hour, current, r, floors, moved))
        # 5. Verify on fresh replications; if short, search between the ISA's table and ample
        #    staff (every cell moved the same share of the way) for the smallest that holds: a
        #    KPI bound by travel rises slowly with staff, one member at a time would take long.
        est, (_, samples), district = evaluate("verify", table, verify_replications, sample=True, first=VERIFY_FROM)
        if est.lo < target:
            top_est, (_, top_samples), top_district = evaluate("verify-ample", ample, verify_replications, sample=True,
                                                               first=VERIFY_FROM)
            if top_est.lo < target:
                return StaffingPlan(*plan_args, ample, False, evaluations,
                                    reason=f"{kpi} reaches {top_est.mean:.3f} (lower bound {top_est.lo:.3f}) even with "
                                           f"{ample_n} members per area and shift: not reliably {target:.3f}")
            short, enough = table, ample
            best = (ample, top_samples, top_district)
            lo_f, hi_f = 0.0, 1.0
            for step in range(max_bisections):
                f = (lo_f + hi_f) / 2
                trial = {a: {c: table[a][c] + math.ceil(f * (ample[a][c] - table[a][c])) for c in codes} for a in areas}
                if trial in (short, enough):
                    break
                est, (_, s_), d_ = evaluate(f"between-{step}", trial, verify_replications, sample=True, first=VERIFY_FROM)
                if est.lo >= target:
                    hi_f, enough, best = f, trial, (trial, s_, d_)
                else:
                    lo_f, short = f, trial
            table, samples, district = best
        return _trim(table, evaluate, target=target, floor=floors, samples=samples, areas=areas, codes=codes,
                     district=district, warmup_days=warmup_days, plan_args=plan_args, evaluations=evaluations,
                     reps=verify_replications, max_tries=max_trims)

    start_choices: list[dict[str, Any]] = []
    chosen_shifts: list[dict[str, str]] = []
    plan = size()
    plan.start_choices, plan.shifts = start_choices, chosen_shifts or None
    from scenarios.loader import load_cached

    rot = load_cached(scenario, dict(overrides) if overrides else None).roster.rotations[Role(role)]
    plan.rotation, plan.teams, plan.working_share, plan.pattern = rot.code, rot.teams, rot.working_share(), rot
    if plan.met:
        # The roster of people, simulated as it would work (teams and five-day patterns), on
        # fresh replications: the plan's claim, checked.
        plan.confirmed = confirm(scenario, plan, {**(overrides or {}), **plan.roster_overrides()}, days=days, seed=seed,
                                 replications=verify_replications, warmup_days=warmup_days, backend=backend, mode=mode)
        if progress is not None:
            c = plan.confirmed
            progress(f"confirm: {sum(plan.headcount().values())} people on their patterns, {kpi} {c.mean:.3f} "
                     f"[{c.lo:.3f}, {c.hi:.3f}]")
    return plan


def confirm(scenario: str, plan: StaffingPlan, overrides: Mapping[str, Any], *, days: float, seed: int,
            replications: int, warmup_days: float, backend: str = "local", mode: str = "peacetime") -> Estimate:
    """The plan's KPI for its role with the scenario as ``overrides`` make it (a people roster),
    on replications nothing else saw (``CONFIRM_FROM`` on)."""
    runs, _, _ = _simulate(scenario, overrides, role=Role(plan.role), days=days, seed=seed, replications=replications,
                           warmup_days=warmup_days, sample=False, first=CONFIRM_FROM, backend=backend, mode=mode)
    return estimate((_role_kpi(run, plan.role, plan.kpi, warmup_days) for run in runs), bounds=(0.0, 1.0))


def surge_reserve(peacetime: StaffingPlan, wartime: StaffingPlan) -> dict[str, int]:
    """People per area to keep on call for wartime (平战结合): what the wartime plan needs
    beyond the peacetime one (never negative)."""
    war, peace = wartime.headcount(), peacetime.headcount()
    return {a: max(0, war.get(a, 0) - peace.get(a, 0)) for a in sorted(set(war) | set(peace))}


def plan_answer(plan: StaffingPlan, *, salary_per_year: float = SALARY_PER_YEAR) -> dict[str, Any]:
    """A plan as JSON (what ``streetbrain staff --json`` and ``POST /api/v1/staffing`` give):
    the verdict, positions per area and shift, people per area (the roster when the target is
    met, else the positions' headcount), and the cost/service curve."""
    rosters = plan.roster() if plan.met and plan.pattern is not None else []
    people = {r.area: r.people for r in rosters} if rosters else plan.headcount()
    return {"role": plan.role, "kpi": plan.kpi, "target": plan.target, "met": plan.met, "shifts": plan.shifts,
            "start_choices": plan.start_choices, "binds": plan.binds, "reason": plan.reason,
            "positions": plan.total, "per_area": plan.table, "rotation": plan.rotation, "headcount": people,
            "patterns": {r.area: r.units for r in rosters},
            "confirmed": None if plan.confirmed is None else plan.confirmed.to_dict(),
            "headcount_total": sum(people.values()), "headcount_floor": plan.headcount_floor(),
            "curve": plan.curve(salary_per_year)}
