"""Benchmark: load a scenario and compute its travel-time tables (xiaohe, 10x, 100x).

    python benchmarks/bench_load.py [--quick]

Set-up (imports) is kept out of the timings. For xiaohe the whole all-pairs table is built
for each mode; for the large synthetic districts (beyond the dense limit) travel times come
from single-destination searches, so their cost per query is reported, with the cost of
the rows a dispatcher needs for 1,000 events. Peer, in the same run: networkx's Dijkstra
(the usual choice of OSMnx users) on the same xiaohe graph, as a time ratio.
Writes benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe
from scenarios.loader import load
from twin.geo import TravelMode

OUT = Path(__file__).resolve().parent / "results" / "load.json"


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench_district(name: str, repeat: int) -> dict:
    load_s, d = timed(lambda: load(name), repeat)
    row = {"scenario": name, "load_s": round(load_s, 3), "routing_nodes": d.roads.n_nodes,
           "routing_segments": len(d.roads), "patrolled_roads": int(len(d.responsible)),
           "grids": len(d.regions.grids), "members": len(d.roster.members),
           "cameras": len(d.cameras), "shops": len(d.shops)}
    rng = np.random.default_rng(0)
    per_mode = {}
    for mode in TravelMode:
        tt = d.roads.travel(mode)
        if d.roads.n_nodes <= 6000:
            secs, _ = timed(tt.precompute)
            per_mode[mode.value] = {"all_pairs_s": round(secs, 3), "table_mb": round(d.roads.n_nodes ** 2 * 4 / 1e6, 1)}
        else:
            dsts = rng.choice(d.roads.n_nodes, size=50, replace=False)
            secs, _ = timed(lambda tt=tt, dsts=dsts: [tt.to_node(int(n)) for n in dsts])
            per_query = secs / len(dsts)
            per_mode[mode.value] = {"row_query_ms": round(per_query * 1000, 2),
                                    "rows_for_1000_events_s": round(per_query * 1000, 1)}
    row["travel"] = per_mode
    row["travel_total_s"] = round(sum(v.get("all_pairs_s", 0) for v in per_mode.values()), 3)
    return row, d


def networkx_ratio(d) -> dict:  # type: ignore[no-untyped-def]
    try:
        import networkx as nx
    except ImportError:
        return {"skipped": "networkx not installed"}
    g = d.roads.graph(TravelMode.WALK).tocoo()
    G = nx.DiGraph()
    G.add_weighted_edges_from(zip(g.row.tolist(), g.col.tolist(), g.data.tolist()))
    sources = list(range(0, d.roads.n_nodes, max(1, d.roads.n_nodes // 200)))
    nx_s, _ = timed(lambda: [nx.single_source_dijkstra_path_length(G, s) for s in sources])
    nx_all_pairs_est = nx_s / len(sources) * d.roads.n_nodes
    from twin.geo import TravelTimes

    ours_s, _ = timed(lambda: TravelTimes(d.roads.graph(TravelMode.WALK)).precompute())
    return {"networkx_all_pairs_est_s": round(nx_all_pairs_est, 2), "streetbrain_all_pairs_s": round(ours_s, 3),
            "speedup_vs_networkx": round(nx_all_pairs_est / ours_s, 1), "networkx": nx.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100x district")
    args = ap.parse_args()
    rows = []
    row, xiaohe = bench_district("xiaohe", repeat=3)
    rows.append(row)
    peer = networkx_ratio(xiaohe)
    for name in ("synthetic-10x",) + (() if args.quick else ("synthetic-100x",)):
        rows.append(bench_district(name, repeat=1)[0])
    result = {"benchmark": "load", "machine": describe(("numpy", "scipy", "shapely", "networkx")),
              "districts": rows, "peer": peer,
              "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    for r in rows:
        print(f"{r['scenario']:>15}: load {r['load_s']:7.2f} s  nodes {r['routing_nodes']:>6}  "
              f"segments {r['routing_segments']:>6}  travel {json.dumps(r['travel'])}")
    print(f"peer (xiaohe, walking all-pairs): {json.dumps(peer)}")
    print(f"max RSS {result['max_rss_mb']:.0f} MB; written to {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()
