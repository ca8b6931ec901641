"""The shift-scheduling step: patterns that cover a positions table with the fewest people."""

from __future__ import annotations

import pytest

from scenarios.rostering import candidate_patterns, hours_per_week, roster_for, schedule
from twin.rota import Rotation

FOUR = Rotation.continuous("four_team", ("night", "day", "evening"))
SHIFTS = ["night", "day", "evening"]
HOURS = {"night": 8.0, "day": 8.0, "evening": 8.0}


def test_a_flat_table_is_four_team_units_only() -> None:
    (r,) = roster_for({"A1": {"night": 9, "day": 9, "evening": 9}}, FOUR)
    assert r.units == {"four_team": 9} and r.people == 36
    assert set(r.on_duty.values()) == {9}


def test_a_heavier_shift_is_topped_up_with_five_day_patterns() -> None:
    table = {"A2": {"night": 11, "day": 10, "evening": 10}}
    (r,) = roster_for(table, FOUR)
    assert all(r.on_duty[(d, s)] >= n for d in range(7) for s, n in table["A2"].items())
    assert r.people < 4 * 11  # cheaper than four teams of eleven
    assert r.units["four_team"] == 10 and r.people == 42  # ten units and two night workers, days off apart
    patterns = candidate_patterns(FOUR, SHIFTS)
    assert 40.0 <= hours_per_week(r.units, patterns, HOURS) <= 42.0


def test_the_programme_finds_the_known_optimum() -> None:
    # Two people on the day shift every day, nothing else: three five-day workers (15 shifts
    # for 14, days off staggered), not two four-team units (eight people).
    patterns = candidate_patterns(FOUR, SHIFTS)
    units = schedule({(d, "day"): 2 for d in range(7)}, patterns)
    assert sum(units.values()) == 3 and "four_team" not in units


def test_a_requirement_nobody_covers_is_refused_by_name() -> None:
    patterns = candidate_patterns(FOUR, SHIFTS)
    with pytest.raises(ValueError, match="no pattern covers sat dusk"):
        schedule({(5, "dusk"): 1}, patterns)


def test_a_rotation_that_does_not_cover_every_shift_is_not_offered_as_a_unit() -> None:
    office = Rotation.weekly("office", ["day"] * 5 + ["", ""])
    codes = [p.code for p in candidate_patterns(office, SHIFTS)]
    assert "office" not in codes and len(codes) == 21
