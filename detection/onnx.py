"""ONNX: export the detectors' networks, and run any ONNX detector with onnxruntime.

:func:`export` writes a network's graph (a fixed input size, a dynamic batch);
:class:`OnnxDarknet` and :class:`OnnxCenterNet` run such a file with onnxruntime behind
the :class:`detection.base.Detector` interface, with the same pre- and post-processing as
their torch twins, so a user's own ONNX file of either kind plugs in too. Threads are set
explicitly (``threads``; on 2 cores, 2 intra-op and 1 inter-op).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detection.base import Detections


def export(net: torch.nn.Module, path: str | Path, *, width: int, height: int, outputs: Sequence[str]) -> Path:
    """Write ``net`` (eval mode, float32) as ONNX with input ``images`` of shape
    ``(batch, 3, height, width)``, the batch dynamic."""
    net = net.eval().float()
    x = torch.zeros(1, 3, height, width)
    p = Path(path)
    torch.onnx.export(net, (x,), str(p), input_names=["images"], output_names=list(outputs), opset_version=17,
                      dynamic_axes={"images": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}, dynamo=False)
    return p


def session(path: str | Path, *, threads: int = 2) -> Any:
    """An onnxruntime CPU session with explicit thread counts."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxDarknet:
    """A Darknet YOLO exported with :func:`export` (outputs: each ``[yolo]`` layer's raw map),
    decoded and suppressed as :class:`detection.darknet.DarknetDetector` does."""

    def __init__(self, path: str | Path, torch_twin: Any, *, threads: int = 2) -> None:
        self.sess = session(path, threads=threads)
        self.twin = torch_twin  # its preprocessing, decoding and NMS
        self.names: tuple[str, ...] = torch_twin.names

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not len(frames):
            return []
        x = self.twin.preprocess(frames).float().numpy()
        outs = [torch.from_numpy(o) for o in self.sess.run(None, {"images": x})]
        dec = self.twin.net.decode(outs)
        return [self.twin._finish(d, f.shape[1], f.shape[0]) for d, f in zip(dec, frames)]


class OnnxCenterNet:
    """A :class:`detection.centernet.CenterNet` exported with :func:`export` (outputs
    ``heat``, ``size``, ``offset``), decoded as :class:`detection.centernet.CenterNetDetector`."""

    def __init__(self, path: str | Path, torch_twin: Any, *, threads: int = 2) -> None:
        self.sess = session(path, threads=threads)
        self.twin = torch_twin
        self.names: tuple[str, ...] = torch_twin.names

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not len(frames):
            return []
        x = self.twin.preprocess(frames).numpy()
        heat, size, off = (torch.from_numpy(o) for o in self.sess.run(None, {"images": x}))
        out: list[Detections] = self.twin.postprocess(heat, size, off, frames)
        return out
