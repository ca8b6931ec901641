"""The three teams: members, squads, the 24-hour three-shift roster, peacetime and wartime.

The case study: every road has a responsible squad and assigned members, working 24 hours
in three shifts; in peacetime fixed people, posts and duties, in wartime immediate
emergency mode. Each role works a rotation (:mod:`twin.rota`: 四班三倒, weekday day shifts,
part-time, or the old every-day pattern that rotates every ``rotation_days``); of those
rostered, the ones away (shrinkage), on their meal break or at a fixed post are not
available.

Times are POSIX seconds (``now``); shifts are local wall-clock times in the district's time
zone. A shift covers ``[start, end)``: at 08:00:00 sharp the day shift is on and the night
shift is off.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twin.errors import NotFound, ValidationError
from twin.geo import TravelMode
from twin.rota import Availability, Rotation

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

    def shifted(self, hours: int) -> ShiftPlan:
        """The same shifts, every start and end moved ``hours`` later (earlier if negative):
        the plan with another start time, its lengths and order kept."""
        move = hours * 3600
        return ShiftPlan(Shift(s.code, (s.start_s + move) % DAY_S, (s.end_s + move) % DAY_S or DAY_S)
                         for s in self.shifts)

    def as_data(self) -> list[dict[str, str]]:
        """The shifts as ``[[shifts]]`` tables of ``scenario.toml`` (``code``, ``start``, ``end``)."""
        return [{"code": s.code, "start": _hhmm(s.start_s), "end": _hhmm(s.end_s)} for s in self.shifts]

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
        shift_slot: Index into their role's shift list (before rotation), or their team in
            their rotation.
        post_node: Routing node of their post (where they wait in peacetime).
        travel_mode: How they move.
        rotation: The name of a rotation of their own (a role may mix patterns: four-team
            units and five-day workers); ``""``: their role's.
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
    rotation: str = ""  # a rotation of their own (a name of the roster's ``named``), else their role's


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


@dataclass(frozen=True)
class _Instance:
    """One shift instance as the roster sees it: who is rostered and present, their meal
    breaks (POSIX), and the instants where availability changes (its ends included)."""

    lo: float
    day: int
    midnight: float
    present: tuple[Member, ...]
    ids: frozenset[str]
    breaks: dict[str, tuple[float, float]]
    cuts: tuple[float, ...]
    on_break: tuple[tuple[float, float, frozenset[str]], ...] = ()  # (start, end, who), by start


class Roster:
    """Who is on duty when: each role's rotation (:class:`twin.rota.Rotation`) over the
    shifts of the day, less those away, on their meal break or at a fixed post
    (:class:`twin.rota.Availability`).

    Args:
        members: All members; a member's ``shift_slot`` is their team in their role's rotation.
        plan: The shifts of the day.
        role_shifts: For each role, the shift codes its members are spread over, for roles
            without a rotation (a role absent here works every shift).
        timezone_name: IANA time zone of the district (``Asia/Shanghai``).
        rotation_days: For roles without a rotation: rotate each member to their role's next
            shift every this many days (0: fixed shifts), every day on duty.
        handover_s: Length of the handover overlap at the start of a shift, seconds: the
            outgoing member stays on duty for open work that long.
        rotations: Each role's working pattern (teams, days on and off).
        availability: Shrinkage, meal breaks and fixed posts (default: none).
        named: Rotations members name for themselves (:attr:`Member.rotation`).
        call_in_s: How long on-call members (an ``on_call`` rotation) take to come on duty
            once called in, seconds.
        called_in: POSIX time from which on-call members rostered for a shift are on duty
            (``None``: not called in; ``-inf``: in all along). See :meth:`for_mode`.
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
        rotations: Mapping[Role, Rotation] | None = None,
        availability: Availability | None = None,
        named: Mapping[str, Rotation] | None = None,
        call_in_s: int = 1800,
        called_in: float | None = None,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("timezone", f"unknown IANA time zone '{timezone_name}'") from None
        if rotation_days < 0:
            raise ValidationError("roster.rotation_days", "must be >= 0")
        if call_in_s < 0:
            raise ValidationError("roster.call_in_min", "must be >= 0")
        self.call_in_s = call_in_s
        self.called_in = called_in
        if not (0 <= handover_s < min(s.duration_s for s in plan)):
            raise ValidationError("roster.handover_s", "must be >= 0 and shorter than every shift")
        known = {s.code for s in plan}
        for role, codes in role_shifts.items():
            if not codes:
                raise ValidationError(f"staff.{role.value}.shifts", "must name at least one shift")
            for code in codes:
                if code not in known:
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
        self.given_rotations: dict[Role, Rotation] = dict(rotations or {})
        self.rotations: dict[Role, Rotation] = {}
        for role in Role:
            rot = self.given_rotations.get(role)
            if rot is None:
                rot = Rotation.fixed(f"{role.value}-every-day", self.role_shifts.get(role, tuple(s.code for s in plan)),
                                     rotation_days=rotation_days)
            else:
                unknown = sorted(rot.shift_codes() - known)
                if unknown:
                    raise ValidationError(f"rotations.{rot.code}", f"unknown shift(s) {unknown}; defined: "
                                          + ", ".join(s.code for s in plan))
            self.rotations[role] = rot
        self.availability = availability or Availability()
        roles = {r.value for r in Role}
        for post in self.availability.posts:
            if post.role not in roles:
                raise ValidationError(f"posts.{post.name}.role", f"unknown role '{post.role}'; roles: "
                                      + ", ".join(sorted(roles)))
        self._by_area = sorted(self.members, key=lambda m: (m.area_id, m.id))  # the order breaks go in
        self.named: dict[str, Rotation] = dict(named or {})
        for m in self.members:
            if m.rotation and m.rotation not in self.named:
                raise ValidationError(f"staff.{m.role.value}.patterns", f"member {m.id} works rotation "
                                      f"'{m.rotation}', which is not defined")
        for name, rot in self.named.items():
            unknown = sorted(rot.shift_codes() - known)
            if unknown:
                raise ValidationError(f"rotations.{name}", f"unknown shift(s) {unknown}")
        # Members by (rotation, team): who works when follows from their rotation.
        self._teams: dict[tuple[str, int], list[Member]] = {}
        self._in_use: dict[str, Rotation] = {}
        for m in self.members:
            rot = self.rotation_of(m)
            key = m.rotation or f"role:{m.role.value}"
            self._in_use[key] = rot
            self._teams.setdefault((key, m.shift_slot % rot.teams), []).append(m)
        self._on_call = frozenset(m.id for m in self.members if self.rotation_of(m).on_call)
        self.swaps: dict[tuple[str, int], str | None] = {}  # (member id, shift day) → shift worked instead
        self._swap_days: set[int] = set()
        self._window: tuple[float, float, Shift, int] = (0.0, 0.0, plan.shifts[0], 0)
        self._instances: dict[tuple[str, int], _Instance] = {}
        self._absent: dict[int, frozenset[str]] = {}  # absence spell → members away
        self._duty_at: tuple[float, float, frozenset[str]] = (0.0, 0.0, frozenset())  # the last duty segment's
        self._seg_los: list[float] = []  # starts of the spans worked out, sorted
        self._seg_vals: list[tuple[float, frozenset[str]]] = []  # their ends and who is on duty

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

    def shift_of(self, member: Member, shift_day: int) -> str | None:
        """The shift code ``member`` works on the given local date ordinal (a swap wins), or
        ``None`` on a day off."""
        if self.swaps:
            key = (member.id, shift_day)
            if key in self.swaps:
                return self.swaps[key]
        return self.rotation_of(member).shift_on(member.shift_slot, shift_day)

    def rotation_of(self, member: Member) -> Rotation:
        """The rotation ``member`` works: their own, else their role's."""
        return self.named[member.rotation] if member.rotation else self.rotations[member.role]

    def absent(self, member: Member, shift_day: int) -> bool:
        """Whether ``member`` is away (leave, training, sickness) on a shift day."""
        return member.id in self._away(shift_day)

    def _away(self, day: int) -> frozenset[str]:
        av = self.availability
        if av.shrinkage <= 0.0:
            return frozenset()
        spell = day // av.spell_days
        out = self._absent.get(spell)
        if out is None:
            if len(self._absent) > 1024:
                self._absent.clear()
            out = self._absent[spell] = frozenset(m.id for m in self.members if av.absent(m.id, day))
        return out

    def _instance(self, shift: Shift, day: int, lo: float) -> _Instance:
        """The members rostered and present for one shift instance, their breaks, and the
        instants within it where availability changes."""
        key = (shift.code, day)
        inst = self._instances.get(key)
        if inst is not None:  # (one shift instance per code and day; ``lo`` is its start)
            return inst
        away = self._away(day)
        rostered: list[Member] = []
        if self.swaps and day in self._swap_days:
            rostered = [m for m in self.members if self.shift_of(m, day) == shift.code]
        else:
            for name, rot in self._in_use.items():
                for team in rot.teams_on(shift.code, day):
                    rostered.extend(self._teams.get((name, team), ()))
        hi = lo + shift.duration_s
        waiting: frozenset[str] = frozenset()  # on call, rostered, not on duty yet
        if self._on_call:
            since = math.inf if self.called_in is None else self.called_in
            if since >= hi:
                rostered = [m for m in rostered if m.id not in self._on_call]
            elif since > lo:
                waiting = frozenset(m.id for m in rostered if m.id in self._on_call)
        present = sorted((m for m in rostered if m.id not in away), key=lambda m: m.id)
        av = self.availability
        breaks: dict[str, tuple[float, float]] = {}
        cuts = {lo, hi}
        if waiting:
            cuts.add(self.called_in)  # type: ignore[arg-type]  # set: lo < called_in < hi
        if av.meal_break_s:
            # Slots in turn over each role's crew, area by area (ids run area by area): an
            # area's members break at different times, and so do lone members of different areas.
            spans = [av.break_of(k, shift.duration_s) for k in range(av.break_slots)]
            turn: dict[Role, int] = {}
            here = {m.id for m in present}
            for m in self._by_area:
                if m.id in here:
                    k = turn[m.role] = turn.get(m.role, -1) + 1
                    slot = spans[k % len(spans)]
                    if slot is not None:
                        breaks[m.id] = (lo + slot[0], lo + slot[1])
                        cuts.update(breaks[m.id])
        midnight = lo - shift.start_s  # local midnight of the shift day
        for post in av.posts:
            for d in (0, 1):
                for a, b in post.windows:
                    for t in (midnight + d * DAY_S + a, midnight + d * DAY_S + b):
                        if lo < t < lo + shift.duration_s:
                            cuts.add(t)
        if len(self._instances) > 256:
            self._instances.clear()
        groups: dict[tuple[float, float], set[str]] = {}
        for mid, span in breaks.items():
            groups.setdefault(span, set()).add(mid)
        if waiting:  # off dispatch until they come in, as if on a break
            groups.setdefault((lo, self.called_in), set()).update(waiting)  # type: ignore[arg-type]
        inst = self._instances[key] = _Instance(lo, day, midnight, tuple(present), frozenset(m.id for m in present),
                                                breaks, tuple(sorted(cuts)),
                                                tuple((a, b, frozenset(ids)) for (a, b), ids in sorted(groups.items())))
        return inst

    def _segment(self, now: float) -> tuple[_Instance, float, float]:
        shift, day = self.shift_at(now)
        lo = self._window[0]
        inst = self._instance(shift, day, lo)
        cuts = inst.cuts
        k = bisect_right(cuts, now) - 1
        k = min(max(k, 0), len(cuts) - 2)
        return inst, cuts[k], cuts[k + 1]

    def duty_window(self, now: float) -> tuple[float, float]:
        """POSIX start and end of the span around ``now`` in which nobody comes on or goes
        off duty (a shift, cut at meal breaks and fixed posts)."""
        lo, hi, _ = self._duty_at
        if lo <= now < hi:
            return lo, hi
        self.on_duty_ids(now)
        return self._duty_at[0], self._duty_at[1]

    def _at_post(self, inst: _Instance, now: float, on: set[str]) -> dict[str, str]:
        """Members standing at a fixed post at ``now`` (member id → post name), chosen in turn
        by day among those present and not on their break."""
        out: dict[str, str] = {}
        posts = self.availability.posts
        if not posts:
            return out
        offset = now - inst.midnight
        day = inst.day + int(offset // DAY_S)
        weekday = (day - 1) % 7  # ordinal 1 is a Monday
        second = offset % DAY_S
        for post in posts:
            if not post.staffed(weekday, second):
                continue
            by_area: dict[str, list[Member]] = {}
            for m in inst.present:
                if m.role.value == post.role and m.id in on and m.id not in out:
                    by_area.setdefault(m.area_id, []).append(m)
            for crew in by_area.values():
                start = day % len(crew)
                for m in (crew[start:] + crew[:start])[:post.per_area]:
                    out[m.id] = post.name
        return out

    def status(self, member: Member | str, now: float) -> str:
        """Why a member is or is not available at ``now``: ``on_duty``, ``off``, ``absent``,
        ``on_call`` (rostered on call, not called in yet), ``break`` or ``post:<name>``."""
        m = self.member(member) if isinstance(member, str) else member
        shift, day = self.shift_at(now)
        if self.shift_of(m, day) != shift.code:
            return "off"
        if m.id in self._on_call and (self.called_in is None or now < self.called_in):
            return "on_call"
        inst, _lo, _hi = self._segment(now)
        if m.id not in inst.ids:
            return "absent"
        b = inst.breaks.get(m.id)
        if b is not None and b[0] <= now < b[1]:
            return "break"
        on = {mid for mid in inst.ids if not (mid in inst.breaks and inst.breaks[mid][0] <= now < inst.breaks[mid][1])}
        post = self._at_post(inst, now, on).get(m.id)
        return f"post:{post}" if post else "on_duty"

    def on_duty(self, member: Member, now: float, *, handover: bool = False) -> bool:
        """Whether ``member`` is available at ``now`` (rostered, present, not on a break or
        at a post).

        Args:
            member: The member.
            now: POSIX seconds.
            handover: Also count the outgoing shift as on duty during the handover overlap.
        """
        if member.id in self.on_duty_ids(now):
            return True
        if handover and self.handover_s:
            shift, _ = self.shift_at(now)
            before = now - self.handover_s
            prev, prev_day = self.shift_at(before)
            if prev.code != shift.code:
                inst = self._instance(prev, prev_day, self._window[0])
                self.shift_at(now)
                return member.id in inst.ids
        return False

    def on_duty_ids(self, now: float) -> frozenset[str]:
        """Ids of the members available at ``now`` (cached per span of :meth:`duty_window`)."""
        lo, hi, ids = self._duty_at
        if lo <= now < hi:
            return ids
        # Spans already worked out (the engines ask about other times of the day too: the
        # patrols at each incident's time).
        los = self._seg_los
        k = bisect_right(los, now) - 1
        if k >= 0:
            seg_hi, ids = self._seg_vals[k]
            if now < seg_hi:
                self._duty_at = (los[k], seg_hi, ids)
                return ids
        inst, seg_lo, seg_hi = self._segment(now)
        away = [who for a, b, who in inst.on_break if a <= seg_lo < b]
        if self.availability.posts:
            on = set(inst.ids).difference(*away)
            on.difference_update(self._at_post(inst, seg_lo, on))
            ids = inst.ids if len(on) == len(inst.ids) else frozenset(on)
        else:
            ids = inst.ids.difference(*away) if away else inst.ids
        self._duty_at = (seg_lo, seg_hi, ids)
        if len(los) > 512:
            los.clear()
            self._seg_vals.clear()
        k = bisect_right(los, seg_lo)
        los.insert(k, seg_lo)
        self._seg_vals.insert(k, (seg_hi, ids))
        return ids

    def on_duty_members(self, now: float, *, role: Role | None = None,
                        area_id: str | None = None) -> list[Member]:
        """Members on duty at ``now``, optionally of one role and area, in id order."""
        ids = self.on_duty_ids(now)
        return [m for m in self.members
                if m.id in ids and (role is None or m.role is role)
                and (area_id is None or m.area_id == area_id)]

    def with_swaps(self, swaps: Mapping[tuple[str, int], str | None]) -> Roster:
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
            if code is not None and code not in codes:
                raise ValidationError("shift", f"unknown shift '{code}'; defined: {', '.join(sorted(codes))}")
        return self._copy(swaps=swaps)

    def _copy(self, *, swaps: Mapping[tuple[str, int], str | None] | None = None, availability: Availability | None = None,
              called_in: float | Literal["keep"] | None = "keep") -> Roster:
        out = Roster(self.members, self.plan, self.role_shifts, timezone_name=self.timezone_name,
                     rotation_days=self.rotation_days, handover_s=self.handover_s, rotations=self.given_rotations,
                     availability=availability or self.availability, named=self.named, call_in_s=self.call_in_s,
                     called_in=self.called_in if called_in == "keep" else called_in)
        out.swaps = dict(self.swaps if swaps is None else swaps)
        out._swap_days = {day for _mid, day in out.swaps}
        return out

    def for_mode(self, mode: Mode, now: float) -> Roster:
        """The roster as a switch to ``mode`` at ``now`` leaves it (平战结合): in wartime the
        on-call members are called in and on duty from ``now + call_in_s`` (already called
        in: unchanged); in peacetime they stand down. ``self`` when nothing changes."""
        if mode is Mode.WARTIME:
            return self if self.called_in is not None or not self._on_call else self._copy(called_in=now + self.call_in_s)
        return self if self.called_in is None else self._copy(called_in=None)

    def with_absence_seed(self, seed: int) -> Roster:
        """A copy of this roster whose absences (leave, training, sickness) are drawn with key
        ``seed``: the same rotations, breaks and posts, other people away on other days. A
        simulation replication draws its own, so its confidence interval covers who is away."""
        return self._copy(availability=replace(self.availability, seed=seed))

    def swap(self, member_a: str, member_b: str, shift_day: int) -> dict[tuple[str, int], str | None]:
        """The swaps that make two members of the same role exchange their shifts on a day (a
        day off is exchanged like a shift: cover).

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
            raise ValidationError("member_b", f"already works shift '{sb}' that day, like member_a" if sb
                                  else "is off that day, like member_a")
        return {**self.swaps, (a.id, shift_day): sb, (b.id, shift_day): sa}

    def next_change(self, now: float) -> float:
        """POSIX time of the next change of who is available strictly after ``now``: a shift
        boundary, or a meal break or fixed post starting or ending."""
        return self.duty_window(now)[1]

    def hours_per_week(self, member: Member | None = None, role: Role | None = None) -> float:
        """Rostered hours a week (before shrinkage) of a member, or on average over a role's
        teams."""
        hours = {s.code: s.duration_s / 3600 for s in self.plan}
        if member is not None:
            return self.rotation_of(member).hours_per_week(hours, member.shift_slot)
        if role is None:
            raise ValidationError("role", "give a member or a role")
        return self.rotations[role].hours_per_week(hours)

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
