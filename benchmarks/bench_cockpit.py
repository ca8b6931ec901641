"""Benchmark: the cockpit in Debian's chromium (software WebGL, 2 cores) over a running twin.

    python benchmarks/bench_cockpit.py [--quick]

1. **First map draw**: from opening ``/`` (already signed in: the token is in the tab's
   storage) to deck.gl's first frame with the district's base map, for xiaohe and for
   ``synthetic-100x`` (its ~135,000 road segments, 7,600 grids and 32,000 camera views), and
   the size of ``/api/v1/map/base``. Each over a fresh ``streetbrain serve --no-ray``.
2. **Report to drawn**: 100 reports/s for 20 s posted to xiaohe (``--speed 1``) while the
   board and map are open: for each event, from the moment its POST was sent to the moment
   the page first drew it (the page's clock and this script's are the same machine's), p50
   and p99; and the page's long tasks (the Long Tasks API) during the load: how many over
   200 ms, the longest.

Writes benchmarks/results/cockpit.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "streetbrain"
TOKEN = "bench-admin-token-0123456789abcdef"
ARGS = ["--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Twin:
    def __init__(self, scenario: str, tmp: Path, *extra: str) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "STREETBRAIN_ADMIN_TOKEN": TOKEN}
        self.proc = subprocess.Popen([str(BIN), "serve", "--no-ray", "--scenario", scenario, "--db",
                                      str(tmp / f"{scenario}.db"), "--port", str(self.port), *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError(f"{scenario}: the twin did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def first_draw(browser: Any, twin: Twin) -> dict[str, Any]:
    h = {"Authorization": f"Bearer {TOKEN}"}
    t = time.perf_counter()
    base = httpx.get(twin.url + "/api/v1/map/base", headers=h, timeout=600)  # (built once per server: warm it)
    build_s = time.perf_counter() - t
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(twin.url + "/")
    page.evaluate(f"sessionStorage.setItem('sb-token', '{TOKEN}')")
    t = time.perf_counter()
    page.reload()
    page.wait_for_function("window.cockpit.drawn > 0", timeout=600_000)
    draw_s = time.perf_counter() - t
    page.close()
    return {"first_draw_s": round(draw_s, 2), "base_map_bytes": len(base.content),
            "base_map_first_build_s": round(build_s, 2)}


async def _post_load(url: str, rate: float, seconds: float, spots: list[tuple[float, float]]) -> dict[str, float]:
    sent: dict[str, float] = {}
    h = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=h, timeout=30) as client:
        async def one(k: int) -> None:
            lon, lat = spots[k % len(spots)]
            at = time.time()
            r = await client.post("/api/v1/events", json={"scenario": "PU10", "lon": lon, "lat": lat,
                                                          "source": "citizen", "description": f"bench {k}"})
            if r.status_code == 201 and r.json()["event"]["state"] != "merged":  # (a merged one is not drawn)
                sent[r.json()["event"]["id"]] = at

        tasks = []
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < seconds:
            due = t0 + k / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(k)))
            k += 1
        await asyncio.gather(*tasks)
    return sent


def report_to_drawn(browser: Any, twin: Twin, rate: float, seconds: float) -> dict[str, Any]:
    import numpy as np

    import scenarios

    d = scenarios.load("xiaohe")
    rng = np.random.default_rng(1)
    mids = d.roads.midpoints[d.responsible]
    xy = mids[rng.integers(len(mids), size=4000)] + rng.normal(0, 1.0, (4000, 2))
    spots = [tuple(float(v) for v in d.projection.to_lonlat(x, y)) for x, y in xy]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(twin.url + "/")
    page.evaluate(f"sessionStorage.setItem('sb-token', '{TOKEN}')")
    page.reload()
    page.wait_for_function("window.cockpit.drawn > 0", timeout=120_000)
    page.wait_for_timeout(2000)
    page.evaluate("window.cockpit.longTasks.length = 0")
    box: list[dict[str, float]] = []  # (Playwright's sync API holds this thread's event loop)
    worker = threading.Thread(target=lambda: box.append(asyncio.run(_post_load(twin.url, rate, seconds, spots))))
    worker.start()
    worker.join()
    sent = box[0]
    page.wait_for_timeout(3000)
    drawn = dict(page.evaluate("[...window.cockpit.drawnAt.entries()]"))
    long_tasks = page.evaluate("window.cockpit.longTasks")
    page.close()
    lat = sorted(drawn[e] / 1000.0 - t for e, t in sent.items() if e in drawn)
    pct = lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None
    return {"rate_per_s": rate, "seconds": seconds, "posted": len(sent), "drawn": len(lat),
            "report_to_drawn_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
                                   "max": round(1000 * lat[-1], 1) if lat else None,
                                   "mean": round(1000 * statistics.fmean(lat), 1) if lat else None},
            "long_tasks": {"count": len(long_tasks), "over_200ms": sum(1 for x in long_tasks if x > 200),
                           "longest_ms": round(max(long_tasks), 1) if long_tasks else 0.0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="xiaohe only, a shorter load")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {"machine": describe(("playwright", "pydeck", "fastapi")), "first_draw": {}}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for scenario in ("xiaohe",) if args.quick else ("xiaohe", "synthetic-100x"):
            twin = Twin(scenario, Path(tmp))
            try:
                out["first_draw"][scenario] = first_draw(browser, twin)
                print(f"{scenario}: first map draw {out['first_draw'][scenario]['first_draw_s']} s "
                      f"(base map {out['first_draw'][scenario]['base_map_bytes'] / 1e6:.1f} MB)", flush=True)
            finally:
                twin.stop()
        twin = Twin("xiaohe", Path(tmp), "--speed", "1")
        try:
            load = report_to_drawn(browser, twin, 100.0, 10.0 if args.quick else 20.0)
        finally:
            twin.stop()
        browser.close()
    out["under_load"] = load
    r = load["report_to_drawn_ms"]
    print(f"100 reports/s for {load['seconds']:g} s: {load['drawn']} of {load['posted']} drawn; report → drawn "
          f"p50 {r['p50']} ms, p99 {r['p99']} ms; long tasks over 200 ms: {load['long_tasks']['over_200ms']} "
          f"(longest {load['long_tasks']['longest_ms']} ms)", flush=True)
    res = ROOT / "benchmarks" / "results" / "cockpit.json"
    res.write_text(json.dumps(out, indent=2))
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
