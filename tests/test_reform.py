"""The reform comparison: responsive demand against its mean-field balance, a fair
before-world, common random numbers and paired confidence intervals."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scenarios.demand import WEEKLY, DemandModel, DemandParams, mean_field_propensity
from scenarios.discovery import Discovery
from scenarios.engine import run_once
from scenarios.model import Incident, ResponseParams
from scenarios.reform import (
    ReformParams,
    before_after,
    before_catalog,
    paired,
    patrol_hours_per_day,
    run_world,
    world_district,
    worlds,
    write_report,
)
from scenarios.rng import Draws
from twin.staff import DAY_S, Role

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).with_name("streetbrain")


def _drive(district, params: DemandParams, *, days: int, caught_p: float, seed: int = 3):  # type: ignore[no-untyped-def]
    """Run the demand model alone, telling it each merchant incident was caught with
    ``caught_p`` (handled on site) or went unseen; return the model, time-mean propensity of
    the merchants and their behavioural incidents a day, both after a burn-in of 100 days."""
    m = DemandModel(district, np.random.SeedSequence(seed), params)
    pool = m.pools["merchant"]
    rng = np.random.default_rng(seed + 1)
    burn, acc, n = 100, np.zeros(len(pool.agents)), 0
    for day in range(days):
        incs = m.incidents(day * DAY_S, (day + 1) * DAY_S)
        if day >= burn:
            acc += pool.prop
        for inc in incs:
            spec = district.catalog[inc.scenario]
            if spec.cause == "merchant" and spec.self_correct_p > 0:
                n += day >= burn
                m.feedback(inc, "handled" if rng.random() < caught_p else "undiscovered", inc.t_s)
    return m, acc / (days - burn), n / (days - burn)


def test_responsive_demand_settles_at_the_mean_field_balance(xiaohe) -> None:  # type: ignore[no-untyped-def]
    """Each merchant emits at rate r·p; a caught incident multiplies p by 0.9, an unseen one
    leaves it; p relaxes toward b by k a day: the stationary p solves k(b − p) = r p² (1 − E[f])."""
    params = DemandParams(responsive=True, learn_handled=0.9, embolden=1.0, celerity_h=math.inf, relax_per_day=0.05,
                          recurrence_after_poor=0.0, recurrence_after_handled=0.0)
    q = 0.6
    m, mean_prop, rate = _drive(xiaohe, params, days=700, caught_p=q)
    pool = m.pools["merchant"]
    per_unit = sum(s.rate_per_day * float(np.mean(WEEKLY.get(s.category, [1.0] * 7))) for s in xiaohe.catalog
                   if s.cause == "merchant" and s.self_correct_p > 0) / pool.base.sum()
    mean_f = q * 0.9 + (1 - q) * 1.0
    balance = np.array([mean_field_propensity(per_unit, b, 0.05, mean_f) for b in pool.base])
    base_rate = per_unit * pool.base.sum()
    assert per_unit * balance.sum() < 0.97 * base_rate  # deterrence lowers the total: not zero-sum
    assert rate == pytest.approx(per_unit * balance.sum(), rel=0.03)
    top = np.argsort(pool.base)[-10:]  # the heaviest offenders, one agent at a time
    assert mean_prop[top] / pool.base[top] == pytest.approx(balance[top] / pool.base[top], abs=0.05)


def test_mean_field_root_solves_the_balance() -> None:
    p = mean_field_propensity(0.4, 2.0, 0.03, 0.8)
    assert 0.03 * (2.0 - p) == pytest.approx(0.4 * p * p * 0.2)
    assert mean_field_propensity(0.4, 2.0, 0.03, 1.0) == 2.0  # nothing learnt: the base


def test_handling_on_site_lowers_demand_and_the_held_regime_does_not(xiaohe) -> None:  # type: ignore[no-untyped-def]
    params = DemandParams(responsive=True, recurrence_after_poor=0.0, recurrence_after_handled=0.0)
    _, _, all_handled = _drive(xiaohe, params, days=160, caught_p=1.0)
    _, _, none_handled = _drive(xiaohe, params, days=160, caught_p=0.0)
    assert all_handled < 0.85 * none_handled
    held = replace(params, responsive=False)
    _, _, held_handled = _drive(xiaohe, held, days=130, caught_p=1.0)
    _, _, held_none = _drive(xiaohe, held, days=130, caught_p=0.0)
    assert held_handled == pytest.approx(held_none, rel=0.05)  # held: totals are the catalog's whatever happens


def test_disputes_recur_more_after_a_reminder_than_after_handling_on_site(xiaohe) -> None:  # type: ignore[no-untyped-def]
    params = DemandParams(responsive=True)
    counts = {}
    for outcome in ("handled", "self_corrected"):
        m = DemandModel(xiaohe, np.random.SeedSequence(8), params)
        for day in range(60):
            for inc in m.incidents(day * DAY_S, (day + 1) * DAY_S):
                m.feedback(inc, outcome, inc.t_s + 600)
        counts[outcome] = m.recurrences
    assert counts["self_corrected"] > 2 * counts["handled"] > 0


def test_bad_demand_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="learn_handled"):
        DemandParams(learn_handled=1.5)
    with pytest.raises(ValueError, match="camera_precision"):
        ReformParams(camera_precision=0.0)
    with pytest.raises(ValueError, match="car_congestion"):
        ReformParams(car_congestion=(1.0,) * 5)


# --- the fair before-world ---------------------------------------------------------------------
def test_the_before_world_keeps_its_people_and_a_handler_for_every_scenario(xiaohe) -> None:  # type: ignore[no-untyped-def]
    p = ReformParams()
    w = worlds(xiaohe, p)
    before = world_district("xiaohe", w["before"])
    roles = {m.role for m in before.roster.members}
    assert before.cameras == () and before.sensors == () and Role.CO_GOVERNANCE not in roles
    enf = [m for m in before.roster.members if m.role is Role.ENFORCEMENT]
    assert len(enf) == sum(1 for m in xiaohe.roster.members if m.role is Role.ENFORCEMENT) + p.temps
    for spec in before.catalog:
        assert spec.handler_chain, spec.code
        assert set(spec.handler_chain) <= roles, spec.code
        assert Role.ENFORCEMENT in spec.handler_chain or spec.handler_chain == (Role.GRID_WORKER,), spec.code
    brigade_only = [s.code for s in xiaohe.catalog if s.handler_chain == (Role.CO_GOVERNANCE,)]
    assert set(brigade_only) == {"TR06", "TR09", "PU02", "PU06", "PU09"}
    assert all(before.catalog[c].handler_chain == (Role.ENFORCEMENT,) for c in brigade_only)
    # The temps and the auxiliaries patrol: the before-world patrols at night too.
    resp = w["before"].response
    assert resp.patrol_share[Role.ENFORCEMENT] > 0 and resp.background_patrol > 0
    assert patrol_hours_per_day(before, resp) > patrol_hours_per_day(before, replace(resp, background_patrol=0.0))


@pytest.mark.slow
def test_every_before_world_scenario_is_dispatched(xiaohe) -> None:  # type: ignore[no-untyped-def]
    w = worlds(xiaohe, ReformParams())["before"]
    before = world_district("xiaohe", w)
    res = run_once(before, lambda ss: DemandModel(before, ss, w.demand), days=4, seed=1, params=w.response)
    seen = {r.scenario for r in res.records}
    for code in ("TR06", "TR09", "PU06", "PU09", "PS08"):
        assert code in seen, code
        recs = [r for r in res.records if r.scenario == code]
        dispatched = [r for r in recs if r.handler or r.outcome in ("closed", "merged", "abandoned")]
        assert len(dispatched) >= 0.9 * len(recs), code
    assert not [r for r in res.records if r.handler_role == "co_governance"]


def test_before_catalog_maps_the_brigade_tier_to_enforcement(xiaohe) -> None:  # type: ignore[no-untyped-def]
    cat = before_catalog(xiaohe.catalog)
    assert cat["CM01"].handler_chain == (Role.GRID_WORKER, Role.ENFORCEMENT)
    assert cat["PU01"].handler_chain == (Role.GRID_WORKER, Role.ENFORCEMENT)
    assert cat["PU03"].handler_chain == (Role.GRID_WORKER,)
    assert len(cat) == len(xiaohe.catalog)


# --- common random numbers and paired intervals ------------------------------------------------
def test_an_incident_draws_the_same_discovery_numbers_in_every_world(xiaohe) -> None:  # type: ignore[no-untyped-def]
    w = worlds(xiaohe, ReformParams())
    before = world_district("xiaohe", w["before"])
    root = np.random.SeedSequence(5)
    d_after = Discovery(xiaohe, w["after"].response, Draws(root), 0.0)
    d_before = Discovery(before, w["before"].response, Draws(root), 0.0)
    loc = xiaohe.locate_xy(float(xiaohe.shops[0].x), float(xiaohe.shops[0].y))
    assert loc is not None
    inc = Incident(1, 3600.0, "PS07", loc, duration_s=math.inf, key=(2, 7, 0))
    a, b = d_after.substream((2, 7, 0)), d_before.substream((2, 7, 0))
    assert [a.random() for _ in range(5)] == [b.random() for _ in range(5)]
    # Whatever else a world drew before, the incident's draws are its own.
    for _ in range(37):
        d_after.r.random()
    assert d_after.first(inc) == Discovery(xiaohe, w["after"].response, Draws(root), 0.0).first(inc)


def test_paired_interval_is_the_t_interval_of_the_differences() -> None:
    before, after = [10.0, 12.0, 11.0, 13.0], [9.0, 10.5, 10.0, 11.5]
    est = paired(before, after, relative=False)
    d = np.array(after) - np.array(before)
    half = 3.182446305284263 * d.std(ddof=1) / 2  # t(0.975, 3) · s / √4
    assert est.mean == pytest.approx(d.mean()) and est.lo == pytest.approx(d.mean() - half)
    assert est.hi == pytest.approx(d.mean() + half) and est.hi < 0
    rel = paired(before, after, relative=True)
    assert rel.mean == pytest.approx(float(np.mean(np.array(after) / np.array(before) - 1)))
    with pytest.raises(ValueError, match="one value per replication"):
        paired([1.0], [1.0, 2.0], relative=False)


@pytest.mark.slow
def test_a_world_compared_with_itself_changes_nothing(xiaohe) -> None:  # type: ignore[no-untyped-def]
    w = worlds(xiaohe, ReformParams())["after"]
    a = run_world("xiaohe", w, seed=4, replication=1, days=2, burn_in_days=1, within_s=1800)
    b = run_world("xiaohe", w, seed=4, replication=1, days=2, burn_in_days=1, within_s=1800)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # (nan == nan is false: compare text)
    assert a["calls"] and a["incidents"] > 100
    c = run_world("xiaohe", w, seed=4, replication=2, days=2, burn_in_days=1, within_s=1800)
    assert c["found_within"] != a["found_within"] or c["incidents"] != a["incidents"]


@pytest.mark.slow
def test_quick_comparison_reports_five_figures_with_paired_intervals(tmp_path: Path) -> None:
    rep = before_after("xiaohe", replications=3, days=4, burn_in_days=3, sensitivity=1, sensitivity_replications=2,
                       workers=1)
    assert [f["key"] for f in rep.figures] == ["patrol", "inspections", "found", "repeat_110", "arrival_110"]
    for f in rep.figures:
        c = f["change"]
        assert f["mechanism"] and f["difference"]
        if f["key"] != "patrol":  # the equal-discovery cut can be out of the tried range in so short a run
            assert c["n"] == 3 and c["lo"] <= c["mean"] <= c["hi"], f["key"]
    d = rep.detail
    # Cameras discover more within 30 minutes; the before-world patrols more (temps, auxiliaries).
    assert d["discovery_within_share"]["after"]["mean"] > d["discovery_within_share"]["before"]["mean"]
    assert d["patrol_h_per_day"]["before"]["mean"] > 0
    assert d["calls_110"]["after"]["calls"] > 0
    assert len(rep.sensitivity) == 1 + 6 and {"at_low", "at_high"} <= set(rep.sensitivity[0])
    paths = write_report(rep, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert len(data["figures"]) == 5 and data["setup"]["replications"] == 3
    page = paths["html"].read_text()
    assert "95%" in page and "−46%" in page and "<script" not in page


@pytest.mark.slow
def test_cli_reform_quick_prints_the_table_with_intervals(tmp_path: Path) -> None:
    out = subprocess.run([str(BIN), "reform", "--quick", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "street patrol hours at equal discovery" in text and "110 joint arrival" in text
    assert text.count("[") >= 4  # intervals
    assert (tmp_path / "reform.html").is_file() and (tmp_path / "reform.json").is_file()


def test_cli_reform_refuses_bad_values() -> None:
    out = subprocess.run([str(BIN), "reform", "--replications", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--replications" in out.stderr and "Traceback" not in out.stderr


def test_response_params_keep_their_defaults() -> None:
    p = ResponseParams()
    assert p.car_congestion is None and p.background_patrol == 0.0 and p.camera_recall == {}
