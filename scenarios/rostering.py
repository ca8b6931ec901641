"""From positions to people: the shift-scheduling step of staffing.

The staffing optimiser (:mod:`scenarios.staffing`) says how many members each area needs on
each shift, verified by simulation. This step chooses the working patterns that put at
least that many people on every shift of every day of the week, at the least cost: a
set-covering integer programme (Dantzig 1954; Segal 1974; the second stage of Green,
Kolesar & Whitt 2007), solved with ``scipy.optimize.milp``.

The candidates are the role's rotation (a *unit* of it is one person in each of its teams,
who together cover every shift of every day: four people for 四班三倒) and weekly
five-days-on patterns on one shift with two consecutive days off (40 hours a week), one
for each shift and each pair of days off: they top up the shifts and days where the table
asks for more than the rotation gives. Every (day, shift) ends up covered at least as well
as in the verified table, so the verification carries over: more people on duty at every
moment, each away (shrinkage) as often as the simulated positions were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twin.rota import WEEKDAYS, Rotation


@dataclass(frozen=True)
class Pattern:
    """A way to employ people: which (day of week, shift) one unit of it covers.

    Attributes:
        code: Its name (``four_team``, ``day 5/2 off sat-sun``).
        covers: The (day of week 0-6, shift code) one unit staffs with one person.
        people: People in one unit (the teams of a rotation; 1 for a weekly pattern).
        week: For a weekly pattern, the shift (or ``""``: off) of each day, Monday first.
    """

    code: str
    covers: frozenset[tuple[int, str]]
    people: int
    week: tuple[str, ...] = ()


def candidate_patterns(rotation: Rotation, shifts: Sequence[str]) -> list[Pattern]:
    """The rotation (if it covers every shift of every day, team by team) and the weekly
    five-on, two-off patterns on each shift."""
    out = []
    codes = set(shifts)
    full = {(d, s) for d in range(7) for s in shifts}
    # Does the rotation put exactly one team on each shift each day (over its cycle)?
    cycle = max(len(c) for c in rotation.cycles)
    one_each = all(len(rotation.teams_on(s, day)) == 1 for s in shifts for day in range(1, 1 + cycle))
    if one_each and rotation.shift_codes() == codes:
        out.append(Pattern(rotation.code, frozenset(full), rotation.teams))
    for s in shifts:
        for off in range(7):  # the first of two consecutive days off
            days_off = {off, (off + 1) % 7}
            week = tuple("" if d in days_off else s for d in range(7))
            out.append(Pattern(f"{s} 5/2, off {WEEKDAYS[off]}-{WEEKDAYS[(off + 1) % 7]}",
                               frozenset((d, s) for d in range(7) if d not in days_off), 1, week))
    return out


def schedule(requirement: Mapping[tuple[int, str], int], patterns: Sequence[Pattern], *,
             cost: Mapping[str, float] | None = None) -> dict[str, int]:
    """The fewest people (or the cheapest, with ``cost`` per person of a pattern) whose
    patterns staff every (day of week, shift) at least as ``requirement`` asks.

    Returns:
        Units of each pattern used (patterns not used are left out).

    Raises:
        ValueError: a requirement no pattern covers.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    cells = sorted(k for k, v in requirement.items() if v > 0)
    if not cells:
        return {}
    for cell in cells:
        if not any(cell in p.covers for p in patterns):
            raise ValueError(f"requirement: no pattern covers {WEEKDAYS[cell[0]]} {cell[1]}")
    a = np.array([[1.0 if cell in p.covers else 0.0 for p in patterns] for cell in cells])
    need = np.array([float(requirement[cell]) for cell in cells])
    c = np.array([p.people * (cost or {}).get(p.code, 1.0) for p in patterns])
    # A tiny preference for the rotation over weekly patterns at equal cost (fewer people
    # on odd hours is not the aim; ties go to the team pattern).
    c = c + np.array([0.0 if not p.week else 1e-6 for p in patterns])
    res = milp(c, constraints=LinearConstraint(a, lb=need, ub=np.inf), integrality=np.ones(len(patterns)),
               bounds=Bounds(0, np.inf))
    if not res.success:  # pragma: no cover - a covering problem with non-negative data is feasible
        raise ValueError(f"the shift-scheduling programme failed: {res.message}")
    return {p.code: int(round(x)) for p, x in zip(patterns, res.x) if round(x) > 0}


@dataclass(frozen=True)
class AreaRoster:
    """One area's people by pattern, and what that puts on each shift of the week."""

    area: str
    units: dict[str, int]
    people: int
    on_duty: dict[tuple[int, str], int]


def roster_for(table: Mapping[str, Mapping[str, int]], rotation: Rotation, *,
               cost: Mapping[str, float] | None = None) -> list[AreaRoster]:
    """Per area, the patterns that cover a positions table (the same every day of the week)."""
    out = []
    for area, shifts in table.items():
        codes = list(shifts)
        patterns = candidate_patterns(rotation, codes)
        req = {(d, s): int(n) for d in range(7) for s, n in shifts.items()}
        units = schedule(req, patterns, cost=cost)
        by_code = {p.code: p for p in patterns}
        on: dict[tuple[int, str], int] = {k: 0 for k in req}
        for code, n in units.items():
            for cell in by_code[code].covers:
                on[cell] += n
        out.append(AreaRoster(area, units, sum(by_code[c].people * n for c, n in units.items()), on))
    return out


def hours_per_week(units: Mapping[str, int], patterns: Sequence[Pattern], shift_hours: Mapping[str, float]) -> float:
    """Average rostered hours a week per person of a schedule (before shrinkage)."""
    by_code = {p.code: p for p in patterns}
    people = sum(by_code[c].people * n for c, n in units.items())
    hours = sum(n * sum(shift_hours[s] for _, s in by_code[c].covers) for c, n in units.items())
    return hours / people if people else math.nan
