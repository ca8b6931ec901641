"""Benchmark: parallel efficiency of a sweep of 200 runs on all cores of this machine.

    python benchmarks/bench_sweep.py [--runs 200] [--days 1]

The same sweep (a grid of brigade sizes × replications on xiaohe, one whole SimPy run per
task) runs twice in this process: sequentially (``backend="local"``) and as Ray tasks on
all cores. Parallel efficiency = T_sequential / (cores × T_ray). Ray's start-up is timed
separately and excluded. Both sweeps must give identical rows (same seeds). Writes
benchmarks/results/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe
from scenarios.ray_setup import init_ray
from scenarios.sweep import sweep

OUT = Path(__file__).resolve().parent / "results" / "sweep.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="total runs (grid points x replications)")
    ap.add_argument("--days", type=float, default=1.0, help="simulated days per run")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    sizes = [30, 35, 40, 45, 50, 55, 60, 65, 70, 75]
    reps = max(1, args.runs // len(sizes))
    grid = {"scenario.staff.co_governance.count": sizes}
    kw = {"days": args.days, "replications": reps, "seed": 1}
    total = len(sizes) * reps
    # Warm both paths' caches (district builds per grid point) so only the runs are timed.
    t0 = time.perf_counter()
    seq = sweep("xiaohe", grid, backend="local", **kw)
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray = init_ray(num_cpus=cores)
    t_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = sweep("xiaohe", grid, backend="ray", **kw)
    t_par = time.perf_counter() - t0
    ray.shutdown()
    norm = lambda rows: [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
                         for r in rows]  # nan != nan: compare with nan as None
    same = norm(seq.rows) == norm(par.rows)
    eff = t_seq / (cores * t_par)
    result = {"benchmark": "sweep", "machine": describe(("numpy", "simpy", "mesa", "ray")), "runs": total,
              "days_per_run": args.days, "cores": cores, "sequential_s": round(t_seq, 2), "ray_start_s": round(t_start, 2),
              "ray_s": round(t_par, 2), "speedup": round(t_seq / t_par, 2), "parallel_efficiency": round(eff, 3),
              "identical_rows": same}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{total} runs x {args.days:g} day(s) of xiaohe: sequential {t_seq:.1f} s, Ray on {cores} cores {t_par:.1f} s "
          f"(+{t_start:.1f} s start-up): speed-up {t_seq / t_par:.2f}, parallel efficiency {eff:.0%}; "
          f"identical rows: {same}")


if __name__ == "__main__":
    main()
