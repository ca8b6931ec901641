"""The synthetic street renderer (detection.render): the same seed gives the same scene,
labels are the visible extent of each object, hidden objects are left out, every class
occurs."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("cv2")

from detection.render import CLASSES, MIN_VISIBLE, Renderer, Thing, View


def test_a_seed_gives_the_same_scene_and_labels_are_inside_the_image() -> None:
    r = Renderer(320, 224)
    a, b = r.render(np.random.default_rng(11)), r.render(np.random.default_rng(11))
    assert np.array_equal(a.image, b.image) and [(x.cls, x.box) for x in a.labels] == [(x.cls, x.box) for x in b.labels]
    assert a.image.shape == (224, 320, 3) and a.image.dtype == np.uint8
    for s in (a, r.render(np.random.default_rng(12))):
        for lab in s.labels:
            x1, y1, x2, y2 = lab.box
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 224 and lab.visible >= MIN_VISIBLE


def test_every_class_occurs_in_a_few_hundred_scenes() -> None:
    r = Renderer(256, 160)
    seen = {CLASSES[lab.cls] for k in range(150) for lab in r.render(np.random.default_rng(k)).labels}
    assert seen == set(CLASSES)


def test_an_object_hidden_behind_a_bus_is_not_labelled() -> None:
    r = Renderer(320, 224)
    view = View(x=3.5, y=-5.0, mount_m=1.6, heading_deg=0.0, tilt_deg=2.0, fov_deg=60.0, width=320, height=224)
    bus = Thing("bus", 3.5, 8.0, 0.0, 11.0, 2.5, 3.1, (200, 40, 40))
    person = Thing("person", 3.5, 16.0, 0.0, 0.4, 0.5, 1.7, (30, 30, 200))  # straight behind it, eye height
    near = Thing("person", 6.5, 4.0, math.pi / 2, 0.4, 0.5, 1.7, (30, 30, 200))  # in plain view
    rng = np.random.default_rng(0)
    scene = r.render(rng, things=[bus, person, near], view=view)
    names = sorted(CLASSES[lab.cls] for lab in scene.labels)
    assert names == ["bus", "person"] and scene.occluded == 1
    (p,) = [lab for lab in scene.labels if CLASSES[lab.cls] == "person"]
    assert (p.x, p.y) == (6.5, 4.0)
