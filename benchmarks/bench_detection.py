"""Benchmark: City Eye throughput on this machine's CPU.

    python benchmarks/bench_detection.py [--quick]

1. Detectors alone, frames per second over real frames (vtest.avi, 768 × 576, resized by
   each detector): yolov4-tiny at 416² and 640², and the synthetic CenterNet at 384 × 256;
   each in torch (eager) and in onnxruntime (the same graph exported), at batch 1 and 8,
   with 2 intra-op threads. Compared as ratios within this run.
2. The whole pipeline on vtest.avi at 2 analysed frames a second — decoding, detection
   (yolov4-tiny 416², torch, batch 8), tracking, the rules of the example camera
   (``detection/examples/vtest_plaza.toml``) — against detection alone on the same frames
   already decoded: the pipeline's overhead as a ratio (target: within 15%).

Needs the cached weights and footage (``streetbrain detection fetch-weights --footage``).
Writes benchmarks/results/detection.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe

ROOT = Path(__file__).resolve().parent.parent


def _frames(n: int) -> list[np.ndarray]:
    from detection.pipeline import frames_from
    from detection.weights import footage_path

    return [f for _, f in frames_from(footage_path(), fps=2.0, max_frames=n)]


def _rate(fn: Callable[[list[np.ndarray]], Any], frames: list[np.ndarray], batch: int, repeats: int) -> float:
    """Frames per second of ``fn`` over ``frames`` in batches (median of ``repeats``)."""
    fn(frames[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for b in range(0, len(frames), batch):
            fn(frames[b:b + batch])
        rates.append(len(frames) / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from detection.centernet import CenterNetDetector
    from detection.onnx import OnnxCenterNet, OnnxDarknet, export
    from detection.weights import street_weights, yolov4_tiny

    n, repeats = (16, 1) if args.quick else (48, 3)
    frames = _frames(n)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (416, 640):
            det = yolov4_tiny(size=size)
            onnx = OnnxDarknet(export(det.net, Path(tmp) / f"yolo{size}.onnx", width=size, height=size,
                                      outputs=["yolo0", "yolo1"]), det)
            for batch in (1, 8):
                for engine, d in (("torch", det), ("onnxruntime", onnx)):
                    fps = _rate(d.detect, frames, batch, repeats)
                    rows.append({"detector": f"yolov4-tiny {size}x{size}", "engine": engine, "batch": batch,
                                 "frames_per_s": round(fps, 2)})
                    print(f"yolov4-tiny {size}² {engine:12s} batch {batch}: {fps:7.2f} frames/s", flush=True)
        cn = CenterNetDetector(street_weights())
        cn_onnx = OnnxCenterNet(export(cn.model, Path(tmp) / "cn.onnx", width=cn.size[0], height=cn.size[1],
                                       outputs=["heat", "size", "offset"]), cn)
        for batch in (1, 8):
            for engine, d2 in (("torch", cn), ("onnxruntime", cn_onnx)):
                fps = _rate(d2.detect, frames, batch, repeats)
                rows.append({"detector": "centernet-street 384x256", "engine": engine, "batch": batch,
                             "frames_per_s": round(fps, 2)})
                print(f"centernet 384x256 {engine:12s} batch {batch}: {fps:7.2f} frames/s", flush=True)

    # the whole pipeline against detection alone, on the same frames
    from detection.pipeline import Pipeline, camera_config, frames_from
    from detection.weights import footage_path

    det = yolov4_tiny(size=416)
    only = _rate(det.detect, frames, 8, repeats)
    cam, cal, specs = camera_config(ROOT / "detection" / "examples" / "vtest_plaza.toml")
    rates = []
    for _ in range(repeats):
        pipe = Pipeline(cam, cal, det, specs, batch=8)
        t = time.perf_counter()
        k = sum(1 for _ in pipe.run(frames_from(footage_path(), fps=2.0, max_frames=n)))
        rates.append(k / (time.perf_counter() - t))
    whole = statistics.median(rates)
    ratio = only / whole
    print(f"pipeline (decode + detect + track + rules): {whole:.2f} frames/s; detector alone {only:.2f}: "
          f"the pipeline takes {ratio:.3f}x the detector's time ({'PASS' if ratio <= 1.15 else 'FAIL'} <= 1.15)")
    out = {"machine": describe(("torch", "onnxruntime", "opencv-python-headless", "numpy")), "frames": n,
           "repeats": repeats, "threads": 2, "detectors": rows,
           "pipeline": {"frames_per_s": round(whole, 2), "detector_only_frames_per_s": round(only, 2),
                        "time_ratio": round(ratio, 3), "target": 1.15, "pass": ratio <= 1.15},
           "streams_at_2fps": {r["detector"] + " " + r["engine"] + f" b{r['batch']}": round(r["frames_per_s"] / 2, 1)
                               for r in rows}}
    res = ROOT / "benchmarks" / "results" / "detection.json"
    res.write_text(json.dumps(out, indent=2))
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
