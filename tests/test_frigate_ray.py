"""Frigate messages through area-shard Ray actors: concurrent messages for a shard go to it in a
few batched calls, each message gets its own answer (a refused one its own error, the rest
unaffected), and a Frigate camera name is routed to the shard that holds its camera. Runs in
a process of its own (Ray is started lean, on loopback, before anything imports it)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

SCRIPT = textwrap.dedent('''
    import asyncio, json, sys
    from scenarios.ray_setup import init_ray
    ray = init_ray(num_cpus=2)
    from actors.host import AreaShards
    from scenarios import load_cached
    from twin.errors import ValidationError

    T0 = 1_772_416_800.0
    district = load_cached("xiaohe")

    def msg(n, camera):
        after = {"id": f"{T0 + n:.6f}-c{n}", "camera": camera, "label": "car", "top_score": 0.8, "score": 0.9,
                 "start_time": T0, "frame_time": T0 + 400, "current_zones": ["no_parking", "driveway"]}
        return {"type": "update", "after": after}

    async def main():
        shards = AreaShards(district, 2, kinds=("cameras",), ray_actors=True, scenario="xiaohe")
        shards.ready()
        cams = [c.id for c in district.cameras]
        payloads = [msg(n, cams[n % len(cams)]) for n in range(200)]
        payloads[7] = msg(7, "nowhere")
        payloads[8] = msg(8, "gate_east")  # frigate.toml: K0060
        out = await asyncio.gather(*(shards.ingest_async(p) for p in payloads), return_exceptions=True)
        ok = [o for o in out if not isinstance(o, BaseException)]
        bad = [o for o in out if isinstance(o, BaseException)]
        print(json.dumps({
            "ok": len(ok), "reported": sum(1 for b, _, _ in ok if b is not None),
            "errors": [[type(e).__name__, getattr(e, "field", None), getattr(e, "reason", "")] for e in bad],
            "gate_east": list(out[8][1:]) if not isinstance(out[8], BaseException) else None,
            "calls": sum(c.calls for c in shards._ingests), "items": sum(c.items for c in shards._ingests),
            "reason": ok[0][1]}))
    asyncio.run(main())
    ray.shutdown()
''')


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_ray_shards_batch_and_answer_each_message() -> None:
    ray_tmp = tempfile.mkdtemp(prefix="sbray-")  # (Ray's socket paths must stay under 107 bytes)
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=200, env=env,
                         cwd=root)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ok"] == 199 and result["reported"] == 199
    assert result["errors"] == [["ValidationError", "after.camera", result["errors"][0][2]]]
    assert "unknown camera 'nowhere'" in result["errors"][0][2]
    assert result["gate_east"][1] == "K0060" and "reported TR01" in result["gate_east"][0]
    assert result["items"] == 200 and result["calls"] < 50  # a few batched calls, not one per message
    assert "ignored zone(s) 'driveway'" in result["reason"]
