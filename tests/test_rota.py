"""Working patterns and availability (twin.rota through twin.staff.Roster): 四班三倒 gives
42 hours a week, shrinkage takes its share, meal breaks and fixed posts take members off
dispatch at their hours, and the planner's headcount arithmetic."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import pytest

from tests.conftest import at
from twin.errors import ValidationError
from twin.geo import TravelMode
from twin.rota import Availability, Post, Rotation, headcount, min_rest_s, parse_week_days
from twin.staff import Member, Role, Roster, Shift, ShiftPlan

H = 3600
PLAN = ShiftPlan([Shift("night", 0, 8 * H), Shift("day", 8 * H, 16 * H), Shift("evening", 16 * H, 24 * H)])
FOUR_TEAM = Rotation.continuous("four_team", ("night", "day", "evening"))


def at_day(clock: str, day: int) -> float:
    """A local time ``day - 1`` days after 2026-03-01 (Asia/Shanghai keeps no summer time)."""
    return at(clock, 1) + (day - 1) * 86_400


def crew(n: int, role: Role = Role.CO_GOVERNANCE, areas: int = 1) -> list[Member]:
    return [Member(f"{role.value[:2].upper()}{k:03d}", f"m{k}", role, f"A{(k // 4) % areas + 1}", "SQ", (), k, 0,
                   TravelMode.EBIKE) for k in range(n)]


def roster(members: list[Member], **availability: object) -> Roster:
    return Roster(members, PLAN, {}, rotations={Role.CO_GOVERNANCE: FOUR_TEAM},
                  availability=Availability(**availability))  # type: ignore[arg-type]


def duty_hours(r: Roster, start: float, days: int) -> Counter[str]:
    """Hours each member is available, walking the roster's own change points."""
    out: Counter[str] = Counter()
    t, end = start, start + days * 86_400
    while t < end:
        nxt = min(r.next_change(t), end)
        assert nxt > t
        for mid in r.on_duty_ids(t):
            out[mid] += (nxt - t) / H
        t = nxt
    return out


def test_four_teams_over_three_shifts_work_42_hours_a_week() -> None:
    members = crew(8)
    r = roster(members)
    hours = duty_hours(r, at_day("00:00", 1), 56)  # seven full cycles of eight days
    assert set(hours) == {m.id for m in members}
    for mid, h in hours.items():
        assert h / 8 == pytest.approx(42.0), mid
    assert r.hours_per_week(role=Role.CO_GOVERNANCE) == pytest.approx(42.0)


def test_every_shift_has_exactly_one_team_every_day_and_rest_is_at_least_16_hours() -> None:
    members = crew(4)
    r = roster(members)
    worked: dict[str, list[tuple[float, float]]] = {m.id: [] for m in members}
    for day in range(1, 33):
        for code, clock in (("night", "03:00"), ("day", "11:00"), ("evening", "19:00")):
            now = at_day(clock, day)
            on = r.on_duty_ids(now)
            assert len(on) == 1, (day, code)
            lo, hi = r.shift_window(now)
            worked[next(iter(on))].append((lo, hi))
    for mid, spans in worked.items():
        rests = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
        assert min(rests) >= 16 * H, mid
        assert max(rests) >= 48 * H  # the two days off


def test_continuous_rotation_refuses_a_cycle_that_does_not_split_into_teams() -> None:
    with pytest.raises(ValidationError) as err:
        Rotation.continuous("odd", ("night", "day", "evening"), days_on=2, days_off=1)
    assert err.value.field == "rotations.odd.days_off"


def test_weekly_pattern_follows_the_days_of_the_week() -> None:
    office = Rotation.weekly("office", ["day"] * 5 + ["", ""])
    r = Roster(crew(3, Role.GRID_LEADER), PLAN, {}, rotations={Role.GRID_LEADER: office})
    # Find a Monday by the roster's own clock.
    days = [d for d in range(1, 15) if (r.local_time(at_day("10:00", d))[0] - 1) % 7 == 0]
    monday = days[0]
    on = [len(r.on_duty_ids(at_day("10:00", monday + k))) for k in range(7)]
    assert on == [3, 3, 3, 3, 3, 0, 0]
    assert r.hours_per_week(role=Role.GRID_LEADER) == pytest.approx(40.0)
    assert not r.on_duty_ids(at_day("20:00", monday))


def test_shrinkage_takes_its_share_of_rostered_shifts_in_spells() -> None:
    members = crew(40)
    r = roster(members, shrinkage=0.12, spell_days=3, seed=5)
    rostered = absent = 0
    for day in range(1, 241):
        lo = at_day("11:00", day)
        shift, sday = r.shift_at(lo)
        for m in members:
            if r.shift_of(m, sday) == shift.code:
                rostered += 1
                absent += r.absent(m, sday)
    share = absent / rostered
    se = math.sqrt(0.12 * 0.88 / rostered) * math.sqrt(3)  # spells of 3 days: fewer independent draws
    assert abs(share - 0.12) < 4 * se, share
    # Spells: an absence lasts the whole spell of days.
    away = [(m.id, d) for m in members for d in range(300, 330) if r.absent(m, d)]
    assert all(r.absent(r.member(mid), d - d % 3 + k) for mid, d in away for k in range(3))
    # The same roster (seed) agrees with itself everywhere: no random state.
    again = roster(members, shrinkage=0.12, spell_days=3, seed=5)
    assert all(again.absent(m, d) == r.absent(m, d) for m in members for d in range(1, 60))


def test_meal_breaks_are_staggered_inside_the_window_and_last_their_length() -> None:
    members = crew(16)
    r = roster(members, meal_break_s=30 * 60, break_window=(3 * H, 5 * H))
    day = 3
    lo, hi = r.shift_window(at_day("10:00", day))
    present = {m.id for m in members if r.status(m, lo + 1) == "on_duty"}
    assert len(present) == 4  # one team of four
    off = Counter[str]()
    t = lo
    while t < hi:
        nxt = min(r.next_change(t), hi)
        on = r.on_duty_ids(t)
        for mid in present - on:
            assert lo + 3 * H <= t < lo + 5 * H  # only inside the break window
            assert r.status(mid, t) == "break"
            off[mid] += nxt - t
        assert len(present - on) <= 1  # four slots, one member each: staggered
        t = nxt
    assert off == {mid: 30 * 60 for mid in present}


def test_a_fixed_post_takes_members_per_area_off_dispatch_in_its_windows() -> None:
    members = crew(16, areas=2)
    gates = Post("school gates", "co_governance", 1, ((7 * H + 900, 8 * H + 900), (15 * H + 1800, 17 * H)),
                 parse_week_days("mon-fri", "days"))
    r = roster(members, posts=(gates,))
    monday = next(d for d in range(1, 15) if (r.local_time(at_day("10:00", d))[0] - 1) % 7 == 0)
    for clock, away in (("07:30", 2), ("08:05", 2), ("10:00", 0), ("16:00", 2), ("17:00", 0)):
        now = at_day(clock, monday)
        shift, sday = r.shift_at(now)
        rostered = [m for m in members if r.shift_of(m, sday) == shift.code]
        at_post = [m for m in rostered if r.status(m, now) == "post:school gates"]
        assert len(at_post) == away, clock
        assert {m.area_id for m in at_post} == ({"A1", "A2"} if away else set())
        assert not {m.id for m in at_post} & r.on_duty_ids(now)
    saturday = monday + 5
    assert all(r.status(m, at_day("07:30", saturday)) != "post:school gates" for m in members)
    # The post's edges are change points, so the engines hand work over there.
    assert r.next_change(at_day("07:00", monday)) == at_day("07:15", monday)


def test_swaps_can_trade_a_shift_for_a_day_off() -> None:
    members = crew(4)
    r = roster(members)
    day = r.shift_at(at_day("11:00", 4))[1]
    on = next(m for m in members if r.shift_of(m, day) == "day")
    off = next(m for m in members if r.shift_of(m, day) is None)
    swapped = r.with_swaps(r.swap(on.id, off.id, day))
    assert swapped.shift_of(on, day) is None and swapped.shift_of(off, day) == "day"
    assert swapped.on_duty_ids(at_day("11:00", 4)) == {off.id}


def test_headcount_is_positions_over_working_share_over_what_shrinkage_leaves() -> None:
    # 17 positions on each of three shifts, 四班三倒 (6 days in 8), 12% shrinkage.
    assert headcount(17 * 3, working_share=FOUR_TEAM.working_share(), shrinkage=0.12) == 78
    assert headcount(17 * 3, working_share=1.0, shrinkage=0.0) == 51
    with pytest.raises(ValidationError):
        headcount(3, working_share=0.0, shrinkage=0.1)


def test_xiaohe_puts_about_12_5_times_1_minus_shrinkage_brigade_members_on_a_shift(xiaohe: object) -> None:
    from twin.district import District
    assert isinstance(xiaohe, District)
    r = xiaohe.roster
    shrink = r.availability.shrinkage
    assert r.rotations[Role.CO_GOVERNANCE].code == "four_team"
    assert r.hours_per_week(role=Role.CO_GOVERNANCE) == pytest.approx(42.0)
    # At the start of a shift: no break yet, no school gates at 08:10? (gates run to 08:15) → use 09:00.
    counts = [sum(1 for mid in r.on_duty_ids(at_day("09:00", d)) if r.by_id[mid].role is Role.CO_GOVERNANCE)
              for d in range(1, 161)]
    mean = sum(counts) / len(counts)
    sd = (sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)) ** 0.5
    assert abs(mean - 12.5 * (1 - shrink)) < 3 * sd / math.sqrt(len(counts) / 3) + 0.1, (mean, sd)


def test_availability_refuses_bad_settings_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        Availability(shrinkage=1.2)
    assert err.value.field == "roster.shrinkage"
    with pytest.raises(ValidationError) as err:
        Availability(meal_break_s=3 * H, break_window=(H, 2 * H))
    assert err.value.field == "roster.meal_break_window"
    with pytest.raises(ValidationError) as err:
        parse_week_days("mon-fru", "posts.x.days")
    assert err.value.field == "posts.x.days"
    with pytest.raises(ValidationError) as err:
        Roster(crew(2), PLAN, {}, rotations={Role.CO_GOVERNANCE: replace(FOUR_TEAM, code="bad", cycles=(("dusk",),))})
    assert err.value.field == "rotations.bad"


@pytest.mark.parametrize("back_to_post", [True, False])
def test_after_a_job_a_member_heads_back_to_their_post(back_to_post: bool) -> None:
    from tests.conftest import make_tiny_district
    from twin.desk import Desk
    from twin.district import PolicySettings
    from twin.workflow import report

    d = make_tiny_district()
    d.policy = PolicySettings(return_to_post=back_to_post)
    desk = Desk(d, timers=False)
    t0 = at("10:00", 2)
    lon, lat = d.projection.to_lonlat(290.0, 10.0)
    e, _ = report(event_id="E1", scenario="CM01", category="city_management", severity="low", source="patrol",
                  location=d.locate(float(lon), float(lat)), now=t0, actor="test")
    who = desk.report(e, actor="test").assignee
    assert who is not None
    for k, action in enumerate(("sign", "arrive")):
        desk.act("E1", action, now=t0 + 10 + k, actor=who)
    job = e.location.node
    member = d.roster.by_id[who]
    assert job != member.post_node
    done = t0 + 600
    desk.act("E1", "resolve", now=done, actor=who, result="handled")
    assert desk.positions(done + 1)[who].node == job  # on the way back: found where the job was
    trip = d.roads.travel_s(member.travel_mode, job, member.post_node)
    assert 0 < trip < 600
    assert desk.positions(done + trip + 1)[who].node == (member.post_node if back_to_post else job)


@pytest.mark.parametrize("hours", [-1, 0, 3])
def test_min_rest_is_the_rest_the_roster_leaves_when_the_shifts_move(hours: int) -> None:
    """``min_rest_s`` reads a rotation's shortest rest off its cycle; walking a roster with the
    shifts moved ``hours`` (a night shift of 23:00-07:00 belongs to the date it starts on, so
    the night-first 四班三倒 runs night into day) finds the same rest."""
    plan = PLAN.shifted(hours)
    assert [s.duration_s for s in plan] == [8 * H] * 3 and {s.code for s in plan} == {"night", "day", "evening"}
    members = crew(4)
    r = Roster(members, plan, {}, rotations={Role.CO_GOVERNANCE: FOUR_TEAM})
    spans: dict[str, list[tuple[float, float]]] = {m.id: [] for m in members}
    t, end = at_day("00:00", 1), at_day("00:00", 25)
    while t < end:
        nxt = r.next_change(t)
        window = r.shift_window(t)
        for mid in r.on_duty_ids(t):
            if not spans[mid] or spans[mid][-1] != window:  # each shift instance worked, once
                spans[mid].append(window)
        t = nxt
    walked = min(b[0] - a[1] for s in spans.values() for a, b in zip(s[1:], s[2:]))
    expected = min_rest_s(FOUR_TEAM, {s.code: (s.start_s, s.duration_s) for s in plan})
    assert walked == expected == (0 if hours < 0 else 16 * H)
    assert PLAN.shifted(hours).shifted(-hours).as_data() == PLAN.as_data()


def test_on_call_members_stand_by_until_called_in_and_stand_down_after() -> None:
    """An on-call pattern (备勤): rostered, off the street in peacetime; a switch to wartime
    calls them in, on duty ``call_in_s`` later; back to peacetime, they stand down."""
    from twin.staff import Mode

    members = crew(4) + [replace(m, id=f"OC{k}", rotation="reserve") for k, m in enumerate(crew(4))]
    reserve = replace(FOUR_TEAM, code="reserve", on_call=True)
    r = Roster(members, PLAN, {}, rotations={Role.CO_GOVERNANCE: FOUR_TEAM}, named={"reserve": reserve},
               call_in_s=1800)
    t = at_day("10:00", 3)
    (oc,) = [m for m in members if m.id.startswith("OC") and r.shift_of(m, r.shift_at(t)[1]) == "day"]
    assert r.status(oc, t) == "on_call" and oc.id not in r.on_duty_ids(t)
    assert r.for_mode(Mode.PEACETIME, t) is r  # nothing to stand down
    war = r.for_mode(Mode.WARTIME, t)
    assert war.for_mode(Mode.WARTIME, t + 60) is war  # already called in
    assert war.status(oc, t + 1799) == "on_call" and oc.id not in war.on_duty_ids(t + 1799)
    assert war.next_change(t) == t + 1800  # the roster's own change point: the engines wake there
    assert war.status(oc, t + 1800) == "on_duty" and oc.id in war.on_duty_ids(t + 1800)
    later = at_day("19:00", 6)  # and on their later shifts, while wartime lasts
    assert {m for m in war.on_duty_ids(later) if m.startswith("OC")} == {
        m.id for m in members if m.id.startswith("OC") and war.shift_of(m, war.shift_at(later)[1]) == "evening"}
    calm = war.for_mode(Mode.PEACETIME, t + 7200)
    assert calm.status(oc, t + 7200) == "on_call" and oc.id not in calm.on_duty_ids(t + 7200)
    # the regular teams are untouched throughout
    regular = {m.id for m in members if not m.id.startswith("OC")}
    for roster_ in (r, war, calm):
        assert roster_.on_duty_ids(t + 3600) & regular == r.on_duty_ids(t + 3600) & regular
