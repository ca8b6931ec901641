"""ByteTrack-style tracking (detection.track): identities kept through crossing paths, a
partial occlusion (the low-score round) and a short disappearance (lost, then found)."""

from __future__ import annotations

import numpy as np
import pytest

from detection.base import Detections
from detection.track import ByteTracker, iou_matrix

NAMES = ("person", "car")


def dets(*rows: tuple[float, float, float, float, float, int]) -> Detections:
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return Detections(a[:, :4].astype(np.float32), a[:, 4].astype(np.float32), a[:, 5].astype(np.int64), NAMES)


def test_two_walkers_keep_their_ids_and_a_lost_one_is_found_again() -> None:
    tr = ByteTracker()
    ids: dict[str, set[int]] = {"a": set(), "b": set()}
    for f in range(60):
        ax = 100 + 4 * f  # a walks right, b walks left, on rows 30 px apart
        bx = 400 - 4 * f
        rows = [(ax, 100, ax + 40, 200, 0.9, 0), (bx, 130, bx + 40, 230, 0.9, 0)]
        if 20 <= f < 26:
            rows = rows[1:]  # a behind a pillar for six frames
        elif 30 <= f < 34:
            rows[0] = (ax, 100, ax + 40, 200, 0.3, 0)  # a half-hidden: a low score
        out = tr.update(dets(*rows))
        for t in out:
            cx = (t.box[0] + t.box[2]) / 2
            who = "a" if abs(cx - (ax + 20)) < abs(cx - (bx + 20)) else "b"
            if not (20 <= f < 26 and who == "a"):
                ids[who].add(t.id)
        if 30 <= f < 34:
            assert len(out) == 2  # the low-score detection kept a's track
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"], ids


def test_classes_do_not_swap_and_stale_tracks_expire() -> None:
    tr = ByteTracker(buffer=5)
    (person,) = tr.update(dets((10, 10, 50, 110, 0.9, 0)))
    out = tr.update(dets((10, 10, 50, 110, 0.9, 1)))  # a car detected exactly there: another object
    assert [t.id for t in out] != [person.id] and out[0].label == 1
    for _ in range(7):
        tr.update(dets())
    assert tr.tracks == []
    assert tr.update(dets((0, 0, 10, 10, 0.55, 0))) == []  # confident, but below the new-track score
    with pytest.raises(ValueError, match="thresholds"):
        ByteTracker(low=0.6, high=0.5)


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 5, 5]], float)
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], float)
    assert np.allclose(iou_matrix(a, b), [[1.0, 25 / 175], [0.25, 0.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)
