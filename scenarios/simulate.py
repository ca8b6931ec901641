"""``scenarios.run``: what-if simulation of a district, with replications.

    >>> import scenarios
    >>> result = scenarios.run("xiaohe", days=7, seed=1, replications=3)
    >>> result.kpis["on_scene_within_180s"]          # an Estimate: mean and 95% CI
    >>> df = result.to_pandas()                      # one row per event, all replications

Replication ``k`` of seed ``s`` is the ``k``-th child stream of ``SeedSequence(s)``; the same
(scenario, seed, replication) always gives the same run, whichever process or machine runs
it, and two scenarios compared with the same seed share their demand draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.engine import replicate
from scenarios.model import EventRecord, ResponseParams, RunResult
from scenarios.results import Estimate, kpis, summarize, to_jsonable
from twin.district import District

HEADLINE = ("events", "responded_within_60s", "on_scene_within_180s", "reinforced_within_300s",
            "within_targets", "utilisation")


@dataclass
class SimulationResult:
    """Runs of one scenario and their KPIs.

    Attributes:
        scenario: Scenario name.
        days: Simulated days per replication.
        warmup_days: Days left out of the KPIs at the start of each replication.
        seed: Root seed.
        runs: One :class:`RunResult` per replication.
        per_run: KPIs of each replication.
        kpis: KPIs over replications: every figure an :class:`Estimate` (mean, 95% CI).
    """

    scenario: str
    days: float
    warmup_days: float
    seed: int
    runs: list[RunResult]
    per_run: list[dict[str, Any]] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)

    @property
    def events(self) -> list[EventRecord]:
        """Every event record of every replication (see :meth:`to_pandas` for a table)."""
        return [r for run in self.runs for r in run.records]

    def to_pandas(self) -> Any:
        """One row per event, with a ``replication`` column."""
        import pandas as pd

        frames = []
        for k, run in enumerate(self.runs):
            df = run.to_pandas()
            df.insert(0, "replication", k)
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self) -> dict[str, Any]:
        """JSON-ready KPIs: means at the top level (shares 0-1), 95% CIs under ``ci95``."""
        def mean_of(v: Any) -> Any:
            if isinstance(v, Estimate):
                return None if math.isnan(v.mean) else v.mean
            if isinstance(v, dict):
                return {k: mean_of(x) for k, x in v.items()}
            return v

        def ci_of(v: Any) -> Any:
            if isinstance(v, Estimate):
                return None if math.isnan(v.lo) else [v.lo, v.hi]
            if isinstance(v, dict):
                return {k: ci_of(x) for k, x in v.items()}
            return None

        out: dict[str, Any] = {"scenario": self.scenario, "days": self.days, "warmup_days": self.warmup_days,
                               "seed": self.seed, "replications": len(self.runs)}
        out.update({k: mean_of(v) for k, v in self.kpis.items()})
        out["ci95"] = {k: ci_of(v) for k, v in self.kpis.items() if not isinstance(v, dict) or k == "utilisation"}
        summary: dict[str, Any] = to_jsonable(out)
        return summary


def _district(scenario: str | Path | District) -> tuple[str, District]:
    if isinstance(scenario, District):
        return scenario.name, scenario
    from scenarios.loader import load_cached

    d = load_cached(str(scenario))
    return d.name, d


def run(
    scenario: str | Path | District = "xiaohe",
    *,
    days: float = 7.0,
    seed: int = 0,
    replications: int = 1,
    warmup_days: float = 0.0,
    params: ResponseParams | None = None,
    demand: Any = None,
    start: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    replication_ids: Iterable[int] | None = None,
) -> SimulationResult:
    """Simulate a scenario.

    Args:
        scenario: A scenario name or folder (see :func:`scenarios.load`), or a district.
        days: Days per replication (> 0).
        seed: Root seed.
        replications: Independent replications (≥ 1).
        warmup_days: Days left out of the KPIs at the start (0 ≤ warmup < days).
        params: Response behaviour (default :class:`ResponseParams`).
        demand: :class:`scenarios.demand.DemandParams`, or a factory
            ``(district, SeedSequence) -> Demand`` (default: the Mesa model).
        start: Local start date and time (default Monday 2026-01-05 00:00).
        progress: Called as ``progress(done, total)`` after each replication.
        replication_ids: Which replications of ``seed`` to run (default ``range(replications)``;
            sweeps use it to spread one scenario's replications over workers).

    Raises:
        ValueError: naming the argument when a value is out of range.
    """
    if not (isinstance(days, (int, float)) and days > 0):
        raise ValueError(f"days: must be > 0, got {days!r}")
    if not (isinstance(replications, int) and replications >= 1):
        raise ValueError(f"replications: must be an integer >= 1, got {replications!r}")
    if not (0 <= warmup_days < days):
        raise ValueError(f"warmup_days: must be >= 0 and < days, got {warmup_days!r}")
    name, district = _district(scenario)
    district.roads.precompute_travel()
    from scenarios.demand import DemandModel, DemandParams

    if demand is None or isinstance(demand, DemandParams):
        dparams = demand

        def factory(ss: np.random.SeedSequence) -> Any:
            return DemandModel(district, ss, dparams)
    else:
        def factory(ss: np.random.SeedSequence) -> Any:
            return demand(district, ss)
    ids = list(replication_ids) if replication_ids is not None else list(range(replications))
    runs = replicate(district, factory, days=days, seed=seed, replication_ids=ids, params=params, start=start,
                     warmup_days=warmup_days, progress=progress)
    per_run = [kpis(r, warmup_days=warmup_days) for r in runs]
    return SimulationResult(scenario=name, days=days, warmup_days=warmup_days, seed=seed, runs=runs,
                            per_run=per_run, kpis=summarize(per_run))
