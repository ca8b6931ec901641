"""One model, two clocks: the what-if simulator and the live twin decide alike.

- *Scripted*: the hand-made street, deterministic delays, a scripted day (signing late, a
  handler who never arrives, a shift change in the middle of an event, wartime) through the
  SimPy engine and through the live twin on a virtual clock: the same transitions, by the
  same people, at the same times.
- *Statistical*: a simulated week of xiaohe, the live twin (demand model, simulated handlers)
  against the simulator on the same seeds: every headline KPI of one inside the other's
  95% confidence interval.
- *Fork*: a what-if fork "as is" from a live snapshot predicts the next 8 hours; the live
  twin then plays them: its outcome inside the fork's 95% prediction interval.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from actors.eventlog import open_log
from actors.virtual import VirtualLive
from scenarios.engine import Engine
from scenarios.model import Incident, ResponseParams
from scenarios.results import estimate
from tests.conftest import make_spec, make_tiny_district
from twin import kpis as twin_kpis
from twin.catalog import Catalog, Category, ScenarioSpec, Severity, Source
from twin.district import District
from twin.staff import Mode, Role

# --- scripted -----------------------------------------------------------------------------------

START_HOUR = 7  # the run starts at 07:00 local, in the night shift (20:00-08:00)


class ScriptDemand:
    """The scripted reports: incidents at fixed times, reported by 110 after ``referral_s``."""

    def __init__(self, incidents: list[Incident]) -> None:
        self.list = incidents

    def incidents(self, start_s: float, end_s: float) -> list[Incident]:
        return [i for i in self.list if start_s <= i.t_s < end_s]

    def feedback(self, incident: Incident, outcome: str, now_s: float) -> None:
        pass

    def self_correct_p(self, incident: Incident, base_p: float) -> float:
        return base_p


class ScriptDelays:
    """Deterministic handler behaviour, per event (its serial number) and member."""

    def __init__(self, sign: dict[tuple[int, str], float], travel: dict[tuple[int, str], float],
                 handling: dict[int, float], corrects: set[int], escalates: set[int]) -> None:
        self.sign, self.travel, self.handling = sign, travel, handling
        self.corrects, self.escalates = corrects, escalates

    @staticmethod
    def n(event_id: str) -> int:
        return int("".join(c for c in event_id if c.isdigit()))

    def sign_s(self, event_id: str, member: str) -> float:
        return self.sign.get((self.n(event_id), member), 10.0)

    def travel_s(self, estimate_s: float, event_id: str, member: str) -> float:
        return self.travel.get((self.n(event_id), member), 90.0)

    def handling_s(self, spec: ScenarioSpec, event_id: str, member: str) -> float:
        return self.handling.get(self.n(event_id), 400.0)

    def verify_s(self, event_id: str) -> float:
        return 300.0

    def self_corrects(self, p: float, event_id: str) -> bool:
        return self.n(event_id) in self.corrects

    def resolves(self, event_id: str, member: str) -> bool:
        return self.n(event_id) not in self.escalates

    def consults(self, event_id: str) -> bool:
        return False


def _street() -> District:
    """The hand-made street with day and night shifts, and three catalog scenarios reported
    by 110: a shop outside its storefront (grid worker reminds first), an urgent hazard
    (brigade, 60/180/300 s) and an enforcement case."""
    d = make_tiny_district(day_night=True)
    ref = (Source.REFERRAL_110,)
    specs = [make_spec("CM01", sources=ref, respond_s=60, on_scene_s=900, reinforce_s=1800, self_correct_p=0.5),
             make_spec("PS04", chain=(Role.CO_GOVERNANCE, Role.ENFORCEMENT), sources=ref, severity=Severity.HIGH,
                       respond_s=60, on_scene_s=180, reinforce_s=300, merge_radius_m=0),
             make_spec("TR01", chain=(Role.CO_GOVERNANCE, Role.ENFORCEMENT), sources=ref, respond_s=60,
                       on_scene_s=600, reinforce_s=1200, merge_radius_m=0)]
    d.catalog = Catalog([Category("city_management", "城市管理", "City management", "CM01")], specs)
    return d


def _script(d: District) -> tuple[list[Incident], ScriptDelays]:
    west, east = d.locate(*_lonlat(d, 50.0)), d.locate(*_lonlat(d, 300.0))
    h = 3600.0
    times = [  # (seconds after 07:00, scenario, where)
        (50 * 60, "CM01", west),       # 1: night: no grid worker, the brigade's CG2 takes it and signs late
        (70 * 60, "PS04", west),       # 2: 08:10, CG1 slow to arrive: reinforcement, late too
        (2 * h, "CM01", west),         # 3: 09:00, a grid worker reminds; the shop corrects it
        (2 * h + 600, "CM01", west),   # 4: 09:10, GW1 signs late: reassigned to GW2, who reminds in vain
        (3 * h, "TR01", east),         # 5: 10:00, handled on site, cannot be resolved: enforcement
        (13 * h - 75, "TR01", west),   # 6: 19:58:45, unsigned at 20:00: handed over to the night shift
        (14 * h, "PS04", west),        # 7: 21:00, CG2 never arrives, and nobody is free to reinforce
    ]
    incidents = [Incident(k, t, code, loc, referral=True) for k, (t, code, loc) in enumerate(times, 1)]
    delays = ScriptDelays(
        sign={(1, "CG2"): 70.0, (2, "CG1"): 20.0, (4, "GW1"): 75.0, (6, "CG1"): 50.0, (6, "CG2"): 15.0},
        travel={(2, "CG1"): 400.0, (2, "EN1"): 200.0, (1, "EN1"): 120.0, (7, "CG2"): math.inf},
        handling={1: 300.0, 5: 500.0},
        corrects={3}, escalates={5})
    return incidents, delays


def _lonlat(d: District, x: float) -> tuple[float, float]:
    lon, lat = d.projection.to_lonlat(x, 0.0)
    return float(lon), float(lat)


def _start(d: District) -> float:
    return datetime(2026, 3, 2, START_HOUR, 0, tzinfo=d.roster.tz).timestamp()


def _normal(records: list[Any], start: float) -> list[tuple[float, int, str, str, Any]]:
    """``(seconds, event number, action, actor, member(s))`` of each record, events numbered
    in the order they were reported (the engines name them differently)."""
    number: dict[str, int] = {}
    out = []
    for r in records:
        number.setdefault(r.event_id, len(number) + 1)
        who = r.data.get("member") or tuple(r.data.get("members") or ()) or None
        out.append((round(r.at - start, 3), number[r.event_id], r.action.value, r.actor, who))
    return out


@pytest.mark.parametrize("mode", [Mode.PEACETIME, Mode.WARTIME])
def test_a_scripted_day_runs_the_same_in_the_simulator_and_the_live_twin(mode: Mode) -> None:
    d = _street()
    incidents, delays = _script(d)
    start = _start(d)
    params = ResponseParams(keep_audit=True, referral_s=30.0, reminder_s=120.0, citizen_p=0.0, mode=mode)
    engine = Engine(d, ScriptDemand(incidents), params=params, seed=1, start=datetime.fromtimestamp(start, d.roster.tz),
                    delays=delays)
    engine.run(1.0)
    sim = _normal(engine.audit, start)

    live = VirtualLive(d, open_log(":memory:"), lambda ss: ScriptDemand(incidents), start=start, params=params,
                       seed=1, delays=delays)
    live.run(start + 86_400.0)
    got = _normal([r for _, r in live.twin.log.records()], start)
    assert got == sim
    actions = [(n, a) for _, n, a, _, _ in sim]
    # the script exercised what it was written for
    if mode is Mode.PEACETIME:
        assert (1, "escalate") in actions and (2, "request_reinforcement") in actions
        assert (2, "supervise") in actions and (4, "reassign") in actions and (7, "supervise") in actions
        assert (7, "arrive") not in actions
        assert any(a == "reassign" and actor == "brain" and n == 6 for _, n, a, actor, _ in sim)  # handover
        assert ("self-corrected" in live.twin.events[next(e for e in live.twin.events if e.endswith("3"))].result)
    else:
        first = [who for _, n, a, _, who in sim if n == 3 and a == "dispatch"]
        assert first and first[0].startswith("CG")  # wartime: no grid worker's reminder
    assert len(sim) > 40


# --- statistical: a week of xiaohe -----------------------------------------------------------------

REPLICATIONS = 4


def _monday(d: District) -> float:
    return datetime(2026, 1, 5, tzinfo=d.roster.tz).timestamp()


@pytest.mark.slow
def test_a_week_of_the_live_twin_agrees_with_the_simulator(xiaohe: District) -> None:
    from scenarios.demand import DemandModel
    from scenarios.engine import run_once
    from scenarios.results import kpis
    from scenarios.rng import child_seed

    xiaohe.roads.precompute_travel()
    root = np.random.SeedSequence(1)
    names = twin_kpis.kpi_names()
    live: dict[str, list[float]] = {n: [] for n in (*names, "events")}
    sim: dict[str, list[float]] = {n: [] for n in (*names, "events")}
    start = _monday(xiaohe)
    for k in range(REPLICATIONS):
        ss = child_seed(root, k)
        v = VirtualLive(xiaohe, open_log(":memory:"), lambda s: DemandModel(xiaohe, s), start=start, seed=ss)
        got = v.run(start + 7 * 86_400.0)
        run = kpis(run_once(xiaohe, lambda s: DemandModel(xiaohe, s), days=7, seed=ss,
                            start=datetime.fromtimestamp(start, xiaohe.roster.tz)))
        for n in names:
            live[n].append(math.nan if got[n] is None else got[n])
            sim[n].append(run[n])
            if n == names[2]:  # few reinforcements per week: the overall share is compared above
                continue
            # and the brigade's own stage (from the escalation that brought each event to it)
            tier = f"co_governance {n}"
            live.setdefault(tier, []).append(
                math.nan if got["by_tier"]["co_governance"][n] is None else got["by_tier"]["co_governance"][n])
            sim.setdefault(tier, []).append(run["by_tier"]["co_governance"][n])
        live["events"].append(got["events"])
        sim["events"].append(run["events"])
    for n in live:
        a, b = estimate(live[n]), estimate(sim[n])
        assert b.contains(a.mean) or a.contains(b.mean), (n, a, b)


# --- a fork predicts what the live twin then does -----------------------------------------------------

@pytest.mark.slow
def test_a_fork_as_is_predicts_the_next_eight_hours_of_the_live_twin(xiaohe: District) -> None:
    from scenarios.demand import DemandModel
    from scenarios.whatif import fork

    xiaohe.roads.precompute_travel()
    start = _monday(xiaohe)
    v = VirtualLive(xiaohe, open_log(":memory:"), lambda s: DemandModel(xiaohe, s), start=start, seed=1)
    at = start + 33 * 3600.0  # Tuesday 09:00, a busy morning
    v.run(at)
    snapshot = v.twin.snapshot()
    carried = {e.id for e in snapshot["open_events"]}
    assert carried  # the fork has live work to carry on
    out = fork(xiaohe, snapshot, hours=8, change=None, replications=20, seed=3)
    v.run(at + 8 * 3600.0)
    evs = [e for e in v.twin.events.values() if e.id in carried or at <= e.reported_at < at + 8 * 3600.0]
    firsts = {e.id: v.twin.firsts[e.id] for e in evs}
    shares = twin_kpis.shares(twin_kpis.outcomes_of(evs, firsts, at + 8 * 3600.0))
    live = {**shares, "events": float(len(evs))}
    for name, value in live.items():
        pi = out["as_is_prediction95"][name]
        if math.isnan(value) or pi["lo"] is None:
            continue
        assert pi["lo"] <= value <= pi["hi"], (name, value, pi)


def test_the_desk_is_the_one_place_that_decides() -> None:
    """Neither engine applies a transition or picks a member itself: both go through the desk."""
    import inspect

    import actors.live as live
    import scenarios.engine as engine

    for module in (engine, live):
        src = inspect.getsource(module)
        for banned in ("dispatch(", "plan_deadline(", "remedy(", "apply(", "advance(", "handover_reassignments("):
            assert f" {banned}" not in src and f"={banned}" not in src, (module.__name__, banned)



def test_records_time_the_stage_that_handled_each_event_from_its_escalation() -> None:
    """An event the grid worker reminded in vain is the brigade's from the escalation on:
    its ``stage_*`` times run from there (the first-dispatch figures stay the grid worker's)."""
    d = _street()
    incidents, delays = _script(d)
    start = _start(d)
    params = ResponseParams(keep_audit=True, referral_s=30.0, reminder_s=120.0, citizen_p=0.0)
    engine = Engine(d, ScriptDemand(incidents), params=params, seed=1, start=datetime.fromtimestamp(start, d.roster.tz),
                    delays=delays)
    result = engine.run(1.0)
    by_event: dict[str, list[Any]] = {}
    for r in engine.audit:
        by_event.setdefault(r.event_id, []).append(r)
    checked = 0
    for rec in result.records:
        log = by_event[rec.event_id]
        t0 = log[0].at
        escalations = [r.at for r in log if r.action.value == "escalate"]
        since = escalations[-1] if escalations else t0
        assert rec.stage_s == pytest.approx(since - t0)
        dispatch = next((r.at for r in log if r.at >= since and r.action.value in ("dispatch", "reassign")), None)
        sign = next((r.at for r in log if r.at >= since and r.action.value == "sign"), None)
        arrive = next((r.at for r in log if r.at >= since and r.action.value in ("arrive", "reinforce")), None)
        assert (math.isnan(rec.stage_wait_s) if dispatch is None else rec.stage_wait_s == pytest.approx(dispatch - since))
        assert (math.isnan(rec.stage_respond_s) if sign is None or dispatch is None
                else rec.stage_respond_s == pytest.approx(sign - dispatch))
        assert (math.isnan(rec.stage_on_scene_s) if arrive is None
                else rec.stage_on_scene_s == pytest.approx(arrive - since))
        if escalations:
            checked += 1
            assert rec.wait_s == pytest.approx(next(r.at for r in log if r.action.value == "dispatch") - t0)
    assert checked >= 2  # the script escalates events 4 and 5
