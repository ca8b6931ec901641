"""KPIs of simulation runs, and confidence intervals over replications.

The headline shares follow the case study's 1/3/5-minute rule, as :mod:`twin.kpis` defines
them for the live twin too (``responded_within_60s``, ``on_scene_within_180s``,
``reinforced_within_300s``; events still open at the end of the run count as the live
twin counts open events at ``now``);

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

from scenarios.model import EventRecord, RunResult
from twin import kpis as twin_kpis
from twin.staff import DAY_S


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


def prediction_interval(values: Iterable[float], confidence: float = 0.95,
                        bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """Where one more replication's value is expected to fall (Student t prediction interval,
    ``mean ± t·s·sqrt(1 + 1/n)``): the yardstick for a single outcome, where a confidence
    interval bounds the mean. ``(nan, nan)`` with fewer than two values."""
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if len(v) < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) * math.sqrt(1 + 1 / len(v)))
    lo, hi = float(v.mean()) - half, float(v.mean()) + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, hi


def is_share(name: str) -> bool:
    """Whether a KPI is a share (0-1) by its name."""
    return "within" in name or name.endswith(("_share", "no_wait")) or name.startswith("utilisation")


_NUM = ("respond_s", "on_scene_s", "reinforce_s", "wait_s", "travel_s", "escalations", "reported_s", "stage_s",
        "stage_wait_s", "stage_respond_s", "stage_on_scene_s")
_FLAG = ("needs_on_scene", "reinforcement", "supervised", "self_corrected", "repeat", "within_targets")


def columns(rows: Sequence[EventRecord]) -> dict[str, np.ndarray]:
    """The records as numpy columns (one pass), for vectorised KPIs."""
    n = len(rows)
    cols: dict[str, np.ndarray] = {k: np.fromiter((getattr(r, k) for r in rows), np.float64, n) for k in _NUM}
    cols.update({k: np.fromiter((getattr(r, k) for r in rows), bool, n) for k in _FLAG})
    for k in ("outcome", "area_id", "shift", "category", "handler_role"):
        cols[k] = np.array([getattr(r, k) for r in rows], dtype=object)
    return cols


def _frac(ok: np.ndarray, of: np.ndarray) -> float:
    n = int(of.sum())
    return float((ok & of).sum()) / n if n else math.nan


def _stat(values: np.ndarray, fn: Callable[[np.ndarray], Any]) -> float:
    v = values[~np.isnan(values)]
    return float(fn(v)) if len(v) else math.nan


def outcomes(c: dict[str, np.ndarray], *, stage: bool = False) -> twin_kpis.Outcomes:
    """The records' columns as :class:`twin.kpis.Outcomes` (the run's end is ``now``).

    ``stage``: the times of the stage that handled each event, from when that stage began
    (its last escalation, else its report): the wait, signature and arrival of the tier
    that handles it (reinforcement still counts from the report).
    """
    outcome = c["outcome"]
    counted = (outcome != "merged") & (outcome != "false_alarm")
    if stage:
        since = c["stage_s"]
        return twin_kpis.Outcomes(dispatch_s=c["stage_wait_s"], respond_s=c["stage_respond_s"],
                                  on_scene_s=c["stage_on_scene_s"], reinforce_s=c["reinforce_s"] - since,
                                  reinforcement=c["reinforcement"], open=outcome == "open", counted=counted,
                                  age_s=c["age_s"] - since)
    return twin_kpis.Outcomes(dispatch_s=c["wait_s"], respond_s=c["respond_s"], on_scene_s=c["on_scene_s"],
                              reinforce_s=c["reinforce_s"], reinforcement=c["reinforcement"],
                              open=outcome == "open", counted=counted, age_s=c["age_s"])


def _tier(c: dict[str, np.ndarray], m: np.ndarray) -> dict[str, float]:
    """KPIs of the events selected by ``m``, measured on the stage that handled them."""
    o = outcomes(c, stage=True)
    with np.errstate(invalid="ignore"):
        out = {name: _frac(met, of & m) for name, (met, of) in twin_kpis.masks(o).items()}
        met_all, of_all = twin_kpis.all_targets(o)
        out[twin_kpis.ALL_TARGETS] = _frac(met_all, of_all & m)
        wait = c["stage_wait_s"][m]
        out.update({"events": float(m.sum()),
                    "no_wait": _frac(c["stage_wait_s"] <= 1e-6, m & ~np.isnan(c["stage_wait_s"])),
                    "wait_mean_s": _stat(wait, np.mean),
                    "wait_p90_s": _stat(wait, lambda v: np.percentile(v, 90)),
                    "sign_p90_s": _stat(c["stage_respond_s"][m], lambda v: np.percentile(v, 90)),
                    "on_scene_p90_s": _stat(c["stage_on_scene_s"][m], lambda v: np.percentile(v, 90)),
                    "reinforce_p90_s": _stat(c["reinforce_s"][m], lambda v: np.percentile(v, 90))})
    return out


def _core(c: dict[str, np.ndarray], m: np.ndarray) -> dict[str, float]:
    """KPIs of the events selected by mask ``m``."""
    with np.errstate(invalid="ignore"):
        on_scene = c["on_scene_s"]
        closed = c["outcome"] == "closed"
        head = {name: _frac(met, of & m) for name, (met, of) in twin_kpis.masks(outcomes(c)).items()}
        return {
            "events": float(m.sum()),
            **head,
            "within_targets": _frac(c["within_targets"], m & closed),
            "closed_share": _frac(closed, m),
            "merged": float((m & (c["outcome"] == "merged")).sum()),
            "abandoned": float((m & (c["outcome"] == "abandoned")).sum()),
            "escalations": float(c["escalations"][m].sum()),
            "reinforcements": float((m & c["reinforcement"]).sum()),
            "supervision_alerts": float((m & c["supervised"]).sum()),
            "self_corrected": float((m & c["self_corrected"]).sum()),
            "repeat_alarms": float((m & c["repeat"]).sum()),
            "wait_mean_s": _stat(c["wait_s"][m], np.mean),
            "wait_p90_s": _stat(c["wait_s"][m], lambda v: np.percentile(v, 90)),
            "travel_mean_s": _stat(c["travel_s"][m], np.mean),
            "travel_p90_s": _stat(c["travel_s"][m], lambda v: np.percentile(v, 90)),
            "on_scene_p50_s": _stat(on_scene[m], lambda v: np.percentile(v, 50)),
            "on_scene_p90_s": _stat(on_scene[m], lambda v: np.percentile(v, 90)),
        }


_GROUP_KEYS = ("events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s",
               "within_targets", "wait_mean_s")


def kpis(result: RunResult, *, warmup_days: float = 0.0) -> dict[str, Any]:
    """KPIs of one run (events reported in the warm-up are left out of the event figures)."""
    c = columns(result.records)
    c["age_s"] = result.days * DAY_S - c["reported_s"]
    m = c["reported_s"] >= warmup_days * DAY_S
    out: dict[str, Any] = _core(c, m)
    out["incidents"] = float(result.incidents)
    out["undiscovered"] = float(result.undiscovered)
    out["events_per_day"] = float(m.sum()) / max(result.days - warmup_days, 1e-9)
    out["patrol_km"] = result.patrol_km
    out["max_backlog"] = float(result.max_queue)
    by_role: dict[str, list[float]] = {}
    for mid, duty in result.duty_s.items():
        if duty > 0:
            by_role.setdefault(result.roles[mid], []).append(min(1.0, result.busy_s[mid] / duty))
    out["utilisation"] = {role: float(np.mean(v)) for role, v in sorted(by_role.items())}
    for key, col in (("by_area", "area_id"), ("by_shift", "shift"), ("by_category", "category")):
        groups = sorted(set(c[col][m].tolist()))
        out[key] = {g: {k: v for k, v in _core(c, m & (c[col] == g)).items() if k in _GROUP_KEYS} for g in groups}
    # Per tier: each event under the role that handled it in the end, timed on that stage.
    out["by_tier"] = {role: _tier(c, m & (c["handler_role"] == role))
                      for role in sorted(set(c["handler_role"][m].tolist())) if role}
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
    for key in dict.fromkeys(k for run in per_run for k in run):  # every run's keys, in order of appearance
        first = next(run[key] for run in per_run if key in run)
        if isinstance(first, dict):
            keys = sorted({k for run in per_run for k in run.get(key, {})})
            # A group missing from a run (no event of that tier, say) is nan there, or an
            # empty table where the others have a table.
            nested = {k for run in per_run for k, v in run.get(key, {}).items() if isinstance(v, dict)}
            out[key] = summarize([{k: run.get(key, {}).get(k, {} if k in nested else math.nan) for k in keys}
                                  for run in per_run], shares=shares or key == "utilisation")
        elif isinstance(first, (int, float)):
            out[key] = estimate((run.get(key, math.nan) for run in per_run),
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
