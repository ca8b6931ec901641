"""The three-shift roster at its boundaries, rotation, handover, and shift-plan validation."""

from __future__ import annotations

import pytest

from tests.conftest import at
from twin.errors import ValidationError
from twin.geo import TravelMode
from twin.staff import Member, Role, Roster, Shift, ShiftPlan

H = 3600
PLAN = ShiftPlan([Shift("day", 8 * H, 16 * H), Shift("evening", 16 * H, 24 * H), Shift("night", 0, 8 * H)])


def member(mid: str, slot: int, role: Role = Role.CO_GOVERNANCE) -> Member:
    return Member(mid, mid, role, "A1", "SQ-A1", (), slot, 0, TravelMode.EBIKE)


CREW = [member("CG1", 0), member("CG2", 1), member("CG3", 2), member("GW1", 0, Role.GRID_WORKER),
        member("GW2", 1, Role.GRID_WORKER)]
SHIFTS = {Role.CO_GOVERNANCE: ("day", "evening", "night"), Role.GRID_WORKER: ("day", "evening")}


def roster(**kw: int) -> Roster:
    return Roster(CREW, PLAN, SHIFTS, timezone_name="Asia/Shanghai", **kw)


@pytest.mark.parametrize(("clock", "shift", "on"), [
    ("07:59:59", "night", ["CG3"]),
    ("08:00:00", "day", ["CG1", "GW1"]),
    ("15:59:59", "day", ["CG1", "GW1"]),
    ("16:00:00", "evening", ["CG2", "GW2"]),
    ("23:59:59", "evening", ["CG2", "GW2"]),
    ("00:00:00", "night", ["CG3"]),
])
def test_who_is_on_duty_at_shift_boundaries(clock: str, shift: str, on: list[str]) -> None:
    r = roster()
    now = at(clock)
    assert r.shift_at(now)[0].code == shift
    assert [m.id for m in r.on_duty_members(now)] == on


def test_night_shift_across_midnight_belongs_to_the_day_it_started() -> None:
    plan = ShiftPlan([Shift("day", 6 * H, 14 * H), Shift("late", 14 * H, 22 * H), Shift("night", 22 * H, 6 * H)])
    r = Roster(CREW[:3], plan, {Role.CO_GOVERNANCE: ("day", "late", "night")}, rotation_days=1)
    # With daily rotation, the night that starts at 22:00 on day D is worked by D's night crew,
    # also after midnight.
    before, after = at("23:00", day=2), at("01:00", day=3)
    assert r.shift_at(before)[1] == r.shift_at(after)[1]
    assert [m.id for m in r.on_duty_members(before)] == [m.id for m in r.on_duty_members(after)]


def test_weekly_rotation_moves_everyone_to_the_next_shift() -> None:
    r = roster(rotation_days=7)
    day_crews = {tuple(m.id for m in r.on_duty_members(at("10:00", day=d), role=Role.CO_GOVERNANCE))
                 for d in range(1, 29)}
    assert day_crews == {("CG1",), ("CG2",), ("CG3",)}  # each member works days in some week
    one_week = [r.on_duty_members(at("10:00", day=d), role=Role.CO_GOVERNANCE)[0].id for d in (2, 3, 4)]
    assert len(set(one_week)) <= 2  # changes at most once within three consecutive days


def test_handover_overlap_keeps_the_outgoing_shift() -> None:
    r = roster(handover_s=900)
    t = at("16:10")
    cg1 = r.member("CG1")  # day shift, ended at 16:00
    assert not r.on_duty(cg1, t)
    assert r.on_duty(cg1, t, handover=True)
    assert not r.on_duty(cg1, at("16:15"), handover=True)
    assert r.in_handover(t) and not r.in_handover(at("16:15"))


def test_handover_moves_unsigned_work_only() -> None:
    r = roster()
    t = at("16:00")
    moves = r.handover_reassignments([("E1", "CG1", False), ("E2", "CG1", True), ("E3", "CG2", False)], t)
    assert moves == [("E1", "CG1")]


def test_next_change() -> None:
    r = roster()
    assert r.next_change(at("10:30")) == at("16:00")
    assert r.next_change(at("16:00")) == at("00:00", day=3)


@pytest.mark.parametrize(("shifts", "match"), [
    ([Shift("day", 8 * H, 16 * H), Shift("evening", 17 * H, 24 * H), Shift("night", 0, 8 * H)],
     "gap between shift 'day' \\(ends 16:00\\) and shift 'evening' \\(starts 17:00\\)"),
    ([Shift("day", 8 * H, 17 * H), Shift("evening", 16 * H, 24 * H), Shift("night", 0, 8 * H)],
     "overlap between shift 'day' \\(ends 17:00\\) and shift 'evening' \\(starts 16:00\\)"),
    ([Shift("day", 8 * H, 16 * H), Shift("day", 16 * H, 8 * H)], "duplicate shift codes"),
    ([], "at least one shift"),
])
def test_bad_shift_plans(shifts: list[Shift], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ShiftPlan(shifts)


def test_a_single_24_hour_shift_is_allowed() -> None:
    plan = ShiftPlan([Shift("all", 0, 24 * H)])
    assert plan.at(0).code == plan.at(86399).code == "all"


def test_roster_rejects_unknown_shift_and_zone() -> None:
    with pytest.raises(ValidationError, match="staff.grid_worker.shifts: unknown shift 'late'"):
        Roster(CREW, PLAN, {Role.GRID_WORKER: ("day", "late")})
    with pytest.raises(ValidationError, match="timezone: unknown IANA time zone 'Mars/Olympus'"):
        Roster(CREW, PLAN, SHIFTS, timezone_name="Mars/Olympus")
