"""What-if forks from the live state: the engine starts from a snapshot of the live twin
(open events in their states, members where they stand) and runs the next hours as is and
with a change, with common random numbers."""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from actors.brain import Brain
from actors.eventlog import open_log
from actors.virtual import ManualClock
from scenarios.engine import run_once
from scenarios.model import Incident, ResponseParams, StartState
from scenarios.whatif import FORK_KPIS, WeekAligned, _changed_district, _member_map, carry_swaps, fork, week_offset
from twin.catalog import Source
from twin.district import District
from twin.errors import ValidationError
from twin.policy import MemberState
from twin.staff import DAY_S
from twin.workflow import Action, State, apply, new_event

from .conftest import make_tiny_district

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def brain(xiaohe: District, tmp_path_factory: pytest.TempPathFactory) -> Brain:
    """A live twin on Monday 10:00 with more TR06 events (brigade only) than brigade members on
    duty: everyone is busy and the rest wait; some events moved on to signed, on scene, resolved."""
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()
    # A clock that stands still: the snapshot is at 10:00:00 however long the set-up takes.
    brain = Brain(xiaohe, open_log(tmp_path_factory.mktemp("whatif") / "log.db"), ManualClock(origin))
    spots: list[Any] = []
    for cam in xiaohe.cameras:  # spots far apart: no report merges into another
        if all(math.hypot(cam.x - o.x, cam.y - o.y) > 250.0 for o in spots):
            spots.append(cam)
    ids = []
    for cam in spots[:45]:
        lon, lat = xiaohe.projection.to_lonlat(cam.x, cam.y)
        out = brain.create_event({"scenario": "TR06", "lon": float(lon), "lat": float(lat), "source": "camera"},
                                 actor="test")
        ids.append(out["event"]["id"])
    held = [i for i in ids if brain.twin.events[i].assignee]
    for eid in held[:8]:
        brain.act(eid, "sign", {}, actor=str(brain.twin.events[eid].assignee))
    for eid in held[:4]:
        brain.act(eid, "arrive", {}, actor=str(brain.twin.events[eid].assignee))
    brain.act(held[0], "resolve", {"result": "cleared"}, actor=str(brain.twin.events[held[0]].assignee))
    return brain


@pytest.fixture(scope="module")
def loaded(brain: Brain) -> dict[str, Any]:
    """The loaded twin's snapshot."""
    return brain.twin.snapshot()


def test_a_fork_carries_the_open_events_and_with_nobody_free_they_wait(brain: Brain, loaded: dict[str, Any]) -> None:
    states = Counter(e.state for e in loaded["open_events"])
    assert states[State.REPORTED] > 10 and states[State.ON_SCENE] and states[State.SIGNED] and states[State.RESOLVED]
    out = fork(brain.district, loaded, hours=0.1, change=None, replications=2, seed=3)
    json.dumps(out, allow_nan=False)  # JSON-ready
    assert {"hours", "replications", "from", "open_events_at_fork", "as_is", "proposed", "difference",
            "difference_ci95", "change", "members", "notes"} <= set(out)
    assert out["hours"] == 0.1 and out["replications"] == 2 and out["from"].startswith("2026-03-02T10:00:00")
    assert out["open_events_at_fork"] == len(loaded["open_events"])
    assert out["waiting_at_fork"] == states[State.REPORTED]
    assert set(out["as_is"]) == set(FORK_KPIS)
    assert set(out["as_is"]["on_scene_within_180s"]) == {"mean", "ci95_lo", "ci95_hi", "n"}
    assert out["as_is"] == out["proposed"] and all(v in (0.0, None) for v in out["difference"].values())
    # Every on-duty brigade member is busy: six minutes later the waiting events still wait.
    assert out["as_is"]["backlog_end"]["mean"] >= out["waiting_at_fork"] - 5
    assert out["as_is"]["carried_closed_share"]["mean"] < 0.3
    assert out["as_is"]["utilisation_co_governance"]["mean"] > 0.9
    assert out["notes"] == []


def test_more_brigade_members_do_not_worsen_a_loaded_street(brain: Brain, loaded: dict[str, Any]) -> None:
    out = fork(brain.district, loaded, hours=2, change={"staff.co_governance.count": 80}, replications=3, seed=1)
    assert out["change"] == {"staff.co_governance.count": 80}
    assert out["members"]["dropped"] == [] and len(out["members"]["added"]) == 30
    assert all(new.startswith("CG") for new in out["members"]["renamed"].values())
    a, b = out["as_is"], out["proposed"]
    _, hi = out["difference_ci95"]["on_scene_within_180s"]
    assert hi >= 0.0 and b["on_scene_within_180s"]["ci95_hi"] >= a["on_scene_within_180s"]["ci95_lo"]
    assert out["difference"]["on_scene_within_180s"] > 0.0
    assert out["difference"]["wait_mean_s"] < 0.0
    assert b["utilisation_co_governance"]["mean"] < a["utilisation_co_governance"]["mean"]
    # per area (the cockpit's map): the events of each arm add up, the shares are shares
    by = out["by_area"]
    areas = {r.id for r in brain.district.regions.areas}
    assert set(by["as_is"]) <= areas and set(by["proposed"]) <= areas and by["as_is"]
    assert sum(v["events"] for v in by["as_is"].values()) == pytest.approx(a["events"]["mean"], rel=1e-9)
    assert all(v["within_targets"] is None or 0 <= v["within_targets"] <= 1 for v in by["proposed"].values())


def test_same_seed_same_fork_and_an_unchanged_district_changes_nothing(xiaohe: District,
                                                                         loaded: dict[str, Any]) -> None:
    same = {"staff.co_governance.count": 50}  # rebuilt, but the same district
    one = fork(xiaohe, loaded, hours=1, change=same, replications=2, seed=7)
    two = fork(xiaohe, loaded, hours=1, change=same, replications=2, seed=7)
    assert one == two
    assert one["as_is"] == one["proposed"] and one["members"] == {"dropped": [], "added": [], "renamed": {}}
    war = fork(xiaohe, loaded, hours=1, change={"mode": "wartime"}, replications=2, seed=7)
    assert war["as_is"] == one["as_is"]  # the same seeds
    assert war["mode"] == {"as_is": "peacetime", "proposed": "wartime"} and war["change"] == {"mode": "wartime"}


def test_a_smaller_brigade_drops_members_and_requeues_their_events(xiaohe: District,
                                                                   loaded: dict[str, Any]) -> None:
    out = fork(xiaohe, loaded, hours=0.5, change={"staff.co_governance.count": 40}, replications=2, seed=2)
    dropped = out["members"]["dropped"]
    assert len(dropped) == 10 and all(m.startswith("CG") for m in dropped) and out["members"]["added"] == []
    notes = " ".join(out["notes"])
    for mid in dropped:
        assert f"member {mid} (co_governance" in notes
        held = loaded["holding"].get(mid)
        if held is not None:
            assert f"event {held}: its handler {mid} was dropped" in notes
    assert out["open_events_at_fork"] == len(loaded["open_events"])


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"hours": 0}, "hours"), ({"hours": 169}, "hours"), ({"hours": "4"}, "hours"), ({"hours": math.nan}, "hours"),
    ({"hours": True}, "hours"), ({"replications": 1}, "replications"), ({"replications": 101}, "replications"),
    ({"replications": 2.5}, "replications"), ({"seed": -1}, "seed"),
    ({"change": {"staff.co_governance.cnt": 60}}, "change.staff.co_governance.cnt"),
    ({"change": {"bogus": 1}}, "change.bogus"),
    ({"change": {"staff.co_governance.count": -5}}, "change.staff.co_governance.count"),
    ({"change": {"mode": "panic"}}, "change.mode"),
    ({"change": {"regions.grids": 70}}, "change.regions.grids"),
    ({"change": ["mode"]}, "change"),
])
def test_bad_inputs_name_the_field(xiaohe: District, loaded: dict[str, Any], kwargs: dict[str, Any],
                                   field: str) -> None:
    args: dict[str, Any] = {"hours": 1.0, "change": None, "replications": 2, "seed": 0, **kwargs}
    with pytest.raises(ValidationError) as err:
        fork(xiaohe, loaded, **args)
    assert err.value.field == field


def test_bad_snapshots_name_the_field(xiaohe: District, loaded: dict[str, Any]) -> None:
    cases: list[tuple[Any, str]] = [({**loaded, "now": None}, "snapshot.now"), ({**loaded, "mode": "calm"}, "snapshot.mode"),
                        ({**loaded, "open_events": [{"id": "E1"}]}, "snapshot.open_events"),
                        ({**loaded, "members": {"CG001": 3}}, "snapshot.members"), ([], "snapshot")]
    for snap, field in cases:
        with pytest.raises(ValidationError) as err:
            fork(xiaohe, snap, hours=1, change=None, replications=2)
        assert err.value.field == field


def test_shift_swaps_follow_the_members_into_a_changed_district(xiaohe: District) -> None:
    day = datetime(2026, 3, 2, tzinfo=xiaohe.roster.tz).toordinal()
    live = copy.copy(xiaohe)
    cg = [m for m in xiaohe.roster.members if m.role.value == "co_governance"]
    a = next(m for m in cg if xiaohe.roster.shift_of(m, day) == "day")
    b = next(m for m in cg if xiaohe.roster.shift_of(m, day) == "night")
    live.roster = xiaohe.roster.with_swaps(xiaohe.roster.swap(a.id, b.id, day))
    arm = _changed_district(live, {"staff.co_governance.count": 80})
    rename, dropped, _ = _member_map(live, arm)
    assert dropped == []
    swapped, notes = carry_swaps(live, arm, rename)
    assert notes == [] and swapped is not arm and not getattr(arm.roster, "swaps", None)
    assert swapped.roster.shift_of(swapped.roster.member(rename[a.id]), day) == "night"
    assert swapped.roster.shift_of(swapped.roster.member(rename[b.id]), day) == "day"


# --- the engine's start state, on the hand-made street where every step is known ---------------------

class NoDemand:
    """Nothing new happens: only the carried events."""

    def incidents(self, start_s: float, end_s: float) -> list[Incident]:
        return []

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        pass

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        return 0.0


def test_the_engine_carries_each_state_on_from_where_it_is() -> None:
    d = make_tiny_district()
    spec = d.catalog["CM01"]
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=d.roster.tz).timestamp()
    loc = d.locate_xy(150.0, 0.0)

    def event(eid: str, *steps: tuple[Action, dict[str, Any]]) -> Any:
        e = new_event(event_id=eid, scenario="CM01", category=spec.category, severity=spec.severity.value,
                      source="patrol", location=loc, now=t0 - 300)
        for k, (action, data) in enumerate(steps, 1):
            e, _ = apply(e, action, now=t0 - 300 + 10 * k, actor="test", **data)
        return e

    events = [
        event("E1"),                                                                   # waiting, tier 0
        event("E2", (Action.DISPATCH, {"member": "GW1"})),                             # unsigned, deadline gone
        event("E3", (Action.DISPATCH, {"member": "CG1", "tier": 1}), (Action.SIGN, {})),  # signed
        event("E4", (Action.DISPATCH, {"member": "EN1", "tier": 2}), (Action.SIGN, {}),
              (Action.ARRIVE, {})),                                                    # on scene, top tier
        event("E5", (Action.DISPATCH, {"member": "GW3"}), (Action.SIGN, {}), (Action.ARRIVE, {}),
              (Action.RESOLVE, {"result": "done"})),                                  # resolved
    ]
    members = {"GW1": MemberState(0, True), "CG1": MemberState(1, True), "EN1": MemberState(2, True),
               "GW2": MemberState(2), "GHOST": MemberState(0, True)}
    state = StartState(t0, tuple(events), members, {"GW1": "E2", "CG1": "E3", "EN1": "E4"})
    params = ResponseParams(keep_audit=True, handling="exponential", sign_mean_s=5.0)
    run = run_once(d, lambda ss: NoDemand(), days=1.0, seed=1, params=params, start_state=state)
    assert run.carried == 5 and run.backlog == 0
    assert run.notes == ["member GHOST is not in this district: dropped"]
    recs = {r.event_id: r for r in run.records}
    assert set(recs) == {"E1", "E2", "E3", "E4", "E5"} and all(r.outcome == "closed" for r in recs.values())
    first: dict[str, list[tuple[float, Action, str]]] = {}
    for a in run.audit:
        first.setdefault(a.event_id, []).append((round(a.at - t0, 3), a.action, a.actor))
    assert first["E2"][0] == (0.0, Action.REASSIGN, "timer")  # its 60 s to sign ran out before the fork
    assert first["E1"][0][:2] == (0.0, Action.DISPATCH)  # GW2 is free at the fork
    assert next(x[1] for x in first["E3"] if x[2] == "CG1") is Action.ARRIVE  # travels on, no second signature
    assert first["E4"][0][1] in (Action.RESOLVE, Action.CONSULT) and first["E4"][0][2] == "EN1"
    assert [x[1] for x in first["E5"]] == [Action.VERIFY]
    assert recs["E3"].respond_s == 10.0 and recs["E1"].wait_s == 300.0
    assert all(a.at >= t0 for a in run.audit)
    again = run_once(d, lambda ss: NoDemand(), days=1.0, seed=1, params=params, start_state=state)
    assert [a.to_dict() for a in again.audit] == [a.to_dict() for a in run.audit]


def test_week_alignment_asks_the_model_for_the_same_wall_clock_window(xiaohe: District) -> None:
    calls: list[tuple[float, float]] = []

    class Recorder(NoDemand):
        def incidents(self, start_s: float, end_s: float) -> list[Incident]:
            calls.append((start_s, end_s))
            cam = xiaohe.cameras[0]
            loc = xiaohe.locate_xy(cam.x, cam.y)
            return [Incident(1, start_s + 1.0, "CM01", loc)]

    wed_1030 = datetime(2026, 3, 4, 10, 30, tzinfo=xiaohe.roster.tz).timestamp()
    off = week_offset(wed_1030, xiaohe)
    assert off == 2 * DAY_S + 10.5 * 3600
    got = WeekAligned(Recorder(), off, lookback_s=0).incidents(0.0, DAY_S)
    assert calls == [(off, 3 * DAY_S), (3 * DAY_S, DAY_S + off)]
    assert [i.t_s for i in got] == [1.0, 3 * DAY_S + 1.0 - off]
    assert np.isclose(got[1].t_s, 13.5 * 3600 + 1.0)
    # by default the first window also looks back a day: problems already in the street
    calls.clear()
    got = WeekAligned(Recorder(), off).incidents(0.0, DAY_S)
    assert calls == [(off - DAY_S, 2 * DAY_S), (2 * DAY_S, off), (off, 3 * DAY_S), (3 * DAY_S, DAY_S + off)]
    assert [i.t_s < 0 for i in got] == [True, True, False, False]


def test_latent_incidents_count_only_if_reported_after_the_start(xiaohe: District) -> None:
    """A fork's look-back: an incident that began before the run is reported in the run only
    if its discovery falls after the start (earlier ones belong to the start state)."""
    cam = xiaohe.cameras[0]
    loc = xiaohe.locate_xy(cam.x, cam.y)
    spec = next(s for s in xiaohe.catalog if s.sources == (Source.REFERRAL_110,) or Source.REFERRAL_110 in s.sources)

    class Latent(NoDemand):
        def incidents(self, start_s: float, end_s: float) -> list[Incident]:
            if start_s > 0:
                return []
            return [Incident(1, -200.0, spec.code, loc, referral=True), Incident(2, -30.0, spec.code, loc, referral=True)]

    params = ResponseParams(referral_s=90.0, citizen_p=0.0, patrol_notice_p=0.0)
    run = run_once(xiaohe, lambda ss: Latent(), days=0.05, seed=1, params=params)
    assert [r.incident_id for r in run.records] == [2] and run.incidents == 1
    assert run.records[0].reported_s == pytest.approx(60.0)


def test_the_engine_refuses_a_start_that_disagrees_with_the_state() -> None:
    d = make_tiny_district()
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=d.roster.tz).timestamp()
    with pytest.raises(ValueError, match="start"):
        run_once(d, lambda ss: NoDemand(), days=0.1, seed=1, start=datetime(2026, 3, 2, 11, 0),
                 start_state=StartState(t0))


def test_forks_run_in_a_low_priority_worker_process_that_comes_back_after_a_crash(
        xiaohe: District, loaded: dict[str, Any]) -> None:
    """The API's fork runner: the same answer as a fork in this process, errors raised as
    they are, and a worker that dies (killed mid-fork) is answered with ForkFailed and
    replaced by a new one for the next fork."""
    import asyncio
    import os
    import signal

    import psutil

    from actors.forks import FORK_NICE, ForkFailed, ForkRunner

    async def main() -> None:
        runner = ForkRunner(xiaohe)
        try:
            pid = await runner.worker_pid()
            assert pid != os.getpid() and psutil.Process(pid).nice() >= psutil.Process().nice() + FORK_NICE
            out = await runner.run(loaded, hours=2, change={"staff.co_governance.count": 70}, replications=2, seed=5)
            here = fork(xiaohe, loaded, hours=2, change={"staff.co_governance.count": 70}, replications=2, seed=5)
            assert json.dumps(out, sort_keys=True, default=str) == json.dumps(here, sort_keys=True, default=str)
            with pytest.raises(ValidationError) as bad:
                await runner.run(loaded, hours=2, change={"staff.nobody.count": 3}, replications=2)
            assert bad.value.field.startswith("change")
            long = asyncio.create_task(runner.run(loaded, hours=168, change=None, replications=100))
            await asyncio.sleep(1.5)
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(ForkFailed, match="try again"):
                await long
            again = await runner.run(loaded, hours=1, change=None, replications=2)
            assert again["hours"] == 1 and await runner.worker_pid() != pid
        finally:
            runner.close()

    asyncio.run(main())
