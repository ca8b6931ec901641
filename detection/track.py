"""Multi-object tracking in the manner of ByteTrack (Zhang et al., ECCV 2022).

Each track carries a constant-velocity Kalman filter on its box (centre, aspect ratio,
height, and their velocities, as in SORT/ByteTrack). Every frame, in two rounds:

1. the confident detections (score ≥ ``high``) are matched to the predicted boxes of all
   live and recently lost tracks by IoU, with the Hungarian algorithm;
2. the remaining *low-score* detections (``low`` ≤ score < ``high``) — often the same
   objects, partly occluded — are matched to the tracks still unmatched, at a stricter IoU.

Unmatched confident detections (score ≥ ``new``) start tracks; a track unmatched for
``buffer`` frames is dropped, one unmatched for less is *lost* and can be found again.
Detections only match tracks of their own class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from detection.base import Detections

_CHI = 1.0 / 20  # ByteTrack's position and velocity noise weights
_VEL = 1.0 / 160


class _Kalman:
    """Constant velocity on ``(cx, cy, a, h)``: a = width / height."""

    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    H = np.eye(4, 8)

    def __init__(self, z: np.ndarray) -> None:
        self.x = np.r_[z, np.zeros(4)]
        h = z[3]
        std = [2 * _CHI * h, 2 * _CHI * h, 1e-2, 2 * _CHI * h, 10 * _VEL * h, 10 * _VEL * h, 1e-5, 10 * _VEL * h]
        self.p = np.diag(np.square(std))

    def predict(self) -> None:
        h = self.x[3]
        q = np.diag(np.square([_CHI * h, _CHI * h, 1e-2, _CHI * h, _VEL * h, _VEL * h, 1e-5, _VEL * h]))
        self.x = self.F @ self.x
        self.p = self.F @ self.p @ self.F.T + q

    def update(self, z: np.ndarray) -> None:
        h = self.x[3]
        r = np.diag(np.square([_CHI * h, _CHI * h, 1e-1, _CHI * h]))
        s = self.H @ self.p @ self.H.T + r
        k = np.linalg.solve(s.T, (self.p @ self.H.T).T).T
        self.x = self.x + k @ (z - self.H @ self.x)
        self.p = (np.eye(8) - k @ self.H) @ self.p


def _to_z(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], max(box[3] - box[1], 1e-6)
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, w / h, h])


def _to_box(x: np.ndarray) -> np.ndarray:
    cx, cy, a, h = x[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return np.asarray(inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9))


@dataclass
class Track:
    """One followed object.

    Attributes:
        id: Its number, unique within the tracker.
        label: Class id.
        box: Its box this frame (the filter's estimate), ``x1, y1, x2, y2``.
        score: The score of its last detection.
        hits: Frames it was matched in.
        missed: Frames since it was last matched (0: matched this frame).
        first_frame: The frame it started in.
    """

    id: int
    label: int
    box: np.ndarray
    score: float
    hits: int = 1
    missed: int = 0
    first_frame: int = 0


class ByteTracker:
    """ByteTrack association over a stream of detections (see the module docstring).

    Args:
        high: Confident detections: matched first, may start tracks.
        low: Detections below this are ignored.
        new: A confident detection must reach this to start a track.
        match_iou: Least IoU for a first-round match.
        low_iou: Least IoU for a second-round (low-score) match.
        buffer: Frames a lost track is kept.
    """

    def __init__(self, *, high: float = 0.5, low: float = 0.1, new: float = 0.6, match_iou: float = 0.2,
                 low_iou: float = 0.5, buffer: int = 30) -> None:
        if not 0 <= low <= high <= 1 or buffer < 0:
            raise ValueError("thresholds: need 0 <= low <= high <= 1 and buffer >= 0")
        self.high, self.low, self.new = high, low, new
        self.match_iou, self.low_iou, self.buffer = match_iou, low_iou, buffer
        self._tracks: list[tuple[Track, _Kalman]] = []
        self._next = 1
        self.frame = 0

    def update(self, det: Detections) -> list[Track]:
        """Take one frame's detections; the tracks matched in it (with their current boxes)."""
        self.frame += 1
        for _, kf in self._tracks:
            kf.predict()
        keep = det.scores >= self.low
        boxes, scores, labels = det.boxes[keep], det.scores[keep], det.labels[keep]
        hi = np.flatnonzero(scores >= self.high)
        lo = np.flatnonzero(scores < self.high)
        matched: dict[int, int] = {}  # track index → detection index

        def match(dets: np.ndarray, min_iou: float, cand: list[int]) -> None:
            if len(dets) == 0 or not cand:
                return
            pred = np.array([_to_box(self._tracks[i][1].x) for i in cand])
            iou = iou_matrix(pred, boxes[dets])
            same = np.array([[self._tracks[i][0].label == labels[d] for d in dets] for i in cand])
            cost = np.where(same & (iou >= min_iou), 1.0 - iou, 1e6)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < 1e6:
                    matched[cand[r]] = int(dets[c])

        match(hi, self.match_iou, list(range(len(self._tracks))))  # every track, lost ones too
        # the low-score detections: only to tracks followed up to the last frame
        match(lo, self.low_iou, [i for i, (t, _) in enumerate(self._tracks) if i not in matched and t.missed == 0])
        used = set(matched.values())
        out = []
        for i, (track, kf) in enumerate(self._tracks):
            if i in matched:
                d = matched[i]
                kf.update(_to_z(boxes[d]))
                track.box, track.score, track.hits, track.missed = _to_box(kf.x), float(scores[d]), track.hits + 1, 0
                out.append(track)
            else:
                track.missed += 1
                track.box = _to_box(kf.x)
        for d in (int(k) for k in hi):
            if d not in used and scores[d] >= self.new:
                t = Track(self._next, int(labels[d]), boxes[d].astype(float), float(scores[d]), first_frame=self.frame)
                self._next += 1
                self._tracks.append((t, _Kalman(_to_z(boxes[d].astype(float)))))
                out.append(t)
        self._tracks = [(t, k) for t, k in self._tracks if t.missed <= self.buffer]
        return out

    @property
    def tracks(self) -> Sequence[Track]:
        """Every track kept (matched this frame or lost for at most ``buffer`` frames)."""
        return [t for t, _ in self._tracks]
