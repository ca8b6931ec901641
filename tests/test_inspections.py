"""Shop inspections: equal hours, de-duplication, the Markov chain's closed form, depth."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from scenarios.inspections import DOMAINS, InspectionParams, compare, inspections

EVERY = {d: 1.0 for d in DOMAINS}


def _found_per_cell_year(p: InspectionParams, interval: float, detect: float) -> float:
    """Stationary found problems per cell a year with checks every ``interval`` days: just
    before a check a problem is present with x = P01(T) / (1 − (1 − p) e^(−κT))."""
    lam, dlt = p.problem_rate_per_year / 365.0, 1.0 / p.self_resolve_days
    kappa = lam + dlt
    decay = math.exp(-kappa * interval)
    x = lam / kappa * (1 - decay) / (1 - (1 - detect) * decay)
    return detect * x * 365.0 / interval


def _found_per_problem(p: InspectionParams, interval: float, detect: float) -> float:
    """The fidelity review's appendix: P(found) = p·(1 − e^(−δT))/(δT) / (1 − (1 − p)·e^(−δT))
    for a problem arising at a uniform time between checks."""
    dt = interval / p.self_resolve_days
    return detect * (1 - math.exp(-dt)) / dt / (1 - (1 - detect) * math.exp(-dt))


def test_both_worlds_spend_the_same_inspector_hours() -> None:
    c = compare(1600, days=3 * 365, seed=1)
    assert c["joint"]["hours"] == pytest.approx(c["separate"]["hours"], rel=0.02)
    assert c["separate"]["hours"] == pytest.approx(c["separate"]["planned_hours"], rel=0.02)
    assert c["joint"]["interval_days"] < c["separate"]["interval_days"] == 90.0


def test_every_domain_everywhere_gives_the_old_identity() -> None:
    # Five domains in every shop, an 80-minute joint visit against five 30-minute ones.
    p = InspectionParams(applies=EVERY, joint_base_min=20.0, joint_per_domain_min=12.0, detect_p_joint=0.8)
    c = compare(1600, days=3 * 365, seed=2, params=p)
    assert c["mean_domains"] == 5.0
    assert c["visits_change"] == pytest.approx(30 / 80 - 1, abs=0.01)
    assert c["joint"]["interval_days"] == pytest.approx(90 * 80 / 150)


def test_de_duplication_sets_the_visit_cut() -> None:
    c = compare(1600, days=3 * 365, seed=3)
    p = InspectionParams()
    m = c["mean_domains"]
    assert 2.6 < m < 2.9  # the default shares: 1 + 0.8 + 0.08 + 0.5 + 0.35 = 2.73
    # Equal hours: joint visits = separate visits × 30 / (base + per-domain × m).
    expected = p.single_check_min / (p.joint_base_min + p.joint_per_domain_min * m) - 1
    assert c["visits_change"] == pytest.approx(expected, abs=0.02)
    by = c["separate"]["by_domain"]
    assert list(by) == list(DOMAINS)
    assert by["culture_market"]["applies"] < 0.15 and by["city_management"]["applies"] == 1.0
    assert c["joint"]["by_domain"]["health"]["applies"] == by["health"]["applies"]  # one draw, both worlds
    assert sum(d["checks"] for d in by.values()) == pytest.approx(c["separate"]["checks"])


@pytest.mark.parametrize("joint", [False, True])
def test_found_matches_the_closed_form(joint: bool) -> None:
    p = InspectionParams(applies=EVERY, detect_p_single=0.8, detect_p_joint=0.6)
    res = inspections(2000, joint=joint, days=6 * 365, seed=4, params=p)
    interval = res["interval_days"]
    detect = p.detect_p_joint if joint else p.detect_p_single
    # The exact chain: found a year.
    assert res["found"] == pytest.approx(_found_per_cell_year(p, interval, detect) * 2000 * 5, rel=0.03)
    # The review's per-problem formula (problems arising uniformly between checks; ~1% off the chain).
    assert res["found"] / res["arisen"] == pytest.approx(_found_per_problem(p, interval, detect), rel=0.03)


def test_each_world_starts_in_its_steady_state() -> None:
    # A one-year run finds what the stationary chain does: no warm-up from an uninspected street.
    p = InspectionParams(applies=EVERY)
    found = [inspections(2000, joint=False, days=365, seed=s, params=p)["found"] for s in range(4)]
    assert sum(found) / 4 == pytest.approx(_found_per_cell_year(p, 90.0, 0.8) * 2000 * 5, rel=0.03)


def test_without_fading_joint_finds_at_least_as_much() -> None:
    slow = InspectionParams(self_resolve_days=1e6, detect_p_joint=0.8)
    c = compare(1600, days=4 * 365, seed=5, params=slow)
    assert c["joint"]["found"] >= c["separate"]["found"]
    assert c["joint"]["found"] == pytest.approx(c["joint"]["arisen"], rel=0.05)  # nothing fades: all is found


def test_a_shallower_joint_check_finds_less() -> None:
    shallow = compare(1600, days=2 * 365, seed=5, params=replace(InspectionParams(), detect_p_joint=0.5))
    deep = compare(1600, days=2 * 365, seed=5, params=replace(InspectionParams(), detect_p_joint=0.8))
    assert shallow["joint"]["found"] < deep["joint"]["found"]
    assert shallow["found_change"] < deep["found_change"]
    assert shallow["separate"] == deep["separate"]  # the before-world does not depend on the joint visit


def test_a_seed_is_reproducible_and_seeds_differ() -> None:
    assert compare(800, days=365, seed=6) == compare(800, days=365, seed=6)
    assert compare(800, days=365, seed=6)["joint"]["found"] != compare(800, days=365, seed=7)["joint"]["found"]
    assert compare(800, days=365, seed=6)["mean_domains"] != compare(800, days=365, seed=7)["mean_domains"]
    assert inspections(800, joint=True, days=365, seed=6) == compare(800, days=365, seed=6)["joint"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"applies": {"city_management": 1.5}}, "applies.city_management"),
    ({"applies": {"fire": 0.5}}, "applies"),
    ({"applies": {"health": 0.0}}, "applies"),
    ({"detect_p_joint": -0.1}, "detect_p_joint"),
    ({"detect_p_single": math.nan}, "detect_p_single"),
    ({"self_resolve_days": 0.0}, "self_resolve_days"),
    ({"separate_interval_days": math.inf}, "separate_interval_days"),
    ({"problem_rate_per_year": -1.0}, "problem_rate_per_year"),
    ({"joint_base_min": 0.0, "joint_per_domain_min": 0.0}, "joint_base_min"),
])
def test_bad_parameters_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        InspectionParams(**kwargs)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_shops": 0}, "n_shops"), ({"n_shops": 1.5}, "n_shops"), ({"days": 0.0}, "days"),
    ({"days": math.inf}, "days"), ({"seed": -1}, "seed"),
])
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"days": 365.0, "seed": 0} | kwargs
    n_shops = args.pop("n_shops", 10)
    with pytest.raises(ValueError, match=field):
        compare(n_shops, **args)
    with pytest.raises(ValueError, match=field):
        inspections(n_shops, joint=True, **args)
