"""Parameter sweeps: a grid of what-ifs × replications, one whole SimPy run per Ray task.

    >>> from scenarios.sweep import sweep
    >>> res = sweep("xiaohe", {"scenario.staff.co_governance.count": [40, 50, 60],
    ...                        "response.mode": ["peacetime", "wartime"]},
    ...             days=7, replications=5)
    >>> res.table            # one row per (point, replication): parameters + KPIs
    >>> res.summary()        # one row per point: mean and 95% CI of each KPI

Parameter names say what they change:

- ``scenario.<path>`` — a setting of ``scenario.toml`` (``scenario.assets.cameras``); the
  district is rebuilt and validated like the file;
- ``response.<field>`` — :class:`scenarios.model.ResponseParams` (``response.mode``,
  ``response.sign_mean_s``);
- ``demand.<field>`` — :class:`scenarios.demand.DemandParams` (``demand.rate_factor``).

Every point runs replications ``0..R-1`` of the same seed, so points share their random
demand (common random numbers) and differences between points are sharper than between
independent runs. The same code runs on a laptop (``ray.init()`` starts a local cluster
bound to 127.0.0.1) and on a Ray cluster (``address="auto"`` or ``ray://…``);
``backend="local"`` runs everything in this process, in the same order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scenarios.ray_setup import init_ray
from scenarios.results import estimate

_PREFIXES = ("scenario.", "response.", "demand.")


def _split(point: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    scen, resp, dem = {}, {}, {}
    for key, value in point.items():
        if key.startswith("scenario."):
            scen[key.removeprefix("scenario.")] = value
        elif key.startswith("response."):
            resp[key.removeprefix("response.")] = value
        elif key.startswith("demand."):
            dem[key.removeprefix("demand.")] = value
        else:
            raise ValueError(f"grid: parameter '{key}' must start with one of {', '.join(_PREFIXES)}")
    return scen, resp, dem


def _params(cls: type, values: Mapping[str, Any], what: str) -> Any:
    from twin.staff import Mode

    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ValueError(f"grid: '{what}.{key}' is not a {what} parameter; known: {', '.join(sorted(names))}")
    kwargs = dict(values)
    if "mode" in kwargs:
        kwargs["mode"] = Mode(kwargs["mode"])
    if "patrol_share" in kwargs and isinstance(kwargs["patrol_share"], dict):
        from twin.staff import Role

        kwargs["patrol_share"] = {Role(k): float(v) for k, v in kwargs["patrol_share"].items()}
    return cls(**kwargs)


def flat_kpis(k: Mapping[str, Any]) -> dict[str, float]:
    """The scalar KPIs of one run, with utilisation flattened to ``utilisation.<role>``."""
    out: dict[str, float] = {}
    for key, value in k.items():
        if isinstance(value, (int, float)):
            out[key] = float(value)
        elif key == "utilisation":
            out.update({f"utilisation.{role}": float(v) for role, v in value.items()})
    return out


def run_point(scenario: str, point: Mapping[str, Any], *, days: float, seed: int, replication: int,
              warmup_days: float) -> dict[str, Any]:
    """One replication of one grid point; returns the point, the replication and its KPIs."""
    from scenarios.demand import DemandParams
    from scenarios.loader import load_cached
    from scenarios.model import ResponseParams
    from scenarios.simulate import run

    scen, resp, dem = _split(point)
    district = load_cached(scenario, scen or None)
    result = run(district, days=days, seed=seed, warmup_days=warmup_days, replication_ids=[replication],
                 params=_params(ResponseParams, resp, "response"), demand=_params(DemandParams, dem, "demand"))
    return {**point, "replication": replication, **flat_kpis(result.per_run[0])}


@dataclass
class SweepResult:
    """All runs of a sweep.

    Attributes:
        parameters: The swept parameter names, in grid order.
        rows: One dict per (point, replication): parameters, ``replication``, KPIs.
    """

    parameters: list[str]
    rows: list[dict[str, Any]]

    @property
    def table(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self, kpis: Sequence[str] = ("on_scene_within_180s", "responded_within_60s",
                                               "within_targets", "wait_mean_s")) -> Any:
        """One row per point: for each KPI its mean and 95% CI over replications."""
        import pandas as pd

        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in self.rows:
            groups.setdefault(tuple(row[p] for p in self.parameters), []).append(row)
        out = []
        for key, rows in groups.items():
            rec: dict[str, Any] = dict(zip(self.parameters, key))
            rec["replications"] = len(rows)
            for k in kpis:
                e = estimate(r.get(k, math.nan) for r in rows)
                rec[k], rec[f"{k}_lo"], rec[f"{k}_hi"] = e.mean, e.lo, e.hi
            out.append(rec)
        return pd.DataFrame(out)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of a parameter grid, in a fixed order."""
    if not grid:
        return [{}]
    for key, values in grid.items():
        _split({key: None})
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid: '{key}' must map to a non-empty list of values")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def sweep(
    scenario: str,
    grid: Mapping[str, Sequence[Any]],
    *,
    days: float = 7.0,
    seed: int = 0,
    replications: int = 5,
    warmup_days: float = 0.0,
    backend: str = "ray",
    address: str | None = None,
    num_cpus: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run every grid point for ``replications`` replications.

    Args:
        scenario: Scenario name or folder.
        grid: Parameter name → values (see the module doc for names).
        days: Days per run.
        seed: Root seed shared by all points (common random numbers).
        replications: Replications per point.
        warmup_days: Warm-up left out of the KPIs.
        backend: ``ray`` (one task per run) or ``local`` (in this process).
        address: Ray cluster to join (``None``: start a local one).
        num_cpus: CPUs for a local Ray (default: all).
        progress: Called as ``progress(done, total)``.

    Raises:
        ValueError: naming the bad parameter or argument.
    """
    if backend not in ("ray", "local"):
        raise ValueError(f"backend: must be 'ray' or 'local', got {backend!r}")
    if not (isinstance(replications, int) and replications >= 1):
        raise ValueError(f"replications: must be an integer >= 1, got {replications!r}")
    points = grid_points(grid)
    jobs = [(p, k) for p in points for k in range(replications)]
    rows: list[dict[str, Any]] = []
    if backend == "local":
        for done, (p, k) in enumerate(jobs, 1):
            rows.append(run_point(scenario, p, replication=k, days=days, seed=seed, warmup_days=warmup_days))
            if progress:
                progress(done, len(jobs))
    else:
        ray = init_ray(address=address, num_cpus=num_cpus)
        task = ray.remote(num_cpus=1, max_retries=1)(run_point)
        pending = {task.remote(scenario, p, replication=k, days=days, seed=seed, warmup_days=warmup_days): i
                   for i, (p, k) in enumerate(jobs)}
        results: dict[int, dict[str, Any]] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                results[pending.pop(ref)] = ray.get(ref)
            if progress:
                progress(len(results), len(jobs))
        rows = [results[i] for i in range(len(jobs))]
    return SweepResult(parameters=list(grid), rows=rows)
