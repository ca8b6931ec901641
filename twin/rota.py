"""Working patterns and availability: who of a role's members actually stands on the street.

A role's **rotation** (:class:`Rotation`) says which shift each of its teams works on each
day, or that the day is off: 四班三倒 (four teams over three shifts, two days on each and
two off), fixed weekday day shifts, part-time patterns, or any cycle given as data. Of the
members rostered for a shift, **availability** (:class:`Availability`) takes away those on
leave, training or sick (the *shrinkage*, drawn in spells of days), those on their meal
break (staggered inside the shift) and those standing at a **fixed post** (:class:`Post`:
school gates at arrival and departure, markets). The roster (:class:`twin.staff.Roster`)
combines them; both engines ask it who is available.

Everything here is a pure function of the date, the time of day and the member: no random
state. Absences come from a keyed hash of ``(seed, member, spell)``, so the live twin and
every simulation of the same roster agree on who is away on which day.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from twin.errors import ValidationError

DAY_S = 86_400
#: Date ordinal of a Monday (``date(1, 1, 1)``): weekly cycles anchored here start on Mondays.
MONDAY = 1
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Rotation:
    """A working pattern: each team's cycle of days, a shift code or ``None`` (day off).

    Team ``t`` works ``cycles[t][(day - anchor) % len(cycles[t])]`` on the local date with
    ordinal ``day`` (the date its shift starts). Build one with :meth:`continuous`,
    :meth:`weekly` or :meth:`fixed`, or give the cycles as data.

    Args:
        code: The pattern's name.
        cycles: One cycle per team.
        anchor: The date ordinal on which every cycle's day 0 falls (:data:`MONDAY`: weekly
            cycles follow the days of the week).
        on_call: The pattern is on call (备勤): its members, when rostered, wait off the street
            and come on duty only when called in (wartime, :meth:`twin.staff.Roster.for_mode`).
    """

    code: str
    cycles: tuple[tuple[str | None, ...], ...]
    anchor: int = MONDAY
    on_call: bool = False

    def __post_init__(self) -> None:
        if not self.cycles or any(not c for c in self.cycles):
            raise ValidationError(f"rotations.{self.code}", "needs at least one team with a cycle of at least one day")
        if all(s is None for c in self.cycles for s in c):
            raise ValidationError(f"rotations.{self.code}", "every day of every team is off")

    @property
    def teams(self) -> int:
        """Number of teams."""
        return len(self.cycles)

    def shift_on(self, team: int, day: int) -> str | None:
        """The shift team ``team`` (taken modulo the number of teams) works on date ordinal
        ``day``, or ``None`` on a day off."""
        cycle = self.cycles[team % len(self.cycles)]
        return cycle[(day - self.anchor) % len(cycle)]

    def shift_codes(self) -> set[str]:
        """Every shift code the pattern uses."""
        return {s for c in self.cycles for s in c if s is not None}

    def working_share(self, team: int | None = None) -> float:
        """Share of days on duty, for one team or on average over the teams."""
        cycles = self.cycles if team is None else (self.cycles[team % len(self.cycles)],)
        return sum(sum(s is not None for s in c) / len(c) for c in cycles) / len(cycles)

    def hours_per_week(self, shift_hours: dict[str, float], team: int | None = None) -> float:
        """Rostered hours per week (before shrinkage), for one team or on average.

        Args:
            shift_hours: Length of each shift, hours.
            team: A team, or ``None`` for the average over the teams.
        """
        cycles = self.cycles if team is None else (self.cycles[team % len(self.cycles)],)
        return sum(7.0 * sum(shift_hours[s] for s in c if s is not None) / len(c) for c in cycles) / len(cycles)

    def teams_on(self, code: str, day: int) -> list[int]:
        """The teams that work shift ``code`` on date ordinal ``day``."""
        return [t for t in range(self.teams) if self.shift_on(t, day) == code]

    @classmethod
    def continuous(cls, code: str, shifts: Sequence[str], *, days_on: int = 2, days_off: int = 2,
                   anchor: int = MONDAY) -> Rotation:
        """Teams rotating forward through ``shifts`` (given in order of their start in the
        day, e.g. night 00-08, day 08-16, evening 16-24), ``days_on`` days on each, then
        ``days_off`` days off; team ``k`` runs ``k * days_on`` days ahead, so every shift has
        one team on it every day. Forward rotation in the order of the day leaves at least
        16 hours between shifts (24 at a change of shift). Three shifts, two on and two
        off: 四班三倒, four teams, 42 hours a week.

        Raises:
            ValidationError: the cycle cannot be split evenly into teams.
        """
        if days_on < 1 or days_off < 0:
            raise ValidationError(f"rotations.{code}", "days_on must be >= 1 and days_off >= 0")
        if not shifts:
            raise ValidationError(f"rotations.{code}.shifts", "name at least one shift")
        base: list[str | None] = [s for s in shifts for _ in range(days_on)] + [None] * days_off
        if len(base) % days_on:
            raise ValidationError(f"rotations.{code}.days_off", f"{days_off} days off with {days_on} days on each "
                                  "shift: the cycle must split into whole teams (days_off a multiple of days_on)")
        teams = len(base) // days_on
        return cls(code, tuple(tuple(base[(i + k * days_on) % len(base)] for i in range(len(base)))
                               for k in range(teams)), anchor)

    @classmethod
    def weekly(cls, code: str, week: Sequence[str | None], *, teams: int = 1) -> Rotation:
        """The same week for every team: ``week`` gives Monday..Sunday (``None`` or ``""``:
        off), e.g. a weekday day shift or a part-time pattern."""
        if len(week) != 7:
            raise ValidationError(f"rotations.{code}.week", f"must give 7 days, Monday to Sunday, got {len(week)}")
        days = tuple(s or None for s in week)
        return cls(code, tuple(days for _ in range(max(1, teams))), MONDAY)

    @classmethod
    def fixed(cls, code: str, shifts: Sequence[str], *, rotation_days: int = 0) -> Rotation:
        """Every day on duty, team ``k`` on ``shifts[k]``, rotating to the next shift every
        ``rotation_days`` days (0: never): the roster before rotations were data, 56 hours a
        week on eight-hour shifts."""
        if rotation_days <= 0:
            return cls(code, tuple((s,) for s in shifts), 0)
        base = [s for s in shifts for _ in range(rotation_days)]
        n = len(base)
        return cls(code, tuple(tuple(base[(i + k * rotation_days) % n] for i in range(n))
                               for k in range(len(shifts))), 0)


#: Shortest rest between two shifts a rotation may leave when shift times are chosen: 11
#: consecutive hours in each 24 (EU Working Time Directive 2003/88/EC, art. 3; China's labour
#: law sets no daily rest, so the European minimum is the assumption).
MIN_REST_S = 11 * 3600


def min_rest_s(rotation: Rotation, shifts: Mapping[str, tuple[int, int]]) -> float:
    """The shortest rest (seconds) any team of ``rotation`` has between the end of one shift
    and the start of its next, over its cycle and the turn into the next cycle; ``inf`` when
    no team works twice. Negative: a team's shifts overlap.

    Args:
        rotation: The working pattern.
        shifts: ``(start, duration)`` in seconds of each shift code; a shift belongs to the
            date it starts on.
    """
    best = math.inf
    for cycle in rotation.cycles:
        n = len(cycle)
        worked = [(d, s) for d, s in enumerate(cycle) if s is not None]
        seq = worked + [(d + n, s) for d, s in worked]
        for (d1, s1), (d2, s2) in zip(seq, seq[1:len(worked) + 1]):
            start1, dur1 = shifts[s1]
            best = min(best, d2 * DAY_S + shifts[s2][0] - (d1 * DAY_S + start1 + dur1))
    return best


@dataclass(frozen=True)
class Post:
    """A fixed duty that takes members off dispatch at set hours (护校安园 school gates,
    markets): in each area, ``per_area`` on-duty members of ``role`` stand at the post.

    Args:
        name: What the post is.
        role: The role that staffs it.
        per_area: Members per area while it is staffed.
        windows: ``(start, end)`` seconds after local midnight, within one day.
        days: Days of the week it is staffed (0 Monday .. 6 Sunday).
    """

    name: str
    role: str
    per_area: int
    windows: tuple[tuple[int, int], ...]
    days: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if self.per_area < 1:
            raise ValidationError(f"posts.{self.name}.per_area", "must be >= 1")
        if not self.windows:
            raise ValidationError(f"posts.{self.name}.windows", "give at least one window")
        for a, b in self.windows:
            if not (0 <= a < b <= DAY_S):
                raise ValidationError(f"posts.{self.name}.windows", "each window is HH:MM-HH:MM within one day, start "
                                      "before end")

    def staffed(self, weekday: int, second: float) -> bool:
        """Whether the post is staffed at a local time of day on a day of the week."""
        return weekday in self.days and any(a <= second < b for a, b in self.windows)


@dataclass(frozen=True)
class Availability:
    """What takes rostered members off the street.

    Args:
        shrinkage: Share of rostered shifts lost to leave, training and sickness.
        spell_days: Absences come in spells of this many days (leave is taken in blocks; a
            spell is the same days for everyone, its draw each member's own).
        seed: Key of the absence draws.
        meal_break_s: Length of each member's meal break, seconds (0: none).
        break_window: ``(from, to)`` seconds after the shift's start within which breaks
            are staggered: one slot of ``meal_break_s`` per member, in turn over each
            role's crew, area by area.
        posts: Fixed posts.
    """

    shrinkage: float = 0.0
    spell_days: int = 1
    seed: int = 0
    meal_break_s: int = 0
    break_window: tuple[int, int] = (3 * 3600, 5 * 3600)
    posts: tuple[Post, ...] = field(default=())

    def __post_init__(self) -> None:
        if not (0.0 <= self.shrinkage < 1.0):
            raise ValidationError("roster.shrinkage", "must be a share in [0, 1)")
        if self.spell_days < 1:
            raise ValidationError("roster.absence_spell_days", "must be >= 1")
        if self.meal_break_s < 0:
            raise ValidationError("roster.meal_break_min", "must be >= 0")
        lo, hi = self.break_window
        if self.meal_break_s and not (lo >= 0 and lo + self.meal_break_s <= hi):
            raise ValidationError("roster.meal_break_window", "must hold at least one break, after the shift starts")

    @property
    def break_slots(self) -> int:
        """How many staggered break slots the window holds."""
        if not self.meal_break_s:
            return 0
        lo, hi = self.break_window
        return max(1, (hi - lo) // self.meal_break_s)

    def absent(self, member_id: str, day: int) -> bool:
        """Whether ``member_id`` is away (leave, training, sickness) on date ordinal ``day``."""
        if self.shrinkage <= 0.0:
            return False
        spell = day // self.spell_days
        h = hashlib.blake2b(f"{self.seed}:{member_id}:{spell}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big") / 2.0**64 < self.shrinkage

    def break_of(self, slot: int, shift_s: int) -> tuple[int, int] | None:
        """``(start, end)`` seconds after the shift's start of the meal break of the member in
        break slot ``slot``, or ``None`` (no breaks, or a shift too short for one)."""
        n = self.break_slots
        if not n:
            return None
        start = self.break_window[0] + (slot % n) * self.meal_break_s
        end = start + self.meal_break_s
        return (start, end) if end <= shift_s else None


def headcount(positions: float, *, working_share: float, shrinkage: float) -> int:
    """People to employ so that ``positions`` are filled on average: positions per shift
    times the shifts of a day, over the share of days a person works, over what is left
    after shrinkage (e.g. 四班三倒 works 6 days in 8). Rounded up.

    Args:
        positions: Positions to fill, summed over the day's shifts.
        working_share: Share of days a person is rostered (:meth:`Rotation.working_share`).
        shrinkage: Share of rostered shifts lost to leave, training and sickness.
    """
    if not (0 < working_share <= 1):
        raise ValidationError("working_share", "must be in (0, 1]")
    if not (0 <= shrinkage < 1):
        raise ValidationError("shrinkage", "must be in [0, 1)")
    return math.ceil(positions / working_share / (1.0 - shrinkage) - 1e-9)


def parse_week_days(spec: str | Sequence[str], what: str) -> frozenset[int]:
    """``"mon-fri"``, ``"all"``, ``"sat,sun"`` or a list of day names → weekday numbers."""
    if isinstance(spec, str):
        spec = spec.strip().lower()
        if spec in ("all", "daily", "every day"):
            return frozenset(range(7))
        parts: Sequence[str] = [p.strip() for p in spec.split(",") if p.strip()]
    else:
        parts = [str(p).strip().lower() for p in spec]
    out: set[int] = set()
    for p in parts:
        if "-" in p:
            a, b = p.split("-", 1)
            if a not in WEEKDAYS or b not in WEEKDAYS:
                raise ValidationError(what, f"'{p}': days are {', '.join(WEEKDAYS)}")
            i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
            out.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        elif p in WEEKDAYS:
            out.add(WEEKDAYS.index(p))
        else:
            raise ValidationError(what, f"'{p}': days are {', '.join(WEEKDAYS)}")
    if not out:
        raise ValidationError(what, "name at least one day")
    return frozenset(out)
