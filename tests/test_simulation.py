"""The what-if engine on real scenarios: determinism, the workflow it drives, KPIs, sweeps,
staffing, and the command line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scenarios
from scenarios.demand import DemandModel
from scenarios.engine import Engine
from scenarios.model import ResponseParams
from scenarios.rng import child_seed
from twin.catalog import CAUSES
from twin.district import District
from twin.staff import DAY_S, Mode, Role
from twin.workflow import State, replay

BIN = Path(sys.executable).parent / "streetbrain"


def rows(result: scenarios.simulate.SimulationResult) -> list[tuple[object, ...]]:  # type: ignore[name-defined]
    """Event records as tuples with nan made comparable (nan != nan otherwise)."""
    return [tuple(None if isinstance(v, float) and v != v else v for v in dataclasses.astuple(r))
            for r in result.events]


@pytest.fixture(scope="module")
def tiny_run(tiny_folder: Path) -> scenarios.simulate.SimulationResult:  # type: ignore[name-defined]
    return scenarios.run(str(tiny_folder), days=3, seed=5, replications=2)


def test_same_seed_same_run_bit_for_bit(tiny_folder: Path) -> None:
    a = scenarios.run(str(tiny_folder), days=2, seed=9)
    b = scenarios.run(str(tiny_folder), days=2, seed=9)
    c = scenarios.run(str(tiny_folder), days=2, seed=10)
    assert rows(a) == rows(b) and rows(a)
    assert rows(a) != rows(c)


def test_replications_are_child_streams(tiny_folder: Path) -> None:
    both = scenarios.run(str(tiny_folder), days=2, seed=4, replications=2)
    second = scenarios.run(str(tiny_folder), days=2, seed=4, replication_ids=[1])
    assert rows(both)[len(both.runs[0].records):] == rows(second)


def test_common_random_numbers_keep_demand_across_staffing(tiny_folder: Path) -> None:
    """Two staffings compared with one seed face the very same incidents."""
    base = scenarios.load(str(tiny_folder))
    more = scenarios.load(str(tiny_folder), {"staff.co_governance.count": 6})
    a = scenarios.run(base, days=2, seed=3)
    b = scenarios.run(more, days=2, seed=3)
    # Staffing changes which incidents get discovered, not what happens in the street: every
    # incident seen in both runs is the same incident (same scenario, same onset, same place).
    truth = lambda res: {r.incident_id: (r.scenario, r.onset_s, r.grid_id) for r in res.events}
    ta, tb = truth(a), truth(b)
    both = ta.keys() & tb.keys()
    assert len(both) > 0.5 * min(len(ta), len(tb))
    day0 = [i for i in both if ta[i][1] < 86_400]
    assert day0 and all(ta[i] == tb[i] for i in day0)


def test_each_incident_comes_from_an_agent_of_its_scenarios_cause(xiaohe: District) -> None:
    """The catalog's ``cause`` picks the kind of agent: shops for CM01, elderly residents for PU01."""
    model = DemandModel(xiaohe, np.random.SeedSequence(2))
    kind_of = {a.uid: kind for kind, pool in model.pools.items() for a in pool.agents}
    assert set(kind_of.values()) == set(CAUSES)  # xiaohe has agents of every kind
    incidents = [i for day in range(7) for i in model.incidents(day * DAY_S, (day + 1) * DAY_S)]
    assert {xiaohe.catalog[i.scenario].cause for i in incidents} == set(CAUSES)
    assert all(kind_of[i.agent_id or ""] == xiaohe.catalog[i.scenario].cause for i in incidents)
    assert (xiaohe.catalog["CM01"].cause, xiaohe.catalog["PU01"].cause, xiaohe.catalog["TR01"].cause) == \
        ("merchant", "elderly", "street")


def test_the_audit_log_replays_to_the_engines_events(tiny_folder: Path) -> None:
    district = scenarios.load(str(tiny_folder))
    ss = np.random.SeedSequence(2)
    engine = Engine(district, DemandModel(district, child_seed(ss, 0)), seed=ss,
                    params=ResponseParams(keep_audit=True))
    engine.run(2)
    rebuilt = replay(engine.audit)
    assert rebuilt == engine.events
    closed = [e for e in rebuilt.values() if e.state is State.CLOSED]
    assert closed and all(e.closed_at is not None for e in closed)


def test_kpis_are_shares_and_cover_areas_and_shifts(tiny_run) -> None:  # type: ignore[no-untyped-def]
    s = tiny_run.summary()
    for key in ("responded_within_60s", "on_scene_within_180s", "within_targets"):
        assert 0.0 <= s[key] <= 1.0
        lo, hi = s["ci95"][key]
        assert 0.0 <= lo <= s[key] <= hi <= 1.0
    assert set(s["by_shift"]) <= {"day", "evening", "night"} and s["by_area"]
    assert s["events"] > 0 and s["utilisation"]["co_governance"] > 0
    df = tiny_run.to_pandas()
    assert len(df) == len(tiny_run.events) and set(df["replication"]) == {0, 1}


def test_wartime_gets_there_faster(tiny_folder: Path) -> None:
    peace = scenarios.run(str(tiny_folder), days=3, seed=8)
    war = scenarios.run(str(tiny_folder), days=3, seed=8, params=ResponseParams(mode=Mode.WARTIME))
    assert war.kpis["within_targets"].mean <= 1.0
    assert war.kpis["self_corrected"].mean < peace.kpis["self_corrected"].mean  # no reminder tier in wartime


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="^days: must be > 0"):
        scenarios.run("xiaohe", days=0)
    with pytest.raises(ValueError, match="^replications: must be an integer"):
        scenarios.run("xiaohe", days=1, replications=0)


def test_sweep_local_and_ray_agree(tiny_folder: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray not installed")
    from scenarios.ray_setup import init_ray
    from scenarios.sweep import sweep

    ray = init_ray(num_cpus=2)  # before anything else imports ray: loopback only

    grid = {"scenario.staff.co_governance.count": [2, 4], "response.mode": ["peacetime", "wartime"]}
    local = sweep(str(tiny_folder), grid, days=1, replications=2, backend="local")
    from scenarios.staffing import optimise_staffing

    question = {"kpi": "no_wait", "target": 0.999, "days": 2, "warmup_days": 0.5, "replications": 2,
                "verify_replications": 10, "max_iterations": 2, "max_trims": 1}
    plan_here = optimise_staffing(str(tiny_folder), **question)  # type: ignore[arg-type]
    try:
        remote = sweep(str(tiny_folder), grid, days=1, replications=2, backend="ray", num_cpus=2)
        plan_ray = optimise_staffing(str(tiny_folder), backend="ray", **question)  # type: ignore[arg-type]
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout
    finally:
        ray.shutdown()
    # The optimiser's replications on Ray are the same streams: the same plan, step by step.
    assert plan_ray.table == plan_here.table
    assert [(e.step, e.total, e.kpi.mean) for e in plan_ray.evaluations] == \
        [(e.step, e.total, e.kpi.mean) for e in plan_here.evaluations]
    def norm(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: None if isinstance(v, float) and v != v else v for k, v in r.items()} for r in rows]

    assert norm(local.rows) == norm(remote.rows)
    assert len(local.rows) == 8 and set(local.table.columns) >= {"on_scene_within_180s", "replication"}
    summary = local.summary()
    assert len(summary) == 4 and (summary["replications"] == 2).all()
    # Ray listens on loopback only.
    ours = [line for line in listening.splitlines() if any(p in line for p in ("raylet", "gcs_server", "ray::"))]
    assert ours and all("127.0.0.1" in line for line in ours), ours


def test_sweep_rejects_unknown_parameters(tiny_folder: Path) -> None:
    from scenarios.sweep import sweep

    with pytest.raises(ValueError, match="must start with one of"):
        sweep(str(tiny_folder), {"cameras": [1]}, days=1, backend="local")
    with pytest.raises(ValueError, match="'response.speed' is not a response parameter"):
        sweep(str(tiny_folder), {"response.speed": [1]}, days=1, replications=1, backend="local")


def test_staffing_optimiser_meets_its_target(tiny_folder: Path) -> None:
    from scenarios.staffing import optimise_staffing

    plan = optimise_staffing(str(tiny_folder), kpi="no_wait", target=0.999, days=2, warmup_days=0.5,
                             replications=2, verify_replications=10, max_iterations=3, max_trims=2)
    assert plan.met and plan.binds
    # at least the floor and the school-gate post on every shift of the one area
    assert set(plan.table) == {"A1"} and set(plan.table["A1"]) == {"day", "evening", "night"}
    assert min(plan.table["A1"].values()) >= 2
    accepted = [e for e in plan.evaluations if e.table == plan.table and e.step.startswith(("verify", "between", "trim"))]
    assert accepted and accepted[-1].kpi.n >= 10 and accepted[-1].kpi.lo >= 0.999  # fresh runs, lower bound
    curve = plan.curve(salary_per_year=90_000.0)
    assert [p["people"] for p in curve] == sorted(p["people"] for p in curve)
    assert all(p["cost_per_year"] == p["people"] * 90_000.0 for p in curve)
    front = [p for p in curve if p["efficient"]]
    assert curve[0]["efficient"] and [p["kpi"] for p in front] == sorted(p["kpi"] for p in front)
    assert len({p["people"] for p in front}) == len(front)  # one point per head count at most
    district = scenarios.load(str(tiny_folder), plan.overrides())
    assert len([m for m in district.roster.members if m.role.value == "co_governance"]) == plan.total
    assert "per_area" in plan.to_toml()
    # People: 四班三倒 units (four people, one per team) topped up with five-day patterns,
    # covering every shift of every day at least as the verified table does.
    assert plan.rotation == "four_team" and plan.teams == 4 and plan.working_share == 0.75
    (area,) = plan.roster()
    assert all(area.on_duty[(d, s)] >= n for d in range(7) for s, n in plan.table["A1"].items())
    assert plan.headcount_floor() <= plan.headcount()["A1"] <= 4 * max(plan.table["A1"].values())
    # The people roster, built as a scenario and simulated on streams nothing else saw.
    district = scenarios.load(str(tiny_folder), plan.roster_overrides())
    brigade = [m for m in district.roster.members if m.role.value == "co_governance"]
    assert len(brigade) == plan.headcount()["A1"] and {m.rotation for m in brigade} >= {"four_team"}
    assert plan.confirmed is not None and plan.confirmed.n == 10
    assert plan.confirmed.mean >= 0.98  # the same cover as the verified table, on fresh streams


def test_a_target_that_does_not_bind_is_said_to(tiny_folder: Path) -> None:
    from scenarios.staffing import optimise_staffing

    # Three on patrol on every shift (and one at the school gate) leave no event waiting.
    plan = optimise_staffing(str(tiny_folder), kpi="no_wait", target=0.9, days=2, warmup_days=0.5, replications=2,
                             verify_replications=10, min_per_shift={"night": 3, "day": 3, "evening": 3})
    assert plan.met and not plan.binds and "does not bind" in plan.reason and "night 4, day 4" in plan.reason
    assert [e.step for e in plan.evaluations] == ["ample", "floor"]


def test_an_unreachable_target_is_reported_not_chased(tiny_folder: Path) -> None:
    from scenarios.staffing import optimise_staffing

    # Signing takes an exponential time (mean 25 s): no head count signs every event within 60 s.
    plan = optimise_staffing(str(tiny_folder), kpi="responded_within_60s", target=1.0, days=2, warmup_days=0.2,
                             replications=2)
    assert not plan.met and "unreachable" in plan.reason and len(plan.evaluations) == 1


def test_cli_simulate_json(tiny_folder: Path) -> None:
    out = subprocess.run([str(BIN), "simulate", "--scenario", str(tiny_folder), "--days", "1", "--seed", "2",
                          "--replications", "2", "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s", "utilisation",
                "by_area", "by_shift"):
        assert key in data
    assert data["replications"] == 2


def test_cli_simulate_bad_override_is_one_line(tiny_folder: Path) -> None:
    out = subprocess.run([str(BIN), "simulate", "--scenario", str(tiny_folder), "--days", "1",
                          "--set", "staff.co_governance.cout=3"], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "staff.co_governance.cout: is not a known setting" in out.stderr
    assert "Traceback" not in out.stderr


def test_synthetic_districts_scale_their_demand_with_their_size() -> None:
    """Rates are Xiaohe's (the catalog's ``[reference]``); a district ten times the size draws
    about ten times the incidents, cause by cause (shops, road, residents), and Xiaohe itself
    is its own reference."""
    import numpy as np

    from scenarios.demand import DemandModel
    from scenarios.synth import synthetic_district

    xiaohe = scenarios.load_cached("xiaohe")
    ref = xiaohe.catalog.reference
    assert ref is not None
    km = sum(xiaohe.roads.segments[int(i)].length_m for i in xiaohe.responsible) / 1000
    assert {ref.factor(c, residents=xiaohe.population, shops=len(xiaohe.shops), road_km=km, venues=len(xiaohe.venues))
            for c in ("merchant", "street", "block", "elderly", "venue")} == {1.0}
    per_day = {}
    for scale in (1.0, 10.0):
        d = synthetic_district(scale)
        dm = DemandModel(d, np.random.SeedSequence(5))
        per_day[scale] = sum(len(dm.incidents(k * 86_400.0, (k + 1) * 86_400.0)) for k in range(3)) / 3
    ratio = per_day[10.0] / per_day[1.0]
    # Poisson counts over three days: about 870 and 8,700 incidents, so the ratio is known to ~4%.
    assert 9.0 < ratio < 11.0, per_day


def test_cli_staff_prints_people_writes_the_roster_and_sizes_the_surge(tiny_folder: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(BIN), "staff", "--scenario", str(tiny_folder), "--kpi", "no_wait", "--target", "0.999",
                          "--days", "2", "--warmup-days", "0.5", "--replications", "2", "--backend", "local",
                          "--surge", "--json", "--out", str(tmp_path / "plan"), "--shift-offsets", "-1-2",
                          "--min-per-shift", "night=2"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["met"] and data["rotation"] == "four_team"
    assert data["per_area"]["A1"]["night"] >= 3  # two on night patrol, one at the school gate
    choices = {c["offset_h"]: c for c in data["start_choices"]}
    assert sorted(choices) == [-1, 0, 1, 2] and not choices[-1]["allowed"]
    (chosen,) = [c for c in choices.values() if c["chosen"]]
    assert chosen["people"] == min(c["people"] for c in choices.values() if c["allowed"])
    assert (data["shifts"] is None) == (chosen["offset_h"] == 0)
    assert data["headcount_total"] == sum(data["headcount"].values()) >= data["headcount_floor"]
    assert data["wartime"] is not None and data["surge_reserve"] is not None
    assert all(n >= 0 for n in data["surge_reserve"].values())
    assert data["surge_confirmed"]["n"] == 10  # the reserve on call beside the roster, in wartime, on fresh streams
    rows = (tmp_path / "plan" / "roster.csv").read_text().splitlines()
    assert rows[0].startswith("area,pattern,units,people,mon") and len(rows) >= 2
    assert (tmp_path / "plan" / "cost_service_curve.csv").exists()
    page = (tmp_path / "plan" / "report.html").read_text()
    assert "Staffing plan: co_governance" in page and "People per area and working pattern" in page
    assert "Shift start times" in page and "not allowed" in page and "Wartime reserve (on call)" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # offline


def test_surge_reserve_is_what_wartime_needs_beyond_peacetime() -> None:
    from scenarios.staffing import StaffingPlan, surge_reserve

    peace = StaffingPlan("co_governance", "met_1_3_5", 0.9, 0.1, {"A1": {"day": 3}, "A2": {"day": 5}}, True, teams=4)
    war = StaffingPlan("co_governance", "met_1_3_5", 0.9, 0.1, {"A1": {"day": 4}, "A2": {"day": 4}}, True, teams=4)
    assert surge_reserve(peace, war) == {"A1": 4, "A2": 0}


def test_two_person_night_patrols_are_a_floor_the_plan_keeps(tiny_folder: Path) -> None:
    from scenarios.staffing import optimise_staffing

    plan = optimise_staffing(str(tiny_folder), kpi="no_wait", target=0.9, days=2, warmup_days=0.5, replications=2,
                             verify_replications=10, min_per_shift={"night": 2})
    # the school-gate post's member comes on top of the two on patrol
    assert plan.met and plan.table["A1"]["night"] >= 3 and plan.table["A1"]["day"] >= 2
    with pytest.raises(ValueError, match="min_per_shift: unknown shift"):
        optimise_staffing(str(tiny_folder), min_per_shift={"dusk": 2}, days=1, replications=1)


def test_shift_start_is_chosen_where_the_rotations_allow_and_the_plan_carries_it(tiny_folder: Path) -> None:
    from scenarios.staffing import StaffingPlan, _start_choices

    district = scenarios.load_cached(str(tiny_folder))
    # Three members needed 09:00-17:00 every day, one at other hours: the 00/08/16 shifts
    # staff two shifts for it (seven positions), shifts starting an hour later one (five).
    per_hour = {("A1", d * 24 + h): 3 if 9 <= h < 17 else 1 for d in range(7) for h in range(24)}
    floor = {"night": 1, "day": 1, "evening": 1}
    choices = _start_choices(per_hour, district, Role.CO_GOVERNANCE, floor, [-1, 1, 2], 11 * 3600)
    by = {c["offset_h"]: c for c in choices}
    assert sorted(by) == [-1, 0, 1, 2]  # the scenario's own times are always a choice
    assert not by[-1]["allowed"] and "0 h between shifts" in by[-1]["why"]  # night 23:00 into day 07:00
    assert by[0]["positions"] == 7 and by[1]["positions"] == 5 and by[1]["people"] < by[0]["people"]
    assert by[1]["shifts"] == "night 01:00-09:00, day 09:00-17:00, evening 17:00-01:00"
    # A plan on moved shifts writes them with its table, and its people roster keeps them.
    rot = district.roster.rotations[Role.CO_GOVERNANCE]
    moved = district.roster.plan.shifted(1).as_data()
    plan = StaffingPlan("co_governance", "no_wait", 0.9, 0.1, {"A1": {"night": 1, "day": 3, "evening": 1}}, True,
                        pattern=rot, rotation=rot.code, teams=rot.teams, shifts=moved)
    for overrides in (plan.overrides(), plan.roster_overrides()):
        d = scenarios.load(str(tiny_folder), overrides)
        assert d.roster.plan.as_data() == moved
    assert 'start = "09:00"' in plan.to_toml()
    assert scenarios.load(str(tiny_folder)).roster.plan["day"].start_s == 8 * 3600  # the scenario is untouched


def test_bad_shift_offsets_are_named(tiny_folder: Path) -> None:
    from scenarios.staffing import optimise_staffing

    with pytest.raises(ValueError, match=r"^shift_offsets: \[8\] hour\(s\) out of range"):
        optimise_staffing(str(tiny_folder), shift_offsets=[0, 8], days=1, replications=1)
    with pytest.raises(ValueError, match="^shift_offsets: give at least one"):
        optimise_staffing(str(tiny_folder), shift_offsets=[], days=1, replications=1)
