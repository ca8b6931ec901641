"""The three teams: members, squads, the 24-hour three-shift roster, peacetime and wartime.

The case study: every road has a responsible squad and assigned members, working 24 hours
in three shifts; in peacetime fixed people, posts and duties, in wartime immediate
emergency mode. Members of each role are spread over that role's shifts; with
``rotation_days`` > 0 the assignment rotates so that nobody works nights for ever.

Times are POSIX seconds (``now``); shifts are local wall-clock times in the district's time
zone. A shift covers ``[start, end)``: at 08:00:00 sharp the day shift is on and the night
shift is off.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twin.errors import NotFound, ValidationError
from twin.geo import TravelMode

DAY_S = 86_400


class Role(str, Enum):
    """Roles of members of the three teams."""

    GRID_LEADER = "grid_leader"
    GRID_WORKER = "grid_worker"
    GRID_INSTRUCTOR = "grid_instructor"
    CO_GOVERNANCE = "co_governance"
    ENFORCEMENT = "enforcement"


#: The escalation ladder, lowest tier first (grid worker → co-governance → enforcement).
HANDLER_LADDER: tuple[Role, ...] = (Role.GRID_WORKER, Role.CO_GOVERNANCE, Role.ENFORCEMENT)


class Mode(str, Enum):
    """Operating mode (平战结合): fixed posts in peacetime, emergency mode in wartime."""

    PEACETIME = "peacetime"
    WARTIME = "wartime"


@dataclass(frozen=True)
class Shift:
    """One shift of the day, ``[start_s, end_s)`` in seconds after local midnight.

    A shift may wrap past midnight (``end_s <= start_s``, e.g. 22:00-06:00).

    Args:
        code: Short name (``day``, ``evening``, ``night``).
        start_s: Start, seconds after local midnight, 0-86399.
        end_s: End, seconds after local midnight, 0-86400.
    """

    code: str
    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if not (0 <= self.start_s < DAY_S):
            raise ValidationError(f"shifts.{self.code}.start", "must be a time of day 00:00-23:59")
        if not (0 <= self.end_s <= DAY_S):
            raise ValidationError(f"shifts.{self.code}.end", "must be a time of day 00:00-24:00")
        if self.end_s == self.start_s:
            raise ValidationError(f"shifts.{self.code}.end", "a shift cannot start and end at the same time")

    @property
    def duration_s(self) -> int:
        """Length of the shift, seconds."""
        return (self.end_s - self.start_s) % DAY_S or DAY_S

    def contains(self, second_of_day: float) -> bool:
        """Whether a local time of day (seconds after midnight) falls in this shift."""
        offset = (second_of_day - self.start_s) % DAY_S
        return offset < self.duration_s


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


class ShiftPlan:
    """The shifts of a day; together they cover 24 hours with no gap and no overlap.

    Args:
        shifts: The shifts, in any order.

    Raises:
        ValidationError: naming the shifts between which a gap or an overlap lies.
    """

    def __init__(self, shifts: Iterable[Shift]) -> None:
        ordered = sorted(shifts, key=lambda s: s.start_s)
        if not ordered:
            raise ValidationError("shifts", "at least one shift is required")
        codes = [s.code for s in ordered]
        if len(set(codes)) != len(codes):
            raise ValidationError("shifts", f"duplicate shift codes in {codes}")
        for a, b in zip(ordered, ordered[1:] + ordered[:1]):
            end = a.end_s % DAY_S
            if end != b.start_s:
                what = "gap" if (b.start_s - end) % DAY_S < (end - b.start_s) % DAY_S else "overlap"
                raise ValidationError(
                    f"shifts.{a.code}.end",
                    f"{what} between shift '{a.code}' (ends {_hhmm(end)}) and shift "
                    f"'{b.code}' (starts {_hhmm(b.start_s)}): shifts must cover 24 hours "
                    f"exactly, each starting when the previous one ends")
        if sum(s.duration_s for s in ordered) != DAY_S:
            raise ValidationError("shifts", "shifts overlap: together they exceed 24 hours")
        self.shifts: tuple[Shift, ...] = tuple(ordered)
        self._by_code = {s.code: s for s in ordered}

    def __iter__(self) -> Iterator[Shift]:
        return iter(self.shifts)

    def __len__(self) -> int:
        return len(self.shifts)

    def __getitem__(self, code: str) -> Shift:
        try:
            return self._by_code[code]
        except KeyError:
            raise NotFound("shift", code) from None

    def at(self, second_of_day: float) -> Shift:
        """The shift in force at a local time of day."""
        for shift in self.shifts:
            if shift.contains(second_of_day):
                return shift
        raise AssertionError("unreachable: shifts cover the day")  # pragma: no cover


@dataclass(frozen=True)
class Member:
    """A member of one of the three teams.

    Args:
        id: Unique member id.
        name: Display name.
        role: Their role.
        area_id: The area (片区) they serve.
        squad_id: The squad they belong to.
        grid_ids: Grids they are responsible for (grid workers, leaders, instructors).
        shift_slot: Index into their role's shift list (before rotation).
        post_node: Routing node of their post (where they wait in peacetime).
        travel_mode: How they move.
    """

    id: str
    name: str
    role: Role
    area_id: str
    squad_id: str
    grid_ids: tuple[str, ...]
    shift_slot: int
    post_node: int
    travel_mode: TravelMode


@dataclass(frozen=True)
class Squad:
    """A road squad (班组): answers for every road segment of its areas, around the clock.

    Args:
        id: Unique squad id.
        name: Display name.
        area_ids: Areas whose roads it is responsible for.
    """

    id: str
    name: str
    area_ids: tuple[str, ...]


class Roster:
    """Who is on duty when: the three-shift roster of every member.

    Args:
        members: All members.
        plan: The shifts of the day.
        role_shifts: For each role, the shift codes its members are spread over (a role
            absent here works every shift, e.g. nobody; see :meth:`on_duty`).
        timezone_name: IANA time zone of the district (``Asia/Shanghai``).
        rotation_days: Rotate each member to their role's next shift every this many days
            (0: fixed shifts).
        handover_s: Length of the handover overlap at the start of a shift, seconds: the
            outgoing member stays on duty for open work that long.
    """

    def __init__(
        self,
        members: Sequence[Member],
        plan: ShiftPlan,
        role_shifts: dict[Role, tuple[str, ...]],
        *,
        timezone_name: str = "Asia/Shanghai",
        rotation_days: int = 0,
        handover_s: int = 0,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("timezone", f"unknown IANA time zone '{timezone_name}'") from None
        if rotation_days < 0:
            raise ValidationError("roster.rotation_days", "must be >= 0")
        if not (0 <= handover_s < min(s.duration_s for s in plan)):
            raise ValidationError("roster.handover_s", "must be >= 0 and shorter than every shift")
        for role, codes in role_shifts.items():
            if not codes:
                raise ValidationError(f"staff.{role.value}.shifts", "must name at least one shift")
            for code in codes:
                if code not in {s.code for s in plan}:
                    raise ValidationError(f"staff.{role.value}.shifts",
                                          f"unknown shift '{code}'; defined: "
                                          + ", ".join(s.code for s in plan))
        self.members: tuple[Member, ...] = tuple(members)
        self.by_id = {m.id: m for m in self.members}
        if len(self.by_id) != len(self.members):
            raise ValidationError("staff", "duplicate member ids")
        self.plan = plan
        self.role_shifts = dict(role_shifts)
        self.timezone_name = timezone_name
        self.rotation_days = rotation_days
        self.handover_s = handover_s
        self._duty_cache: dict[tuple[str, int, int], frozenset[str]] = {}
        self.swaps: dict[tuple[str, int], str] = {}  # (member id, shift day) → shift worked instead
        self._swap_days: set[int] = set()
        self._window: tuple[float, float, Shift, int] = (0.0, 0.0, plan.shifts[0], 0)
        self._duty_at: tuple[float, float, frozenset[str]] = (0.0, 0.0, frozenset())  # the last shift instance's

    def member(self, member_id: str) -> Member:
        """The member with this id."""
        try:
            return self.by_id[member_id]
        except KeyError:
            raise NotFound("member", member_id) from None

    def local_time(self, now: float) -> tuple[int, float]:
        """``(local date ordinal, seconds after local midnight)`` at POSIX time ``now``."""
        dt = datetime.fromtimestamp(now, UTC).astimezone(self.tz)
        second = dt.hour * 3600 + dt.minute * 60 + dt.second + (now - int(now) if now >= 0 else 0.0)
        return dt.toordinal(), second

    def shift_at(self, now: float) -> tuple[Shift, int]:
        """The shift in force at ``now`` and the local date ordinal on which it started."""
        lo, hi, shift, day = self._window
        if lo <= now < hi:
            return shift, day
        day, second = self.local_time(now)
        shift = self.plan.at(second)
        started_yesterday = second < shift.start_s
        day = day - 1 if started_yesterday else day
        elapsed = (second - shift.start_s) % DAY_S
        # Remember this shift instance: the engines ask many times within one shift.
        self._window = (now - elapsed, now - elapsed + shift.duration_s, shift, day)
        return shift, day

    def shift_window(self, now: float) -> tuple[float, float]:
        """POSIX start and end of the shift instance in force at ``now``."""
        self.shift_at(now)
        return self._window[0], self._window[1]

    def shift_of(self, member: Member, shift_day: int) -> str:
        """The shift code ``member`` works on the given local date ordinal (a swap wins)."""
        if self.swaps:
            swapped = self.swaps.get((member.id, shift_day))
            if swapped is not None:
                return swapped
        codes = self.role_shifts.get(member.role, tuple(s.code for s in self.plan))
        turn = shift_day // self.rotation_days if self.rotation_days else 0
        return codes[(member.shift_slot + turn) % len(codes)]

    def on_duty(self, member: Member, now: float, *, handover: bool = False) -> bool:
        """Whether ``member`` works at ``now``.

        Args:
            member: The member.
            now: POSIX seconds.
            handover: Also count the outgoing shift as on duty during the handover overlap.
        """
        shift, day = self.shift_at(now)
        if self.shift_of(member, day) == shift.code:
            return True
        if handover and self.handover_s:
            prev, prev_day = self.shift_at(now - self.handover_s)
            if prev.code != shift.code:
                return self.shift_of(member, prev_day) == prev.code
        return False

    def on_duty_ids(self, now: float) -> frozenset[str]:
        """Ids of the members on duty at ``now`` (cached per shift instance)."""
        lo, hi, ids = self._duty_at
        if lo <= now < hi:
            return ids
        shift, day = self.shift_at(now)
        turn = day // self.rotation_days if self.rotation_days else 0
        key = (shift.code, turn, day if day in self._swap_days else -1)
        cached = self._duty_cache.get(key)
        if cached is None:
            ids = frozenset(m.id for m in self.members if self.shift_of(m, day) == shift.code)
            if len(self._duty_cache) > 64:
                self._duty_cache.clear()
            self._duty_cache[key] = ids
        else:
            ids = cached
        self._duty_at = (self._window[0], self._window[1], ids)
        return ids

    def on_duty_members(self, now: float, *, role: Role | None = None,
                        area_id: str | None = None) -> list[Member]:
        """Members on duty at ``now``, optionally of one role and area, in id order."""
        ids = self.on_duty_ids(now)
        return [m for m in self.members
                if m.id in ids and (role is None or m.role is role)
                and (area_id is None or m.area_id == area_id)]

    def with_swaps(self, swaps: Mapping[tuple[str, int], str]) -> Roster:
        """A copy of this roster in which each ``(member id, shift day)`` of ``swaps`` works the
        given shift code instead (shift swaps and cover; a shift day is the local date
        ordinal on which the shift starts).

        Raises:
            ValidationError: an unknown member or shift code.
        """
        codes = {sh.code for sh in self.plan}
        for (mid, _day), code in swaps.items():
            if mid not in self.by_id:
                raise ValidationError("member", f"no member '{mid}'")
            if code not in codes:
                raise ValidationError("shift", f"unknown shift '{code}'; defined: {', '.join(sorted(codes))}")
        out = Roster(self.members, self.plan, self.role_shifts, timezone_name=self.timezone_name,
                     rotation_days=self.rotation_days, handover_s=self.handover_s)
        out.swaps = dict(swaps)
        out._swap_days = {day for _mid, day in swaps}
        return out

    def swap(self, member_a: str, member_b: str, shift_day: int) -> dict[tuple[str, int], str]:
        """The swaps that make two members of the same role exchange their shifts on a day.

        Raises:
            ValidationError: unknown members, the same member twice, different roles, or two
                members who already work the same shift that day.
        """
        a, b = (self.by_id.get(m) for m in (member_a, member_b))
        if a is None:
            raise ValidationError("member_a", f"no member '{member_a}'")
        if b is None:
            raise ValidationError("member_b", f"no member '{member_b}'")
        if a.id == b.id:
            raise ValidationError("member_b", "must differ from member_a")
        if a.role is not b.role:
            raise ValidationError("member_b", f"is a {b.role.value}, member_a a {a.role.value}: swap within a role")
        sa, sb = self.shift_of(a, shift_day), self.shift_of(b, shift_day)
        if sa == sb:
            raise ValidationError("member_b", f"already works shift '{sb}' that day, like member_a")
        return {**self.swaps, (a.id, shift_day): sb, (b.id, shift_day): sa}

    def next_change(self, now: float) -> float:
        """POSIX time of the next shift boundary strictly after ``now``."""
        shift, _ = self.shift_at(now)
        _, second = self.local_time(now)
        remaining = (shift.end_s - second) % DAY_S or DAY_S
        return now + remaining

    def in_handover(self, now: float) -> bool:
        """Whether ``now`` lies in the handover overlap at the start of a shift."""
        shift, _ = self.shift_at(now)
        _, second = self.local_time(now)
        return (second - shift.start_s) % DAY_S < self.handover_s

    def handover_reassignments(self, open_work: Iterable[tuple[str, str, bool]], now: float
                               ) -> list[tuple[str, str]]:
        """Which open work changes hands at a shift change.

        Work already signed for stays with its handler, who finishes it (overtime, the
        usual practice); work dispatched but not yet signed moves to the incoming shift.

        Args:
            open_work: ``(event id, member id, signed)`` for each open assignment.
            now: POSIX seconds (at or just after the shift change).

        Returns:
            ``(event id, outgoing member id)`` for each assignment to re-dispatch.
        """
        out = []
        for event_id, member_id, signed in open_work:
            member = self.member(member_id)
            if not signed and not self.on_duty(member, now):
                out.append((event_id, member_id))
        return sorted(out)
