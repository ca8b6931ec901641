"""Camera calibration (twin.calibration): the homography through surveyed point pairs, the
synthetic pinhole camera, and zones carried between the image and the ground."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box

from twin.assets import Camera, Zone
from twin.calibration import Homography, pinhole, pinhole_project
from twin.errors import ValidationError

BIN = Path(sys.executable).parent / "streetbrain"
CAM = Camera("K9001", "police", 100.0, 200.0, 30.0, 70.0, 60.0, "R1", "G1",
             zones=(Zone("no_parking", box(105, 215, 115, 240)),))


def test_a_pinhole_camera_is_a_homography_of_the_ground_plane() -> None:
    h = pinhole(CAM)
    rng = np.random.default_rng(3)
    # ground points spread over the view, projected by the pinhole model, read back
    r = rng.uniform(0.3, 1.0, 200) * CAM.range_m
    a = np.radians(CAM.heading_deg + rng.uniform(-30, 30, 200))
    ground = np.column_stack([CAM.x + r * np.sin(a), CAM.y + r * np.cos(a)])
    image = pinhole_project(CAM, ground, width=1280, height=720, mount_m=6.0,
                            tilt_deg=math.degrees(math.atan2(6.0, 60.0) + math.atan2(360.0, 640.0 / math.tan(
                                math.radians(35.0)))))
    assert np.abs(h.to_image(ground) - image).max() < 1e-6
    assert np.abs(h.to_ground(image) - ground).max() < 1e-6
    # the far edge of the range is near the top of the picture, the view inside it
    inside = (image[:, 0] > -1) & (image[:, 0] < 1281) & (image[:, 1] > -1) & (image[:, 1] < 721)
    assert inside.mean() > 0.9
    far = h.to_image([[CAM.x + 60 * math.sin(math.radians(30)), CAM.y + 60 * math.cos(math.radians(30))]])[0]
    assert abs(far[0] - 640) < 1 and abs(far[1]) < 1
    # behind the camera: not in the picture; above the horizon: no ground
    assert np.isnan(h.to_image([[CAM.x - 10 * math.sin(math.radians(30)), CAM.y - 10 * math.cos(math.radians(30))]])).all()
    assert np.isnan(h.to_ground([[640, -2000]])).all()


def test_four_surveyed_points_fix_it_and_more_are_fitted_in_least_squares() -> None:
    truth = pinhole(CAM)
    ground = np.array([[108, 220], [112, 250], [95, 240], [120, 230], [100, 225], [118, 245]], float)
    image = truth.to_image(ground)
    four = Homography.from_points(image[:4], ground[:4], width=1280, height=720)
    assert four.error_px(image, ground) < 1e-6
    noisy = image + np.random.default_rng(1).normal(0, 1.0, image.shape)  # a pixel of survey error
    fit = Homography.from_points(noisy, ground, width=1280, height=720)
    assert fit.error_px(image, ground) < 2.0
    u, v = image[0]
    foot = fit.foot((u - 40, v - 80, u + 40, v))  # an object standing at the first surveyed point
    assert math.hypot(foot[0] - 108, foot[1] - 220) < 0.5


def test_a_ground_zone_is_drawn_in_the_image_and_back() -> None:
    h = pinhole(CAM)
    (zone,) = CAM.zones
    poly = h.image_polygon(zone.geometry)
    assert poly is not None and 0 < poly.area < 1280 * 720
    back = h.to_ground(np.asarray(poly.exterior.coords))
    assert zone.geometry.buffer(0.5).contains(box(*back.min(axis=0), *back.max(axis=0)).centroid)
    assert h.image_polygon(box(0, 0, 5, 5)) is None  # far behind the camera


def test_bad_point_pairs_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"calibration.points: a homography needs at least 4"):
        Homography.from_points([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]], width=10, height=10)
    with pytest.raises(ValidationError, match="fix no homography"):
        Homography.from_points([[0, 0], [1, 1], [2, 2], [3, 3]], [[0, 0], [1, 1], [2, 2], [3, 3]], width=10,
                               height=10)
    with pytest.raises(ValidationError, match="as many of each"):
        Homography.from_points([[0, 0]] * 4, [[0, 0]] * 5, width=10, height=10)


def test_a_scenarios_calibration_file_is_read_and_bad_ones_refused(tiny_copy: Path) -> None:
    import scenarios
    from scenarios.loader import write_calibrations

    d = scenarios.load(str(tiny_copy))
    cam = d.cameras[0]
    assert not d.calibrations and d.calibration(cam.id).width == 1280  # synthetic, on demand
    out = subprocess.run([str(BIN), "scenario", "calibrate", str(tiny_copy), "--out", str(tiny_copy / "cal.toml"),
                          "--width", "640", "--height", "480"], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and f"{len(d.cameras)} cameras calibrated" in out.stdout, out.stderr
    toml = tiny_copy / "scenario.toml"
    toml.write_text(toml.read_text().replace('catalog = "catalog.toml"', 'catalog = "catalog.toml"\ncalibration = "cal.toml"'))
    again = scenarios.load(str(tiny_copy))
    assert set(again.calibrations) == {c.id for c in d.cameras}
    h, ref = again.calibration(cam.id), pinhole(cam, width=640, height=480)
    probe = np.array([[cam.x + 20 * math.sin(math.radians(cam.heading_deg)),
                       cam.y + 20 * math.cos(math.radians(cam.heading_deg))]])
    assert h.width == 640 and np.abs(h.to_image(probe) - ref.to_image(probe)).max() < 1.0  # lon/lat to 7 digits
    text = (tiny_copy / "cal.toml").read_text()
    (tiny_copy / "cal.toml").write_text(text.replace(f"[cameras.{cam.id}]", "[cameras.K_NOPE]", 1))
    with pytest.raises(ValidationError, match="cameras.K_NOPE: no camera 'K_NOPE'"):
        scenarios.load(str(tiny_copy))
    (tiny_copy / "cal.toml").write_text(f"[cameras.{cam.id}]\nimage_size = [640, 480]\npoints = [[1, 2, 3, 4]]\n")
    with pytest.raises(ValidationError, match=rf"cameras.{cam.id}.points: a homography needs at least 4"):
        scenarios.load(str(tiny_copy))
    assert write_calibrations(again, tiny_copy / "again.toml") == len(d.cameras)


def test_a_variant_that_replaces_the_cameras_calibrates_them_afresh() -> None:
    import scenarios

    assert len(scenarios.load_cached("xiaohe").calibrations) == 320  # the scenario's file
    moved = scenarios.load("xiaohe", {"assets.cameras": 100})
    assert len(moved.cameras) == 100 and not moved.calibrations  # synthetic, on demand
    assert moved.calibration(moved.cameras[0].id).width == 1280
