"""The synthetic detector's parts (detection.centernet): targets decode back to their boxes,
VOC average precision on known cases, and the shipped weights' accuracy on held-out scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from detection.base import Detections  # noqa: E402
from detection.centernet import STRIDE, CenterNet, average_precision, decode, targets  # noqa: E402
from detection.render import CLASSES, Renderer  # noqa: E402


def test_targets_decode_back_to_the_labelled_boxes() -> None:
    scene = Renderer(384, 256).render(np.random.default_rng(5))
    heat, size, off, mask = targets(scene, len(CLASSES), 256 // STRIDE, 384 // STRIDE)
    logits = torch.from_numpy(np.where(heat >= 1.0, 10.0, -10.0)).float()
    det = decode(logits, torch.from_numpy(size), torch.from_numpy(off), CLASSES, conf=0.5, top_k=200)
    got = sorted((int(c), tuple(np.round(b, 1))) for c, b in zip(det.labels, det.boxes))
    want = sorted((lab.cls, tuple(np.round(lab.box, 1))) for lab in scene.labels)
    # two objects whose centres share a cell keep one box: all but those come back exactly
    assert len(got) >= len(want) - 1 and set(got) <= set(want) and mask.sum() == len(got)


def test_average_precision_on_known_cases() -> None:
    names = ("a", "b")
    truth = [[(0, (0.0, 0.0, 10.0, 10.0)), (0, (20.0, 20.0, 30.0, 30.0))], [(0, (0.0, 0.0, 10.0, 10.0))]]

    def d(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
        a = np.array(rows, dtype=np.float64).reshape(-1, 6)
        return Detections(a[:, :4].astype(np.float32), a[:, 4].astype(np.float32), a[:, 5].astype(np.int64), names)

    perfect = [d([(0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.8, 0)]), d([(0, 0, 10, 10, 0.7, 0)])]
    ap = average_precision(perfect, truth, 2)
    assert ap[0] == pytest.approx(1.0) and math.isnan(ap[1])
    # a confident false positive first, then the three true ones: precision 1/2, 2/3, 3/4 at recall 1/3, 2/3,
    # 1; interpolated (the best precision at this recall or more) it is 3/4 throughout
    with_fp = [d([(50, 50, 60, 60, 0.95, 0), (0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.8, 0)]),
               d([(0, 0, 10, 10, 0.7, 0)])]
    assert average_precision(with_fp, truth, 2)[0] == pytest.approx(0.75)
    # a duplicate of a found box is a false positive; a half-found set has recall 1/2 at best
    assert average_precision([d([(0, 0, 10, 10, 0.9, 0), (0, 0, 10, 10, 0.8, 0)]), d([])], truth, 2)[0] == \
        pytest.approx(1 / 3)


def test_the_network_is_small_and_sized_for_stride_4() -> None:
    net = CenterNet()
    assert sum(p.numel() for p in net.parameters()) * 2 < 2_000_000  # < 2 MB in fp16
    heat, size, off = net(torch.zeros(1, 3, 256, 384))
    assert heat.shape == (1, len(CLASSES), 64, 96) and size.shape == off.shape == (1, 2, 64, 96)


def test_the_shipped_detector_finds_the_synthetic_classes_on_held_out_scenes() -> None:
    """The committed weights (trained on seed 1) on 60 scenes of seed 2: well above chance on
    the classes that are large enough to see, and every class detected at least sometimes."""
    from detection.centernet import CenterNetDetector, evaluate
    from detection.weights import street_weights

    det = CenterNetDetector(street_weights())
    result = evaluate(det, seed=2, images=60)
    assert det.conf == 0.3  # restored after the evaluation
    assert result["map50"] > 0.2, result
    assert result["per_class"]["car"] > 0.4 and result["per_class"]["person"] > 0.4, result
    assert all(v > 0.0 for v in result["per_class"].values()), result


def test_rule_precision_recall_and_timing_on_synthetic_videos(tiny_folder: object) -> None:
    """`detection eval`'s event part: videos of district cameras with an alarm due (a car
    parked past the dwell) or not (a stop shorter than it); hits within 10 s of the due
    time. Checked on its arithmetic: the videos are what they say, and every count adds up."""
    import scenarios
    from detection.centernet import CenterNetDetector
    from detection.evaluate import RULES, cases, rule_metrics
    from detection.weights import street_weights

    district = scenarios.load(str(tiny_folder))
    made = cases(district, seed=4, per_rule=1, dwell_s=20.0)
    assert {c.scenario for c in made} <= set(RULES) and all(
        (c.stay > 20.0) == c.positive for c in made)
    out = rule_metrics(CenterNetDetector(street_weights()), district, seed=4, per_rule=1, dwell_s=20.0)
    assert out["rules"]
    for r in out["rules"].values():
        assert r["positives"] == r["negatives"] == 1 and r["hits"] <= r["positives"]
        assert r["false_alarms"] == r["alarms"] - r["hits"] >= 0
        assert r["recall"] == r["hits"] / r["positives"]
        lo, hi = r["recall_ci95"]
        assert 0 <= lo <= r["recall"] <= hi <= 1
        assert r["timing_error_s"] is None or 0 <= r["timing_error_s"] <= out["tolerance_s"]


def test_wilson_intervals_match_published_values() -> None:
    """Wilson 95% intervals (Newcombe 1998, table I): 81/263 → [0.2553, 0.3662]; 0/10 → [0, 0.2775]."""
    from detection.evaluate import wilson

    assert wilson(81, 263) == [0.255, 0.366]
    assert wilson(0, 10) == [0.0, 0.278]
    assert wilson(10, 10) == [0.722, 1.0]
