"""On-call members (备勤, an ``on_call`` rotation): off the street in peacetime, called in by a
switch to wartime in the live twin and in a wartime simulation alike, ``call_in_min`` later."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import scenarios
from actors.brain import Brain
from actors.eventlog import open_log
from actors.virtual import ManualClock
from scenarios.model import ResponseParams
from twin.district import District
from twin.staff import Mode, Role

#: A brigade of 8 on 四班三倒 and a reserve of 8 on call on the same rotation.
RESERVE = {
    "rotations.reserve": {"kind": "continuous", "shifts": ["night", "day", "evening"], "days_on": 2, "days_off": 2,
                          "on_call": True},
    "roster.call_in_min": 20,
    "staff.co_governance.count": 16,
    "staff.co_governance.patterns": [{"area": "A1", "rotation": "four_team", "people": 8},
                                     {"area": "A1", "rotation": "reserve", "people": 8}],
}


@pytest.fixture(scope="module")
def district(tiny_folder: Path) -> District:
    return scenarios.load(str(tiny_folder), RESERVE)


def _reserve(d: District) -> set[str]:
    return {m.id for m in d.roster.members if m.rotation == "reserve"}


def test_a_bad_call_in_time_is_named(tiny_folder: Path) -> None:
    from twin.errors import ValidationError

    with pytest.raises(ValidationError, match="roster.call_in_min"):
        scenarios.load(str(tiny_folder), {**RESERVE, "roster.call_in_min": -5})


def test_the_reserve_works_only_in_a_wartime_simulation(district: District) -> None:
    reserve = _reserve(district)
    assert len(reserve) == 8
    handlers = {}
    for mode in (Mode.PEACETIME, Mode.WARTIME):
        run = scenarios.run(district, days=2, seed=4, params=ResponseParams(mode=mode))
        handlers[mode] = {r.handler for r in run.events if r.handler}
    assert handlers[Mode.PEACETIME] and not handlers[Mode.PEACETIME] & reserve
    assert handlers[Mode.WARTIME] & reserve, "in wartime the reserve takes events"


def test_the_live_twin_calls_the_reserve_in_and_remembers_it(district: District, tmp_path: Path) -> None:
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=district.roster.tz).timestamp()
    clock = ManualClock(origin)
    path = tmp_path / "log.db"
    brain = Brain(district, open_log(path), clock)
    reserve = _reserve(district)

    def status() -> dict[str, Any]:
        return {m["id"]: m["status"] for m in brain.members() if m["id"] in reserve}

    rostered = {mid for mid, s in status().items() if s == "on_call"}
    assert rostered and set(status().values()) <= {"on_call", "off", "absent"}
    out = brain.set_mode("wartime", actor="test")
    assert out["mode"] == "wartime" and not rostered & set(out["on_duty"])
    clock.set(origin + 20 * 60)
    assert rostered <= set(brain.roster()["on_duty"])  # in 20 minutes, on duty
    # A restart rebuilds the same roster from the log.
    again = Brain(district, open_log(path), ManualClock(origin + 20 * 60))
    assert rostered <= set(again.roster()["on_duty"])
    brain.set_mode("peacetime", actor="test")
    assert not rostered & set(brain.roster()["on_duty"])
    assert {s for mid, s in status().items() if mid in rostered} == {"on_call"}


def test_a_plans_reserve_goes_on_call_on_the_roles_rotation(tiny_folder: Path) -> None:
    from scenarios.staffing import StaffingPlan

    d = scenarios.load_cached(str(tiny_folder))
    rot = d.roster.rotations[Role.CO_GOVERNANCE]
    plan = StaffingPlan("co_governance", "met_1_3_5", 0.9, 0.1, {"A1": {"night": 2, "day": 3, "evening": 2}}, True,
                        pattern=rot, rotation=rot.code, teams=rot.teams)
    with_reserve = scenarios.load(str(tiny_folder), plan.reserve_overrides({"A1": 4}))
    on_call = [m for m in with_reserve.roster.members if with_reserve.roster.rotation_of(m).on_call]
    assert len(on_call) == 4 and {m.area_id for m in on_call} == {"A1"}
    assert with_reserve.roster.rotation_of(on_call[0]).cycles == rot.cycles  # the role's own rotation, on call
    assert plan.reserve_overrides({"A1": 0}) == plan.roster_overrides()
