"""The event lifecycle: every transition, legal and illegal; the audit trail; replay."""

from __future__ import annotations

from dataclasses import replace

import pytest

from twin.errors import IllegalTransition, TwinError, ValidationError
from twin.geo import Location
from twin.workflow import (
    TRANSITIONS,
    Action,
    AuditRecord,
    Event,
    State,
    advance,
    allowed_actions,
    apply,
    replay,
    report,
)
from twin.workflow import (
    new_event as open_event,
)

LOC = Location(lon=120.13, lat=30.31, x=0.0, y=0.0, road_id="r1", node=0, grid_id="G001",
               community_id="C01", area_id="A1", road_distance_m=3.0)
T0 = 1_700_000_000.0

DATA = {
    Action.DISPATCH: {"member": "GW1"},
    Action.REASSIGN: {"member": "GW9"},
    Action.REQUEST_REINFORCEMENT: {"members": ["CG1"]},
    Action.ESCALATE: {"chain_length": 3},
    Action.MERGE: {"into": "E-other"},
    Action.CONSULT: {"departments": ["生态环境分局"]},
    Action.RESOLVE: {"result": "goods moved back inside", "evidence": ["photo-1"]},
}


def new_event() -> Event:
    event, _ = report(event_id="E1", scenario="CM01", category="city_management", severity="low",
                      source="camera", location=LOC, now=T0, actor="camera:K0001")
    return event


def in_state(state: State) -> Event:
    """An event sitting in ``state`` with a plausible history."""
    e = new_event()
    return replace(e, state=state, assignee="GW1", dispatched_at=T0 + 5, updated_at=T0 + 10)


CASES = [(a, s) for a in Action if a is not Action.REPORT for s in State]


@pytest.mark.parametrize(("action", "state"), CASES, ids=[f"{a.value}-from-{s.value}" for a, s in CASES])
def test_every_transition(action: Action, state: State) -> None:
    event = in_state(state)
    target = TRANSITIONS[action].get(state)
    if target is None:
        with pytest.raises(IllegalTransition) as err:
            apply(event, action, now=T0 + 20, actor="tester", **DATA.get(action, {}))
        msg = str(err.value)
        assert f"cannot '{action.value}'" in msg and f"state '{state.value}'" in msg
        assert err.value.allowed == allowed_actions(state)
    else:
        new, rec = apply(event, action, now=T0 + 20, actor="tester", reason="test",
                         **DATA.get(action, {}))
        assert new.state is target
        assert (rec.from_state, rec.to_state, rec.action) == (state, target, action)
        assert rec.seq == new.version == event.version + 1
        assert rec.at == new.updated_at == T0 + 20


@pytest.mark.parametrize(("action", "state"), CASES, ids=[f"{a.value}-from-{s.value}" for a, s in CASES])
def test_advance_is_apply_without_the_record(action: Action, state: State) -> None:
    """The simulator's record-less path makes the same event, or refuses with the same error."""
    event = in_state(state)
    data = DATA.get(action, {})
    if TRANSITIONS[action].get(state) is None:
        with pytest.raises(IllegalTransition):
            advance(event, action, T0 + 20, "test", data)
        return
    assert advance(event, action, T0 + 20, "test", data) == apply(event, action, now=T0 + 20, actor="x",
                                                                reason="test", **data)[0]


def test_new_event_equals_the_reported_one() -> None:
    kw = {"event_id": "E1", "scenario": "CM01", "category": "city_management", "severity": "low",
          "source": "camera", "location": LOC, "now": T0}
    assert open_event(**kw) == report(**kw, actor="camera:K0001")[0] == Event(
        id="E1", scenario="CM01", category="city_management", severity="low", source="camera",
        reported_at=T0, location=LOC, updated_at=T0)
    with pytest.raises(ValidationError, match="event_id"):
        open_event(**{**kw, "event_id": ""})


def test_terminal_states_allow_nothing() -> None:
    for state in (State.CLOSED, State.MERGED, State.FALSE_ALARM):
        assert allowed_actions(state) == ()
        with pytest.raises(IllegalTransition, match="the event is closed"):
            apply(in_state(state), Action.SUPERVISE, now=T0 + 20, actor="x")


def test_closed_loop_and_audit_log() -> None:
    """report → dispatch → sign → arrive → resolve → verify, as the case study's closed loop."""
    e, r0 = report(event_id="E1", scenario="CM01", category="city_management", severity="low",
                   source="camera", location=LOC, now=T0, actor="camera:K0001")
    log = [r0]
    steps = [(Action.DISPATCH, 2, "brain", {"member": "GW1", "travel_s": 40.0}),
             (Action.SIGN, 30, "GW1", {}),
             (Action.ARRIVE, 95, "GW1", {}),
             (Action.RESOLVE, 400, "GW1", {"result": "merchant moved the goods back"}),
             (Action.VERIFY, 700, "CG3", {})]
    for action, dt, actor, data in steps:
        e, rec = apply(e, action, now=T0 + dt, actor=actor, **data)
        log.append(rec)
    assert [(r.actor, r.at - T0, r.to_state.value) for r in log] == [
        ("camera:K0001", 0, "reported"), ("brain", 2, "dispatched"), ("GW1", 30, "signed"),
        ("GW1", 95, "on_scene"), ("GW1", 400, "resolved"), ("CG3", 700, "closed")]
    assert (e.dispatched_at, e.signed_at, e.on_scene_at, e.closed_at) == (T0 + 2, T0 + 30, T0 + 95, T0 + 700)
    assert e.result == "merchant moved the goods back"
    # The log is the truth: replaying it, also through plain dicts (the wire), gives the same event.
    assert replay(log)["E1"] == e
    assert replay(AuditRecord.from_dict(r.to_dict()) for r in log)["E1"] == e


def test_escalation_ladder_climbs_and_stops_at_the_top() -> None:
    e = new_event()
    e, _ = apply(e, Action.DISPATCH, now=T0 + 1, actor="brain", member="GW1")
    e, _ = apply(e, Action.ESCALATE, now=T0 + 61, actor="timer", chain_length=3)
    assert (e.state, e.tier, e.assignee, e.escalations) == (State.ESCALATED, 1, None, 1)
    e, _ = apply(e, Action.DISPATCH, now=T0 + 62, actor="brain", member="CG1")
    e, _ = apply(e, Action.ESCALATE, now=T0 + 130, actor="timer", chain_length=3)
    e, _ = apply(e, Action.DISPATCH, now=T0 + 131, actor="brain", member="EN1")
    assert e.tier == 2
    with pytest.raises(IllegalTransition):
        apply(e, Action.ESCALATE, now=T0 + 200, actor="timer", chain_length=3)


def test_reinforcement_and_consultation_paths() -> None:
    e = new_event()
    e, _ = apply(e, Action.DISPATCH, now=T0 + 1, actor="brain", member="CG1")
    e, _ = apply(e, Action.SIGN, now=T0 + 20, actor="CG1")
    e, _ = apply(e, Action.REQUEST_REINFORCEMENT, now=T0 + 180, actor="timer", members=["CG2"])
    e, _ = apply(e, Action.ARRIVE, now=T0 + 200, actor="CG1")
    assert e.state is State.REINFORCEMENT_REQUESTED and e.on_scene_at == T0 + 200
    e, _ = apply(e, Action.REINFORCE, now=T0 + 260, actor="CG2")
    assert (e.state, e.reinforced_at, e.reinforcements) == (State.ON_SCENE, T0 + 260, ("CG2",))
    e, _ = apply(e, Action.CONSULT, now=T0 + 900, actor="CG1", departments=["生态环境分局", "市场监管所"])
    assert e.state is State.CONSULTATION and e.assignee is None
    e, _ = apply(e, Action.DISPATCH, now=T0 + 3600, actor="command-centre", member="EN1", tier=2)
    assert (e.state, e.tier, e.assignee) == (State.DISPATCHED, 2, "EN1")


def test_reopen_after_failed_verification() -> None:
    e = in_state(State.ON_SCENE)
    e, _ = apply(e, Action.RESOLVE, now=T0 + 30, actor="GW1", result="done")
    e, _ = apply(e, Action.REOPEN, now=T0 + 40, actor="CG1", reason="goods are back on the pavement")
    assert (e.state, e.assignee, e.resolved_at) == (State.REPORTED, None, None)


def test_bad_details_are_named() -> None:
    e = new_event()
    with pytest.raises(ValidationError, match="^member: is required to 'dispatch'"):
        apply(e, Action.DISPATCH, now=T0 + 1, actor="brain")
    with pytest.raises(ValidationError, match="^action: unknown action 'teleport'"):
        apply(e, "teleport", now=T0 + 1, actor="brain")
    with pytest.raises(ValidationError, match="^now: time runs backwards"):
        apply(e, Action.DISPATCH, now=T0 - 1, actor="brain", member="GW1")
    with pytest.raises(ValidationError, match="^into: an event cannot be merged into itself"):
        apply(e, Action.MERGE, now=T0 + 1, actor="brain", into="E1")
    d, _ = apply(e, Action.DISPATCH, now=T0 + 1, actor="brain", member="GW1")
    with pytest.raises(ValidationError, match="already assigned"):
        apply(d, Action.REASSIGN, now=T0 + 2, actor="brain", member="GW1")
    with pytest.raises(ValidationError, match="^tier: must be an integer"):
        apply(e, Action.DISPATCH, now=T0 + 1, actor="brain", member="GW1", tier=-1)


def test_replay_rejects_an_inconsistent_log() -> None:
    e, r0 = report(event_id="E1", scenario="CM01", category="city_management", severity="low",
                   source="camera", location=LOC, now=T0, actor="cam")
    e, r1 = apply(e, Action.DISPATCH, now=T0 + 1, actor="brain", member="GW1")
    _, r2 = apply(e, Action.SIGN, now=T0 + 2, actor="GW1")
    with pytest.raises(TwinError, match="out of sequence"):
        replay([r0, r2])
    with pytest.raises(TwinError, match="precedes the event's report"):
        replay([r1])
    with pytest.raises(TwinError, match="reported twice"):
        replay([r0, r0])
    forged = replace(r2, to_state=State.CLOSED)
    with pytest.raises(TwinError, match="replay reaches 'signed'"):
        replay([r0, r1, forged])


def test_errors_survive_being_rebuilt_from_their_args() -> None:
    """SimPy re-raises process errors as type(e)(*e.args), and Ray pickles them."""
    import pickle

    from twin.errors import NotFound

    for err in (IllegalTransition("E1", "sign", "closed", ()), ValidationError("lat", "out of range", "f.toml"),
                NotFound("member", "GW9")):
        again = type(err)(*err.args)
        assert str(again) == str(err) and str(pickle.loads(pickle.dumps(err))) == str(err)
