"""KPIs of simulation runs, and confidence intervals over replications.

The headline shares follow the case study's 1/3/5-minute rule:

- ``responded_within_60s``: of dispatched events, the share first signed for within 60 s
  of dispatch;
- ``on_scene_within_180s``: of events needing someone on site, the share with a handler
  there within 180 s of the report;
- ``reinforced_within_300s``: of events that needed reinforcement, the share reinforced
  within 300 s of the report;

plus ``within_targets`` (each scenario's own targets), utilisation per role, waits, travel,
backlog, escalations, repeat alarms and patrol kilometres, broken down by area, shift and
category. Over replications each figure becomes an :class:`Estimate` with a 95% CI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from scenarios.engine import EventRecord, RunResult


@dataclass(frozen=True)
class Estimate:
    """A mean over replications with its 95% confidence interval (Student t)."""

    mean: float
    lo: float
    hi: float
    n: int

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        return self.lo <= value <= self.hi

    def to_dict(self) -> dict[str, float]:
        """``{"mean", "ci95_lo", "ci95_hi", "n"}``."""
        return {"mean": self.mean, "ci95_lo": self.lo, "ci95_hi": self.hi, "n": self.n}


def estimate(values: Iterable[float], confidence: float = 0.95,
             bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean and t-interval of independent replication values (``nan`` values are dropped).

    Args:
        values: One value per replication.
        confidence: Coverage of the interval.
        bounds: Clip the interval to these limits (e.g. ``(0, 1)`` for shares).
    """
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if len(v) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    m = float(v.mean())
    if len(v) == 1:
        return Estimate(m, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    lo, hi = m - half, m + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(m, lo, hi, len(v))


def is_share(name: str) -> bool:
    """Whether a KPI is a share (0-1) by its name."""
    return "within" in name or name.endswith(("_share", "no_wait")) or name.startswith("utilisation")


def _share(rows: Sequence[EventRecord], pick: Callable[[EventRecord], bool],
           ok: Callable[[EventRecord], bool]) -> float:
    sel = [r for r in rows if pick(r)]
    return sum(1 for r in sel if ok(r)) / len(sel) if sel else math.nan


def _pct(values: list[float], q: float) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.percentile(v, q)) if v else math.nan


def _core(rows: Sequence[EventRecord]) -> dict[str, float]:
    dispatched = lambda r: not math.isnan(r.respond_s)
    waits = [r.wait_s for r in rows]
    travel = [r.travel_s for r in rows]
    return {
        "events": float(len(rows)),
        "responded_within_60s": _share(rows, dispatched, lambda r: r.respond_s <= 60.0),
        "on_scene_within_180s": _share(rows, lambda r: r.needs_on_scene,
                                       lambda r: not math.isnan(r.on_scene_s) and r.on_scene_s <= 180.0),
        "reinforced_within_300s": _share(rows, lambda r: r.reinforcement,
                                         lambda r: not math.isnan(r.reinforce_s) and r.reinforce_s <= 300.0),
        "within_targets": _share(rows, lambda r: r.outcome == "closed", lambda r: r.within_targets),
        "closed_share": _share(rows, lambda r: True, lambda r: r.outcome == "closed"),
        "merged": float(sum(r.outcome == "merged" for r in rows)),
        "abandoned": float(sum(r.outcome == "abandoned" for r in rows)),
        "escalations": float(sum(r.escalations for r in rows)),
        "reinforcements": float(sum(r.reinforcement for r in rows)),
        "supervision_alerts": float(sum(r.supervised for r in rows)),
        "self_corrected": float(sum(r.self_corrected for r in rows)),
        "repeat_alarms": float(sum(r.repeat for r in rows)),
        "wait_mean_s": float(np.nanmean(waits)) if any(not math.isnan(w) for w in waits) else math.nan,
        "wait_p90_s": _pct(waits, 90),
        "travel_mean_s": float(np.nanmean(travel)) if any(not math.isnan(t) for t in travel) else math.nan,
        "travel_p90_s": _pct(travel, 90),
        "on_scene_p50_s": _pct([r.on_scene_s for r in rows], 50),
        "on_scene_p90_s": _pct([r.on_scene_s for r in rows], 90),
    }


def kpis(result: RunResult, *, warmup_days: float = 0.0) -> dict[str, Any]:
    """KPIs of one run (events reported in the warm-up are left out of the event figures)."""
    rows = [r for r in result.records if r.reported_s >= warmup_days * 86_400.0]
    out: dict[str, Any] = _core(rows)
    out["incidents"] = float(result.incidents)
    out["undiscovered"] = float(result.undiscovered)
    out["events_per_day"] = len(rows) / max(result.days - warmup_days, 1e-9)
    out["patrol_km"] = result.patrol_km
    out["max_backlog"] = float(result.max_queue)
    by_role: dict[str, list[float]] = {}
    for mid, duty in result.duty_s.items():
        if duty > 0:
            by_role.setdefault(result.roles[mid], []).append(min(1.0, result.busy_s[mid] / duty))
    out["utilisation"] = {role: float(np.mean(v)) for role, v in sorted(by_role.items())}
    for key, attr in (("by_area", "area_id"), ("by_shift", "shift"), ("by_category", "category")):
        groups: dict[str, list[EventRecord]] = {}
        for r in rows:
            groups.setdefault(getattr(r, attr), []).append(r)
        out[key] = {g: {k: v for k, v in _core(rs).items()
                        if k in ("events", "responded_within_60s", "on_scene_within_180s",
                                 "reinforced_within_300s", "within_targets", "wait_mean_s")}
                    for g, rs in sorted(groups.items())}
    return out


def summarize(per_run: Sequence[dict[str, Any]], *, shares: bool = False) -> dict[str, Any]:
    """Estimates over replications of every numeric KPI (nested dicts kept nested).

    Args:
        per_run: KPIs of each replication.
        shares: Treat every figure as a share (clip intervals to [0, 1]), e.g. utilisation.
    """
    if not per_run:
        return {}
    out: dict[str, Any] = {}
    for key, first in per_run[0].items():
        if isinstance(first, dict):
            keys = sorted({k for run in per_run for k in run.get(key, {})})
            out[key] = summarize([{k: run.get(key, {}).get(k, math.nan) if not isinstance(
                run.get(key, {}).get(k), dict) else run[key][k] for k in keys} for run in per_run],
                shares=shares or key == "utilisation")
        elif isinstance(first, (int, float)):
            out[key] = estimate((run[key] for run in per_run),
                                bounds=(0.0, 1.0) if shares or is_share(key) else None)
    return out


def to_jsonable(obj: Any) -> Any:
    """Estimates → dicts, nan → None, recursively (for JSON output)."""
    if isinstance(obj, Estimate):
        return {k: to_jsonable(v) for k, v in obj.to_dict().items()}
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return to_jsonable(obj.item())
    return obj
