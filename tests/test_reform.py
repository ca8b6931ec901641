"""The reform comparison: mechanisms, not tuned numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

import scenarios
from scenarios.reform import BEFORE, InspectionParams, before_after, inspections


def test_joint_rounds_visit_less_and_find_more_with_equal_hours(xiaohe) -> None:  # type: ignore[no-untyped-def]
    sep = inspections(xiaohe, joint=False, days=120, seed=1)
    jnt = inspections(xiaohe, joint=True, days=120, seed=1)
    p = InspectionParams()
    hours_sep = sep["visits"] * p.single_check_min / 60
    hours_jnt = jnt["visits"] * p.joint_check_min / 60
    assert hours_jnt == pytest.approx(hours_sep, rel=0.03)        # same inspector-hours
    assert jnt["visits"] < 0.6 * sep["visits"]                     # far fewer visits
    assert jnt["found"] > sep["found"]                             # each domain checked more often
    assert jnt["checks"] > sep["checks"]


def test_when_problems_never_fade_both_find_about_everything(xiaohe) -> None:  # type: ignore[no-untyped-def]
    slow = InspectionParams(self_resolve_days=10_000.0)
    # If nothing fades, frequency changes how soon problems are found, not whether: over
    # four years both find nearly all that arise (a problem can only arise where none is).
    sep = inspections(xiaohe, joint=False, days=4 * 365, seed=2, params=slow)
    jnt = inspections(xiaohe, joint=True, days=4 * 365, seed=2, params=slow)
    assert sep["found"] / sep["arisen"] > 0.9 and jnt["found"] / jnt["arisen"] > 0.9


def test_before_world_has_no_cameras_and_no_brigade(tiny_folder: Path) -> None:
    before = scenarios.load(str(tiny_folder), BEFORE)
    assert before.cameras == () and not [m for m in before.roster.members if m.role.value == "co_governance"]


@pytest.mark.slow
def test_before_after_report(tiny_folder: Path) -> None:
    rep = before_after(str(tiny_folder), days=2, warmup_days=0.5, replications=1, efforts=(1.0, 2.0))
    figures = [r["figure"] for r in rep.rows]
    assert len(figures) == 5 and all(r["mechanism"] for r in rep.rows)
    md = rep.to_markdown()
    assert "−46%" in md and "| figure |" in md
    assert len(rep.to_pandas()) == 5
