"""Benchmark: one simulated year of xiaohe, and the single-pool reduction beside its peers.

    python benchmarks/bench_sim.py [--quick]

1. Loading xiaohe and precomputing its travel tables is timed apart (set-up); then
   ``scenarios.run("xiaohe", days=365, seed=1)`` (Mesa demand + SimPy response) runs once on
   one core: wall and CPU seconds, events, incidents, events per wall second, simulated time
   per wall time, a few KPIs, max RSS. Project target: a year in at most 30 s (PASS/FAIL).
2. The same M/M/c queue (30 calls/h, exponential service of mean 10 min, 6 servers, about
   20,000 customers after a one-day warm-up) run by the twin's normal engine
   (``pool_district`` + ``PoissonDemand`` + ``run_once`` with the preset parameters, as the
   validation tests run it), by Ciw, and by a minimal hand-written SimPy loop. Each is timed
   3 times (seeds 1-3, interleaved, median taken) as customers served per wall second, and
   compared as ratios from this run; mean waits sit beside Erlang C's as a sanity check.

``--quick``: 30 simulated days instead of 365, and pool runs of 5 days after a quarter-day
warm-up. Set-up (imports, districts, networks) is kept out of the timings.
Writes benchmarks/results/sim.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import scenarios
from benchmarks._machine import describe
from scenarios.engine import run_once
from scenarios.loader import load_cached
from scenarios.presets import PoissonDemand, _preset_params, pool_district
from scenarios.theory import mmc
from twin.staff import DAY_S

OUT = Path(__file__).resolve().parent / "results" / "sim.json"
YEAR_TARGET_S = 30.0

# The single-pool model shared by the three simulators (seconds throughout).
ARRIVALS_PER_H = 30.0
SERVICE_MIN = 10.0
SERVERS = 6
LAM = ARRIVALS_PER_H / 3600.0
MU = 1.0 / (SERVICE_MIN * 60.0)
SEEDS = (1, 2, 3)


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)


def clocked(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one call (after a garbage collection), and its result."""
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - t, time.process_time() - c, result


# --- 1. a year of xiaohe ------------------------------------------------------------------------------

def bench_year(days: float) -> dict[str, Any]:
    wall_load, _, d = clocked(lambda: load_cached("xiaohe"))
    wall_travel, _, _ = clocked(d.roads.precompute_travel)
    wall, cpu, res = clocked(lambda: scenarios.run("xiaohe", days=days, seed=1))
    run = res.runs[0]
    kp = res.summary()
    events = len(run.records)
    projected = wall * 365.0 / days
    return {
        "scenario": "xiaohe", "days": days, "seed": 1,
        "setup": {"load_s": round(wall_load, 3), "travel_tables_s": round(wall_travel, 3)},
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "events": events, "incidents": run.incidents,
        "events_per_wall_s": round(events / wall, 1), "incidents_per_wall_s": round(run.incidents / wall, 1),
        "sim_to_wall": round(days * DAY_S / wall, 0),
        "kpis": {k: kp.get(k) for k in ("on_scene_within_180s", "responded_within_60s", "within_targets",
                                        "events_per_day")},
        "target_year_s": YEAR_TARGET_S, "year_s": round(projected, 2), "year_projected": days != 365,
        "pass": projected <= YEAR_TARGET_S, "max_rss_mb_after": rss_mb(),
    }


# --- 2. the single pool, three ways -------------------------------------------------------------------

def twin_pool(days: float, warmup_days: float) -> Callable[[int], tuple[int, list[float]]]:
    district = pool_district(SERVERS, handling_min=SERVICE_MIN)
    params = _preset_params()

    def demand(ss: np.random.SeedSequence) -> PoissonDemand:
        return PoissonDemand(district, lambda t: LAM, LAM, np.ones(1), ss)

    def go(seed: int) -> tuple[int, list[float]]:
        run = run_once(district, demand, days=days, seed=seed, params=params, warmup_days=warmup_days)
        served = sum(r.outcome == "closed" for r in run.records)
        waits = [r.wait_s for r in run.records
                 if r.reported_s >= warmup_days * DAY_S and not np.isnan(r.wait_s)]
        return served, waits

    return go


def ciw_pool(days: float, warmup_days: float) -> Callable[[int], tuple[int, list[float]]]:
    import ciw

    network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate=LAM)],
                                 service_distributions=[ciw.dists.Exponential(rate=MU)],
                                 number_of_servers=[SERVERS])

    def go(seed: int) -> tuple[int, list[float]]:
        ciw.seed(seed)  # global (random and numpy): acceptable inside this benchmark only
        sim = ciw.Simulation(network)
        sim.simulate_until_max_time(days * DAY_S)
        recs = [r for r in sim.get_all_records() if r.record_type == "service"]
        return len(recs), [r.waiting_time for r in recs if r.arrival_date >= warmup_days * DAY_S]

    return go


def simpy_pool(days: float, warmup_days: float) -> Callable[[int], tuple[int, list[float]]]:
    def go(seed: int) -> tuple[int, list[float]]:
        rng = np.random.default_rng(seed)
        env = simpy.Environment()
        servers = simpy.Resource(env, capacity=SERVERS)
        warm = warmup_days * DAY_S
        waits: list[float] = []
        served = [0]

        def customer(arrived: float) -> Any:
            with servers.request() as req:
                yield req
                if arrived >= warm:
                    waits.append(env.now - arrived)
                yield env.timeout(rng.exponential(1.0 / MU))
            served[0] += 1

        def source() -> Any:
            while True:
                yield env.timeout(rng.exponential(1.0 / LAM))
                env.process(customer(env.now))

        env.process(source())
        env.run(until=days * DAY_S)
        return served[0], waits

    return go


def bench_pool(days: float, warmup_days: float) -> dict[str, Any]:
    runners = {"twin": twin_pool(days, warmup_days), "ciw": ciw_pool(days, warmup_days),
               "simpy_loop": simpy_pool(days, warmup_days)}
    walls: dict[str, list[float]] = {k: [] for k in runners}
    served: dict[str, list[int]] = {k: [] for k in runners}
    waits: dict[str, list[float]] = {k: [] for k in runners}
    for seed in SEEDS:  # interleaved, so drift in the machine's speed hits all three alike
        for name, go in runners.items():
            wall, _, (n, w) = clocked(lambda go=go, seed=seed: go(seed))
            walls[name].append(wall)
            served[name].append(n)
            waits[name].extend(w)
    theory = mmc(LAM, MU, SERVERS)
    rows = {}
    for name in runners:
        wall = statistics.median(walls[name])
        rows[name] = {"wall_s": [round(w, 3) for w in walls[name]], "median_wall_s": round(wall, 3),
                      "customers_served": served[name],
                      "customers_per_s": round(statistics.median(served[name]) / wall, 0),
                      "measured_customers": len(waits[name]),
                      "mean_wait_min": round(float(np.mean(waits[name])) / 60.0, 3)}
    ours = rows["twin"]["customers_per_s"]
    return {
        "model": {"arrivals_per_h": ARRIVALS_PER_H, "mean_service_min": SERVICE_MIN, "servers": SERVERS,
                  "utilisation": round(theory.utilisation, 4), "days": days, "warmup_days": warmup_days,
                  "seeds": list(SEEDS), "repeats": len(SEEDS)},
        "erlang_c": {"p_wait": round(theory.p_wait, 4), "mean_wait_min": round(theory.mean_wait / 60.0, 3)},
        "runs": rows,
        "ratio_twin_to_ciw": round(ours / rows["ciw"]["customers_per_s"], 3),
        "ratio_twin_to_simpy_loop": round(ours / rows["simpy_loop"]["customers_per_s"], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="30 simulated days, short pool runs")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    year = bench_year(30.0 if args.quick else 365.0)
    pool = bench_pool(*((5.25, 0.25) if args.quick else (29.0, 1.0)))
    result = {"benchmark": "sim", "quick": args.quick,
              "machine": describe(("numpy", "scipy", "simpy", "mesa", "ciw")),
              "load_avg_1min_before": round(load_before, 2), "torch_imported": "torch" in sys.modules,
              "year": year, "pool": pool, "max_rss_mb": rss_mb()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")

    y = year
    print(f"xiaohe set-up: load {y['setup']['load_s']:.2f} s, travel tables {y['setup']['travel_tables_s']:.2f} s")
    print(f"xiaohe {y['days']:.0f} days: wall {y['wall_s']:.2f} s (cpu {y['cpu_s']:.2f} s)  events {y['events']}  "
          f"incidents {y['incidents']}  {y['events_per_wall_s']:.0f} events/s  sim/wall {y['sim_to_wall']:.0f}x  "
          f"max RSS {y['max_rss_mb_after']:.0f} MB")
    print(f"  KPIs: on_scene_within_180s {y['kpis']['on_scene_within_180s']:.3f}  "
          f"responded_within_60s {y['kpis']['responded_within_60s']:.3f}  "
          f"within_targets {y['kpis']['within_targets']:.3f}")
    verdict = "PASS" if y["pass"] else "FAIL"
    how = " (projected from the short run)" if y["year_projected"] else ""
    print(f"  a year in {y['year_s']:.1f} s{how}, target <= {YEAR_TARGET_S:.0f} s: {verdict}")
    m = pool["model"]
    print(f"M/M/{m['servers']} (lambda {m['arrivals_per_h']:.0f}/h, service {m['mean_service_min']:.0f} min, "
          f"rho {m['utilisation']:.3f}, {m['days'] - m['warmup_days']:g} days after {m['warmup_days']:g} warm-up, "
          f"median of {m['repeats']}):")
    for name, r in pool["runs"].items():
        print(f"  {name:>10}: {r['customers_per_s']:>9.0f} customers/s  (median {r['median_wall_s']:.3f} s)  "
              f"mean wait {r['mean_wait_min']:.2f} min over {r['measured_customers']} customers")
    print(f"  Erlang C mean wait {pool['erlang_c']['mean_wait_min']:.2f} min;  twin/Ciw {pool['ratio_twin_to_ciw']:.3f}  "
          f"twin/SimPy-loop {pool['ratio_twin_to_simpy_loop']:.3f}")
    print(f"torch imported: {result['torch_imported']}; 1-min load before {load_before:.2f}; max RSS "
          f"{result['max_rss_mb']:.0f} MB; written to "
          f"{OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()
