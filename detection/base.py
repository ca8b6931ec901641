"""What every detector gives and takes: frames in, boxes with scores and class names out.

A detector is anything with ``names`` and ``detect(frames)``: the Darknet YOLO reader
(:mod:`detection.darknet`), an ONNX file (:mod:`detection.onnx`), or a user's torchvision
model wrapped by :class:`TorchvisionDetector`. Frames are ``H × W × 3`` ``uint8`` arrays in
OpenCV's BGR order; boxes are ``x1, y1, x2, y2`` in the frame's own pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Detections:
    """The objects found in one frame.

    Attributes:
        boxes: ``(n, 4)`` float32, ``x1, y1, x2, y2`` in pixels.
        scores: ``(n,)`` float32 confidences in [0, 1].
        labels: ``(n,)`` int64 class ids, indices into ``names``.
        names: The detector's class names.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.labels.shape != (n,):
            raise ValueError(f"detections: boxes {self.boxes.shape}, scores ({n},) and labels {self.labels.shape} "
                             "must agree")

    @classmethod
    def empty(cls, names: Sequence[str]) -> Detections:
        """No objects."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), tuple(names))

    def __len__(self) -> int:
        return len(self.scores)

    def label_names(self) -> list[str]:
        """Each detection's class name."""
        return [self.names[int(i)] for i in self.labels]

    def counts(self) -> dict[str, int]:
        """Detections per class name."""
        out: dict[str, int] = {}
        for name in self.label_names():
            out[name] = out.get(name, 0) + 1
        return out

    def keep(self, mask: np.ndarray) -> Detections:
        """The detections where ``mask`` is true."""
        return Detections(self.boxes[mask], self.scores[mask], self.labels[mask], self.names)


@runtime_checkable
class Detector(Protocol):
    """The interface: class ``names`` and ``detect(frames) -> [Detections]``, one per frame."""

    names: tuple[str, ...]

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Objects in each frame (BGR uint8)."""
        ...


class TorchvisionDetector:
    """A torchvision detection model (Faster R-CNN, RetinaNet, SSD, FCOS, ...) or anything
    with its calling convention — a list of ``3 × H × W`` float RGB tensors in 0-1 in, a list
    of ``{"boxes", "scores", "labels"}`` out — behind :class:`Detector`.

    Args:
        model: The model (put in eval mode here).
        names: Class names by label id (torchvision's COCO weights number from 1, with
            ``__background__`` at 0).
        conf: Score threshold.
        device: Where to run it.
        transform: Optional preprocessing applied to each RGB tensor.
    """

    def __init__(self, model: Any, names: Sequence[str], *, conf: float = 0.25, device: str = "cpu",
                 transform: Callable[[Any], Any] | None = None) -> None:
        import torch

        self.model = model.eval().to(device)
        self.names = tuple(names)
        self.conf = conf
        self.device = torch.device(device)
        self.transform = transform

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        import torch

        batch = []
        for f in frames:
            t = torch.from_numpy(np.ascontiguousarray(f[:, :, ::-1])).permute(2, 0, 1).float().div(255.0)
            batch.append((self.transform(t) if self.transform else t).to(self.device))
        with torch.inference_mode():
            outs = self.model(batch)
        result = []
        for o in outs:
            keep = o["scores"] >= self.conf
            result.append(Detections(o["boxes"][keep].cpu().numpy().astype(np.float32),
                                     o["scores"][keep].cpu().numpy().astype(np.float32),
                                     o["labels"][keep].cpu().numpy().astype(np.int64), self.names))
        return result
