"""Benchmark: City Eye's detectors on a GPU (the CUDA path), prepared for a machine that has one.

    python benchmarks/bench_detection_gpu.py [--device cuda] [--quick]

1. **Detection**: frames per second of yolov4-tiny at 416² and of the street CenterNet, in
   fp16 on the GPU (fp32 on a CPU), at batch 1, 32 and 256. The frames are real CCTV frames
   (vtest.avi, 768 × 576) that go up to the device as ``uint8`` and are resized there
   (:func:`detection.darknet.resize_batch`): what the camera actors do with a GPU. Timed
   with the device synchronised; the median of a few runs after a warm-up.
2. **Decoding**: frames per second that OpenCV's FFmpeg decodes vtest.avi at on one CPU core,
   and on all of them (one process per core). Decoding stays on the CPU (no NVDEC here).
3. **Streams**: 2-fps camera streams one machine serves = min(detection, decoding) ÷ 2, and
   how many such machines xiaohe's 320 cameras need.

For scale (the issue's figure): yolov4-tiny alone reaches about 13,000 frames/s at 416²,
batch 256, fp16 on an H100 in eager PyTorch. Needs the cached weights and footage
(``streetbrain detection fetch-weights --footage``). Writes
benchmarks/results/detection_gpu.json (detection_cpu.json with ``--device cpu``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._machine import describe

ROOT = Path(__file__).resolve().parent.parent


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def detection_rate(det: Any, frames: list[np.ndarray], batch: int, device: str, repeats: int) -> float:
    """Frames per second of ``det.detect`` over batches of ``batch`` frames (median of ``repeats``)."""
    chunk = [frames[k % len(frames)] for k in range(batch)]
    det.detect(chunk)  # warm-up (kernels, allocations)
    _sync(device)
    rates = []
    for _ in range(repeats):
        n = max(1, 512 // batch) if device.startswith("cuda") else max(1, 16 // batch)
        t = time.perf_counter()
        for _ in range(n):
            det.detect(chunk)
        _sync(device)
        rates.append(n * batch / (time.perf_counter() - t))
    return statistics.median(rates)


def _decode(path: str) -> tuple[int, float]:
    import cv2

    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(path)
    n, t = 0, time.perf_counter()
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n, time.perf_counter() - t


def decode_rates(path: str) -> dict[str, float]:
    """Frames per second decoded on one core, and on every core at once (a process each)."""
    n, s = _decode(path)
    cores = os.cpu_count() or 1
    with mp.get_context("spawn").Pool(cores) as pool:
        pool.map(_decode, [path] * cores)  # (the workers' start-up, not timed)
        done = pool.map(_decode, [path] * cores)
    return {"one_core": round(n / s, 1), "all_cores": round(sum(k / t for k, t in done), 1), "cores": cores}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="batches 1 and 8 only, one run each")
    args = ap.parse_args()
    from detection.pipeline import frames_from
    from detection.weights import footage_path, load_detector

    gpu = args.device.startswith("cuda")
    batches = (1, 8) if args.quick else (1, 32, 256)
    repeats = 1 if args.quick else 3
    frames = [f for _, f in frames_from(footage_path(), fps=10.0, max_frames=64)]
    rows = []
    for name in ("yolov4-tiny", "street"):
        det = load_detector(name, device=args.device, size=416 if name == "yolov4-tiny" else None)
        if not gpu:
            det.resize_on_device = True  # the GPU path's preprocessing, on the CPU
        for b in batches:
            fps = detection_rate(det, frames, b, args.device, repeats)
            rows.append({"detector": name, "batch": b, "precision": "fp16" if gpu else "fp32",
                         "frames_per_s": round(fps, 1)})
            print(f"{name:12s} batch {b:4d} {'fp16' if gpu else 'fp32'}: {fps:9.1f} frames/s", flush=True)
        del det
        if gpu:
            torch.cuda.empty_cache()
    dec = decode_rates(str(footage_path()))
    print(f"decoding vtest.avi (768x576): {dec['one_core']} frames/s on one core, {dec['all_cores']} on "
          f"{dec['cores']} cores", flush=True)
    best = max(r["frames_per_s"] for r in rows if r["detector"] == "yolov4-tiny")
    whole = min(best, dec["all_cores"])
    streams = whole / 2.0
    machines = -(-320 // max(1, int(streams)))
    print(f"2-fps streams one such machine serves with yolov4-tiny: {streams:.0f} "
          f"({'decoding' if dec['all_cores'] < best else 'detection'} bounds it); xiaohe's 320 cameras: "
          f"{machines} machine{'s' if machines > 1 else ''}", flush=True)
    info: dict[str, Any] = {"device": args.device}
    if gpu:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    out = {"machine": describe(("torch", "opencv-python-headless", "numpy")), **info, "detection": rows,
           "decoding": dec, "streams_at_2fps_per_machine": round(streams, 1), "machines_for_320_cameras": machines,
           "bound_by": "decoding" if dec["all_cores"] < best else "detection"}
    res = ROOT / "benchmarks" / "results" / ("detection_gpu.json" if gpu else "detection_cpu.json")
    res.write_text(json.dumps(out, indent=2))
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
