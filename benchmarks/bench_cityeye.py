"""Benchmark: a City Eye camera actor on this machine's CPU, against its detector alone.

    python benchmarks/bench_cityeye.py [--quick]

1. **Video cameras.** One :class:`actors.cityeye.CityEye` (the camera actor's object, in this
   process) with ``k`` cameras each playing ``vtest.avi`` (768 × 576, 10 frames/s, real
   CCTV footage) in a loop at its own pace and analysed at 10 frames/s per camera — more than
   the detector can take, so the actor runs flat out: reader threads decoding, the batched
   yolov4-tiny 416² (torch, batch 8), tracking, the rules, posting to a brain on a SQLite
   log. Frames analysed per second over a fixed wall time, against the same detector alone on
   the same frames already decoded (batch 8), as a ratio in the same run; frames dropped by
   the newest-frame-only hand-over are counted.
2. **Synthetic cameras.** ``k`` synthetic cameras of xiaohe rendered and analysed by the
   street CenterNet: frames per second (rendering dominates).

Camera streams at 2 frames/s one such 2-core machine serves = analysed frames/s ÷ 2.
Needs the cached weights and footage (``streetbrain detection fetch-weights --footage``).
Writes benchmarks/results/cityeye.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe

ROOT = Path(__file__).resolve().parent.parent


def _run(cameras_toml: str, seconds: float, tmp: Path) -> dict[str, Any]:
    """A camera actor over ``cameras_toml`` for ``seconds`` of wall time: frames analysed per
    second (after a warm-up of 3 s), frames read and dropped."""
    import scenarios
    from actors.brain import Brain
    from actors.cityeye import CityEye, read_config
    from actors.client import LocalClient
    from actors.eventlog import open_log
    from actors.live import Clock

    district = scenarios.load("xiaohe")
    path = tmp / f"cams{time.monotonic_ns()}.toml"
    path.write_text(cameras_toml)
    clock = Clock(1.0)
    brain = Brain(district, open_log(tmp / f"log{time.monotonic_ns()}.db"), clock)
    eye = CityEye(district, read_config(path, district), LocalClient(brain), clock.now)
    try:
        time.sleep(3.0)
        a0, t0 = eye.analysed, time.perf_counter()
        time.sleep(seconds)
        a1, t1 = eye.analysed, time.perf_counter()
        rows = eye.status()
    finally:
        eye.stop()
    return {"frames_per_s": round((a1 - a0) / (t1 - t0), 2), "read": sum(r["frames"] for r in rows),
            "dropped": sum(r["dropped"] for r in rows), "events": sum(len(r["events"]) for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--cameras", type=int, default=4, help="cameras per actor")
    args = ap.parse_args()
    torch.set_num_threads(2)
    import scenarios
    from detection.pipeline import frames_from
    from detection.synthetic import can_show
    from detection.weights import footage_path, yolov4_tiny

    seconds, repeats = (10.0, 1) if args.quick else (30.0, 3)
    k = args.cameras
    district = scenarios.load("xiaohe")
    video_ids = [c.id for c in district.cameras[:k]]
    frames = [f for _, f in frames_from(footage_path(), fps=10.0, max_frames=48)]
    det = yolov4_tiny(size=416)
    det.detect(frames[:8])
    only = []
    for _ in range(repeats):
        t = time.perf_counter()
        for b in range(0, len(frames), 8):
            det.detect(frames[b:b + 8])
        only.append(len(frames) / (time.perf_counter() - t))
    alone = statistics.median(only)
    print(f"yolov4-tiny 416² torch batch 8 alone: {alone:.2f} frames/s", flush=True)
    video_toml = "fps = 10\nbatch = 8\n" + "".join(
        f'[cameras.{c}]\nsource = "{footage_path()}"\nloop = true\n' for c in video_ids)
    tr01 = district.catalog["TR01"]
    synth_ids = [c.id for c in district.cameras if can_show(c, tr01)][:k]
    synth_toml = 'fps = 10\nbatch = 8\ndetector = "street"\n' + "".join(
        f'[cameras.{c}]\nsource = "synthetic"\n' for c in synth_ids)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [_run(video_toml, seconds, Path(tmp)) for _ in range(repeats)]
        video = sorted(runs, key=lambda r: r["frames_per_s"])[len(runs) // 2]
        ratio = alone / video["frames_per_s"]
        print(f"camera actor, {k} looped vtest.avi cameras: {video['frames_per_s']:.2f} frames/s analysed "
              f"({video['dropped']} of {video['read']} frames read were dropped); the actor takes {ratio:.3f}x "
              f"the detector's time per frame", flush=True)
        srun = [_run(synth_toml, seconds, Path(tmp)) for _ in range(repeats)]
        synth = sorted(srun, key=lambda r: r["frames_per_s"])[len(srun) // 2]
        print(f"camera actor, {k} synthetic cameras (render + street CenterNet): {synth['frames_per_s']:.2f} "
              f"frames/s", flush=True)
    streams = video["frames_per_s"] / 2
    machines = -(-320 // max(1, int(streams)))
    print(f"2-fps camera streams per 2-core machine (yolov4-tiny): {streams:.1f}; xiaohe's 320 cameras: "
          f"{machines} such machines", flush=True)
    out = {"machine": describe(("torch", "opencv-python-headless", "numpy")), "cameras": k, "seconds": seconds,
           "repeats": repeats, "detector_alone_frames_per_s": round(alone, 2),
           "video": {**video, "time_ratio_to_detector": round(ratio, 3), "runs": runs},
           "synthetic": {**synth, "runs": srun},
           "streams_at_2fps_per_machine": round(streams, 1), "machines_for_320_cameras": machines}
    res = ROOT / "benchmarks" / "results" / "cityeye.json"
    res.write_text(json.dumps(out, indent=2))
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
