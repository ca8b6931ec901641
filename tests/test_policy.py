"""Dispatch, timers and duplicate merging on the hand-made street of conftest.py, where the
right answers are known by hand."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from tests.conftest import at, make_spec, make_tiny_district
from twin.district import District
from twin.errors import IllegalTransition, ValidationError
from twin.policy import (
    STANDARD_TARGETS,
    DuplicateIndex,
    MemberState,
    Remedy,
    Targets,
    Timer,
    deadlines,
    dispatch,
    due,
    may_dispatch,
    pending,
    remedy,
    targets_for,
)
from twin.staff import Mode, Role
from twin.workflow import Action, Event, State, apply, report

SPEC = make_spec()
NOW = at("10:00")


def event_at(d: District, x: float, *, eid: str = "E1", now: float = NOW, scenario: str = "CM01",
             y: float = 10.0) -> Event:
    lon, lat = d.projection.to_lonlat(x, y)
    e, _ = report(event_id=eid, scenario=scenario, category="city_management", severity="low",
                  source="patrol", location=d.locate(float(lon), float(lat)), now=now, actor="test")
    return e


def positions(d: District, busy: tuple[str, ...] = ()) -> dict[str, MemberState]:
    return {m.id: MemberState(node=m.post_node, busy=m.id in busy) for m in d.roster.members}


def test_locate_resolves_grid_area_and_nearest_node(tiny: District) -> None:
    e = event_at(tiny, 110.0)
    assert (e.location.grid_id, e.location.area_id, e.location.road_id) == ("G1", "A1", "r1")
    assert tiny.roads.node_keys[e.location.node] == "n1"
    assert e.location.road_distance_m == pytest.approx(10.0, abs=0.01)


def test_own_grid_worker_nearest_wins_and_ties_go_to_the_lower_id(tiny: District) -> None:
    # GW1 at n0 and GW2 at n2 are both 100 m from n1: equal travel, GW1 wins on id.
    a = dispatch(event_at(tiny, 100.0), spec=SPEC, district=tiny, members=positions(tiny), now=NOW)
    assert a is not None and (a.member_id, a.role, a.tier, a.reason) == ("GW1", Role.GRID_WORKER, 0, "own grid")
    assert a.travel_s == pytest.approx(100 / 4.5, rel=1e-3)
    # At n2 side (x=180), GW2 is 20 m nearer along the street.
    a = dispatch(event_at(tiny, 180.0), spec=SPEC, district=tiny, members=positions(tiny), now=NOW)
    assert a is not None and a.member_id == "GW2"


def test_fallbacks_busy_then_other_area_then_queue(tiny: District) -> None:
    e = event_at(tiny, 100.0)
    a = dispatch(e, spec=SPEC, district=tiny, members=positions(tiny, busy=("GW1",)), now=NOW)
    assert a is not None and a.member_id == "GW2"
    a = dispatch(e, spec=SPEC, district=tiny, members=positions(tiny, busy=("GW1", "GW2")), now=NOW)
    assert a is not None and (a.member_id, a.reason) == ("GW3", "other area")
    assert a.travel_s == pytest.approx(300 / 4.5, rel=1e-3)
    assert dispatch(e, spec=SPEC, district=tiny, members=positions(tiny, busy=("GW1", "GW2", "GW3")),
                    now=NOW) is None


def test_exclude_the_member_who_did_not_sign(tiny: District) -> None:
    a = dispatch(event_at(tiny, 100.0), spec=SPEC, district=tiny, members=positions(tiny), now=NOW,
                 exclude=("GW1",))
    assert a is not None and a.member_id == "GW2"


def test_area_squad_beats_a_nearer_member_of_another_area(tiny: District) -> None:
    # Event in G2 (area A2) at x=220: CG1 (A1, at n1 = 100 m) is nearer than CG2 (A2, at n4 = 400 m),
    # but the road belongs to A2's squad.
    e = replace(event_at(tiny, 220.0), tier=1)
    a = dispatch(e, spec=SPEC, district=tiny, members=positions(tiny), now=NOW)
    assert a is not None and (a.member_id, a.reason) == ("CG2", "area squad")


def test_off_duty_role_falls_to_the_next_tier() -> None:
    d = make_tiny_district(day_night=True)
    night = at("23:00")
    e = event_at(d, 100.0, now=night)
    a = dispatch(e, spec=SPEC, district=d, members=positions(d), now=night)
    # No grid worker works nights; CG1 (A1) works days, so CG2 from A2 takes it.
    assert a is not None and (a.member_id, a.tier) == ("CG2", 1)
    assert a.reason == "other area; no grid_worker on duty"
    day = at("09:00")
    a = dispatch(event_at(d, 100.0, now=day), spec=SPEC, district=d, members=positions(d), now=day)
    assert a is not None and a.member_id == "GW1"


def test_wartime_skips_the_reminder_tier(tiny: District) -> None:
    a = dispatch(event_at(tiny, 100.0), spec=SPEC, district=tiny, members=positions(tiny), now=NOW,
                 mode=Mode.WARTIME)
    assert a is not None and (a.member_id, a.tier) == ("CG1", 1)


def test_members_missing_from_the_state_are_unavailable(tiny: District) -> None:
    only = {"GW3": MemberState(node=4)}
    a = dispatch(event_at(tiny, 100.0), spec=SPEC, district=tiny, members=only, now=NOW)
    assert a is not None and a.member_id == "GW3"


@pytest.mark.parametrize("when", ["09:00", "23:00"])
def test_may_dispatch_is_false_only_where_dispatch_finds_nobody(when: str) -> None:
    """The queue's fast pass never skips work the policy would have given out: for every
    subset of busy members, tier and mode, ``may_dispatch`` is true whenever ``dispatch``
    finds someone, and false whenever the roles it reaches have nobody free."""
    import itertools

    d = make_tiny_district(day_night=True)
    now = at(when)
    duty = d.roster.on_duty_ids(now)
    ids = [m.id for m in d.roster.members]
    role = {m.id: m.role for m in d.roster.members}
    seen = set()
    for k in range(len(ids) + 1):
        for busy in itertools.islice(itertools.combinations(ids, k), 40):
            members = positions(d, tuple(busy))
            free = {role[m] for m in ids if m in duty and m not in busy}
            on = {role[m] for m in ids if m in duty}
            for tier in range(len(SPEC.handler_chain)):
                e = replace(event_at(d, 100.0, now=now), tier=tier)
                for mode in Mode:
                    found = dispatch(e, spec=SPEC, district=d, members=members, now=now, mode=mode)
                    could = may_dispatch(e, spec=SPEC, mode=mode, free_roles=free, on_duty_roles=on)
                    assert could == (found is not None), (busy, tier, mode)
                    seen.add(could)
    assert seen == {True, False}


# --- timers: the 60 / 180 / 300-second rule ----------------------------------------------------

def dispatched(tiny: District, t0: float = NOW) -> Event:
    e = event_at(tiny, 100.0, now=t0)
    e, _ = apply(e, Action.DISPATCH, now=t0, actor="brain", member="GW1")
    return e


@pytest.mark.parametrize(("elapsed", "expected"), [(59, []), (60, [Timer.SIGN]), (61, [Timer.SIGN])])
def test_sign_deadline_at_59_60_61_seconds(tiny: District, elapsed: int, expected: list[Timer]) -> None:
    assert due(dispatched(tiny), targets_for(SPEC), NOW + elapsed) == expected


def test_signing_at_60s_meets_the_target(tiny: District) -> None:
    e, _ = apply(dispatched(tiny), Action.SIGN, now=NOW + 60, actor="GW1")
    assert due(e, targets_for(SPEC), NOW + 60) == []
    assert deadlines(e, targets_for(SPEC)) == [(NOW + 180, Timer.ARRIVE)]


@pytest.mark.parametrize(("elapsed", "expected"), [(179, []), (180, [Timer.ARRIVE]), (181, [Timer.ARRIVE])])
def test_on_scene_deadline_at_179_180_181(tiny: District, elapsed: int, expected: list[Timer]) -> None:
    e, _ = apply(dispatched(tiny), Action.SIGN, now=NOW + 10, actor="GW1")
    assert due(e, targets_for(SPEC), NOW + elapsed) == expected


@pytest.mark.parametrize(("elapsed", "expected"), [(299, []), (300, [Timer.REINFORCE]), (301, [Timer.REINFORCE])])
def test_reinforcement_deadline_at_299_300_301(tiny: District, elapsed: int, expected: list[Timer]) -> None:
    e, _ = apply(dispatched(tiny), Action.SIGN, now=NOW + 10, actor="GW1")
    e, _ = apply(e, Action.REQUEST_REINFORCEMENT, now=NOW + 180, actor="timer", members=["CG1"])
    assert due(e, targets_for(SPEC), NOW + elapsed) == expected
    e, _ = apply(e, Action.REINFORCE, now=NOW + 250, actor="CG1")
    assert due(e, targets_for(SPEC), NOW + 301) == []


def test_a_reassignment_restarts_the_sign_clock(tiny: District) -> None:
    e, _ = apply(dispatched(tiny), Action.REASSIGN, now=NOW + 60, actor="timer", member="GW2")
    assert due(e, targets_for(SPEC), NOW + 119) == []
    assert due(e, targets_for(SPEC), NOW + 120) == [Timer.SIGN]


def test_remedies_reassign_then_escalate_then_supervise(tiny: District) -> None:
    e = dispatched(tiny)
    assert remedy(e, Timer.SIGN, spec=SPEC, max_reassign=1) is Remedy.REASSIGN
    e = replace(e, reassignments=1)
    assert remedy(e, Timer.SIGN, spec=SPEC, max_reassign=1) is Remedy.ESCALATE
    assert remedy(replace(e, tier=2), Timer.SIGN, spec=SPEC, max_reassign=1) is Remedy.SUPERVISE
    assert remedy(e, Timer.ARRIVE, spec=SPEC) is Remedy.REINFORCE
    assert remedy(e, Timer.REINFORCE, spec=SPEC) is Remedy.SUPERVISE


def test_wartime_tightens_slack_targets() -> None:
    slow = make_spec(respond_s=300, on_scene_s=1800, reinforce_s=3600)
    assert targets_for(slow) == Targets(300, 1800, 3600)
    assert targets_for(slow, Mode.WARTIME) == STANDARD_TARGETS


def test_no_timers_once_resolved_or_closed(tiny: District) -> None:
    e, _ = apply(dispatched(tiny), Action.SIGN, now=NOW + 10, actor="GW1")
    e, _ = apply(e, Action.RESOLVE, now=NOW + 20, actor="GW1", result="reminded; self-corrected")
    assert deadlines(e, targets_for(SPEC)) == []


# --- duplicate merging ---------------------------------------------------------------------------

def test_duplicates_merge_by_scenario_distance_and_time(tiny: District) -> None:
    index = DuplicateIndex(cell_m=30.0)  # small cells: neighbours across cell edges must be found
    first = event_at(tiny, 100.0, eid="E1", now=NOW)
    second = event_at(tiny, 120.0, eid="E2", now=NOW + 60)
    index.add(first)
    index.add(second)
    # 40 m from E1 and 20 m from E2, 10 minutes later: the earliest open one is the original.
    probe = event_at(tiny, 140.0, eid="E3", now=NOW + 600)
    assert index.find(probe, SPEC).id == "E1"  # type: ignore[union-attr]
    assert index.find(event_at(tiny, 160.0, eid="E4", now=NOW + 600), SPEC).id == "E2"  # type: ignore[union-attr]
    assert index.find(event_at(tiny, 300.0, eid="E5", now=NOW + 600), SPEC) is None  # too far
    assert index.find(event_at(tiny, 110.0, eid="E6", now=NOW + 1801), SPEC).id == "E2"  # E1 too old
    assert index.find(event_at(tiny, 110.0, eid="E7", now=NOW + 600, scenario="TR01"), SPEC) is None
    index.discard("E1")
    assert index.find(probe, SPEC).id == "E2"  # type: ignore[union-attr]
    merged, rec = apply(probe, Action.MERGE, now=NOW + 600, actor="brain", into="E2")
    assert (merged.state, merged.merged_into, rec.to_state) == (State.MERGED, "E2", State.MERGED)


def test_closed_events_are_not_merge_targets(tiny: District) -> None:
    index = DuplicateIndex()
    first = replace(event_at(tiny, 100.0, eid="E1"), state=State.CLOSED)
    index.add(first)
    assert index.find(event_at(tiny, 101.0, eid="E2", now=NOW + 5), SPEC) is None
    assert len(index) == 1


def test_run_cards_follow_the_fixed_order_whatever_the_distance(tiny: District) -> None:
    from twin.policy import dispatch_by_run_card

    cards = {"G1": ["CG2", "CG1"], "G2": ["CG1", "CG2"]}
    e = event_at(tiny, 100.0)  # in G1, CG1 is nearer, but the card puts CG2 first
    a = dispatch_by_run_card(e, run_cards=cards, district=tiny, members=positions(tiny), now=NOW)
    assert a is not None and (a.member_id, a.role, a.reason) == ("CG2", Role.CO_GOVERNANCE, "run card, first choice")
    assert a.travel_s == pytest.approx(300 / 4.5, rel=1e-3)
    a = dispatch_by_run_card(e, run_cards=cards, district=tiny, members=positions(tiny, busy=("CG2",)), now=NOW)
    assert a is not None and (a.member_id, a.reason) == ("CG1", "run card, choice 2")
    assert dispatch_by_run_card(e, run_cards=cards, district=tiny, members=positions(tiny, busy=("CG1", "CG2")),
                                now=NOW) is None


def test_pending_asks_one_timer_of_the_same_rules_as_deadlines(tiny: District) -> None:
    """``pending`` (the simulator's per-timer question) agrees with ``deadlines`` on every
    state a random walk through the workflow reaches, for due times on and off the mark."""
    details = {Action.DISPATCH: {"member": "GW1"}, Action.REASSIGN: {"member": "GW2"},
               Action.REQUEST_REINFORCEMENT: {"members": ["CG1"]}, Action.ESCALATE: {"chain_length": 3},
               Action.RESOLVE: {"result": "done"}, Action.MERGE: {"into": "E0"}}
    actions = [a for a in Action if a is not Action.REPORT]
    rng = random.Random(7)
    seen = set()
    for _walk in range(200):
        e = event_at(tiny, 100.0)
        now = NOW
        for _ in range(12):
            now += rng.choice([0.0, 7.0, 60.0, 200.0])
            action = rng.choice(actions)
            try:
                e, _ = apply(e, action, now=now, actor="test", **details.get(action, {}))
            except (IllegalTransition, ValidationError, TypeError):
                continue
            for targets in (targets_for(SPEC), Targets(30, 90, 150)):
                listed = deadlines(e, targets)
                for timer in Timer:
                    for at_ in {a for a, _ in listed} | {e.reported_at + targets.on_scene_s, NOW - 1.0}:
                        assert pending(e, targets, timer, at_) == ((at_, timer) in listed), (e.state, timer, at_)
                seen.update(t for _, t in listed)
                seen.add(e.state)
    assert set(Timer) <= seen and State.CLOSED in seen
