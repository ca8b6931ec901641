"""One camera's City Eye pipeline: frames → detections → tracks → ground sightings → the
catalog's camera rules → alarms with evidence.

* **Frames** come from :func:`frames_from`: a video file or a stream OpenCV's FFmpeg back
  end reads (``rtsp://``, ``http://``), or a folder of images; sampled at the analysis rate.
* **Detections** from any :class:`detection.base.Detector`, in batches.
* **Tracks** from :class:`detection.track.ByteTracker`.
* **Sightings**: each tracked object's foot (the bottom centre of its box) put on the
  ground by the camera's calibration (:class:`twin.calibration.Homography`), its class
  named as the catalog names it (:data:`LABELS`).
* **Rules**: :class:`twin.vision.RuleEngine`, the one rule engine, with the camera's ground
  zones.
* **Evidence**: for each alarm raised, the frame annotated (the objects' boxes, the rule's
  zone drawn in the image) as a JPEG, with its SHA-256 and the frame times.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detection.base import Detections, Detector
from detection.track import ByteTracker
from twin.assets import Camera
from twin.calibration import Homography
from twin.catalog import ScenarioSpec
from twin.urls import mask_password
from twin.vision import Alarm, RuleEngine, Sighting, with_dwell

#: Detector class names → the catalog's labels, where they differ (Darknet's COCO names).
LABELS = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "tvmonitor": "tv"}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class SourceError(ValueError):
    """A source that cannot be read: names it and why."""


def shown(source: str | Path) -> str:
    """A source as it may be shown (messages, status): a stream URL's password masked."""
    return mask_password(str(source))


def frames_from(source: str | Path, *, fps: float = 2.0, image_fps: float = 2.0, max_frames: int | None = None,
                timeout_s: float = 10.0) -> Iterator[tuple[float, np.ndarray]]:
    """``(seconds from the start, BGR frame)`` of a source, at most ``fps`` frames a second.

    Args:
        source: A video file, a stream URL (``rtsp://``, ``http(s)://``), or a folder of images
            (in name order, ``image_fps`` apart).
        fps: Analysis rate: frames closer together than ``1/fps`` are skipped.
        image_fps: The rate a folder of images was taken at.
        max_frames: Stop after this many analysed frames.
        timeout_s: How long opening a stream URL, or waiting for its next frame, may take.

    Raises:
        SourceError: the source does not exist or cannot be opened.
    """
    import cv2

    if fps <= 0:
        raise SourceError(f"fps: must be > 0, got {fps}")
    text = str(source)
    n = 0
    folder = Path(text)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"source: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        step = max(1, round(image_fps / fps))
        for k in range(0, len(files), step):
            img = cv2.imread(str(files[k]))
            if img is None:
                raise SourceError(f"source: {files[k]} is not an image OpenCV can read")
            yield k / image_fps, img
            n += 1
            if max_frames is not None and n >= max_frames:
                return
        return
    is_url = "://" in text
    if not is_url and not folder.is_file():
        raise SourceError(f"source: {text} does not exist")
    if is_url:
        ms = int(timeout_s * 1000)
        cap = cv2.VideoCapture(text, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    else:
        cap = cv2.VideoCapture(text)
    if not cap.isOpened():
        raise SourceError(f"source: {shown(text)} cannot be opened as video")
    try:
        rate = cap.get(cv2.CAP_PROP_FPS) or 0.0
        k, nxt = 0, 0.0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            t = k / rate if rate > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            k += 1
            if t + 1e-9 < nxt:
                continue
            nxt = t + 1.0 / fps
            yield t, frame
            n += 1
            if max_frames is not None and n >= max_frames:
                return
    finally:
        cap.release()


@dataclass
class Evidence:
    """An annotated frame kept for an alarm."""

    jpeg: bytes = field(repr=False)
    sha256: str
    frame_time: float
    started_at: float
    path: str | None = None


@dataclass
class FrameResult:
    """What one analysed frame gave."""

    t: float
    detections: Detections
    tracks: list[dict[str, Any]]
    alarms: list[Alarm]
    evidence: list[Evidence]


class Pipeline:
    """One camera's pipeline (see the module docstring).

    Args:
        camera: The camera: its id and ground zones.
        calibration: Its image ↔ ground homography.
        detector: Any :class:`detection.base.Detector`.
        specs: The catalog's scenarios (their camera rules are used).
        batch: Frames per detector call.
        evidence_dir: Where to write the evidence JPEGs (kept in memory only if ``None``).
        origin: Added to frame times: the alarms' clock (POSIX seconds for a live camera).
        tz: With frame times on a clock (POSIX seconds), the zone the evidence's caption writes
            them in (e.g. the district's); else they are written as seconds into the video.
        rules: Keyword arguments of :class:`twin.vision.RuleEngine` (``grace_s``, ...).
    """

    def __init__(self, camera: Camera, calibration: Homography, detector: Detector, specs: Iterable[ScenarioSpec], *,
                 batch: int = 8, evidence_dir: str | Path | None = None, origin: float = 0.0,
                 tracker: ByteTracker | None = None, tz: Any = None, **rules: Any) -> None:
        if batch < 1:
            raise ValueError(f"batch: must be >= 1, got {batch}")
        self.camera, self.calibration, self.detector = camera, calibration, detector
        self.engine = RuleEngine(camera, specs, **rules)
        self.tracker = tracker or ByteTracker()
        self.batch = batch
        self.evidence_dir = Path(evidence_dir) if evidence_dir else None
        self.origin, self.tz = origin, tz
        self._zone_px = {z.kind: calibration.image_polygon(z.geometry) for z in camera.zones}
        self._last_t = 0.0

    def run(self, frames: Iterable[tuple[float, np.ndarray]]) -> Iterator[FrameResult]:
        """Process frames in batches; one result per frame, in order."""
        buf: list[tuple[float, np.ndarray]] = []
        for item in frames:
            buf.append(item)
            if len(buf) >= self.batch:
                yield from self._batch(buf)
                buf = []
        if buf:
            yield from self._batch(buf)

    def finish(self) -> list[Alarm]:
        """End the alarms still open (the end of a video)."""
        return self.engine.flush(self.origin + self._last_t)

    def _batch(self, buf: Sequence[tuple[float, np.ndarray]]) -> Iterator[FrameResult]:
        found = self.detector.detect([f for _, f in buf])
        for (t, frame), det in zip(buf, found):
            yield self.step(t, frame, det)

    def step(self, t: float, frame: np.ndarray, det: Detections) -> FrameResult:
        """One frame with its detections: track, place on the ground, apply the rules."""
        self._last_t = t
        tracks = self.tracker.update(det)
        sightings: list[Sighting] = []
        rows: list[dict[str, Any]] = []
        for tr in tracks:
            name = det.names[tr.label]
            label = LABELS.get(name, name)
            box = tuple(float(v) for v in tr.box)
            x, y = self.calibration.foot(box)
            rows.append({"id": tr.id, "label": label, "score": round(tr.score, 3),
                         "box": [round(v, 1) for v in box], "ground": None if math.isnan(x) else [round(x, 2),
                                                                                                  round(y, 2)]})
            if not math.isnan(x):
                sightings.append(Sighting(label, x, y, tr.score, box, tr.id))  # type: ignore[arg-type]
        alarms = self.engine.observe(self.origin + t, sightings)
        evidence = [self.evidence(frame, a, rows, t) for a in alarms if a.kind == "start"]
        return FrameResult(t, det, rows, alarms, evidence)

    def _when(self, t: float) -> str:
        """A time for the caption: clock time in :attr:`tz`, else seconds into the video."""
        if self.tz is None:
            return f"{t - self.origin:.1f}s"
        from datetime import datetime

        return datetime.fromtimestamp(t, self.tz).strftime("%H:%M:%S")

    def evidence(self, frame: np.ndarray, alarm: Alarm, tracks: Sequence[dict[str, Any]], t: float) -> Evidence:
        """The frame annotated for an alarm: its objects' boxes (thick) among the others
        (thin), the rule's zone outlined, the scenario and times written on it; as JPEG."""
        import cv2

        img = frame.copy()
        zone = self._zone_px.get(next((s.camera.zone for s in self.engine.rules if s.code == alarm.scenario
                                       and s.camera is not None), ""))
        if zone is not None:
            pts = np.asarray(zone.exterior.coords, dtype=np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [pts], True, (0, 200, 255), 2)
        for tr in tracks:
            x1, y1, x2, y2 = (int(round(v)) for v in tr["box"])
            mine = tr["label"] in alarm.labels
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255) if mine else (200, 200, 200), 3 if mine else 1)
            if mine:
                cv2.putText(img, f"{tr['label']} #{tr['id']}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (0, 0, 255), 1, cv2.LINE_AA)
        caption = (f"{self.camera.id} {alarm.scenario} from {self._when(alarm.started_at)} at {self._when(alarm.at)} "
                   f"conf {alarm.confidence:.2f}")
        cv2.putText(img, caption, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:  # pragma: no cover - OpenCV encodes any BGR image
            raise RuntimeError("evidence: JPEG encoding failed")
        data = enc.tobytes()
        ev = Evidence(data, hashlib.sha256(data).hexdigest(), self.origin + t, alarm.started_at)
        if self.evidence_dir is not None:
            self.evidence_dir.mkdir(parents=True, exist_ok=True)
            path = self.evidence_dir / f"{self.camera.id}_{alarm.scenario}_{t:.1f}s_{ev.sha256[:12]}.jpg"
            path.write_bytes(data)
            ev.path = str(path)
        return ev


def camera_config(path: str | Path, *, size: tuple[int, int] | None = None
                  ) -> tuple[Camera, Homography, list[ScenarioSpec]]:
    """A camera described for the pipeline by a TOML file.

    Either a camera of a scenario (its ground zones and calibration)::

        scenario = "xiaohe"
        camera = "K0001"

    or a camera of its own: its calibration (four or more ``[u, v, x, y]``: pixels, and
    metres on any local ground plane) and its zones drawn in the image::

        scenario = "xiaohe"            # whose catalog rules apply
        camera = "PLAZA"
        image_size = [768, 576]
        points = [[0, 576, 0, 0], [768, 576, 12, 0], [600, 200, 12, 40], [150, 200, 0, 40]]
        [[zones]]
        kind = "entrance"
        image = [[100, 300], [400, 300], [400, 576], [100, 576]]

    Either may set its own dwell times: ``[dwell_s]`` ``TR01 = 120``.

    Raises:
        SourceError: naming the file and the field.
    """
    import tomllib

    from shapely.geometry import Polygon

    from scenarios.loader import load_cached
    from twin.assets import Zone
    from twin.catalog import ZONE_KINDS

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"{p}: {exc}") from None
    district = load_cached(str(data.get("scenario", "xiaohe")))
    cid = data.get("camera")
    if not isinstance(cid, str) or not cid:
        raise SourceError(f"{p}: camera: give the camera's id")
    if "points" not in data:
        try:
            cam = district.camera(cid)
        except LookupError:
            raise SourceError(f"{p}: camera: no camera '{cid}' in {district.name}; give points and zones for a "
                              "camera of your own") from None
        w, h = size or (1280, 720)
        return cam, district.calibration(cid, width=w, height=h), _with_dwell(list(district.catalog),
                                                                              data.get("dwell_s", {}), p)
    size_ = data.get("image_size")
    if not (isinstance(size_, list) and len(size_) == 2 and all(isinstance(v, int) and v > 0 for v in size_)):
        raise SourceError(f"{p}: image_size: give [width, height] in pixels")
    pts = data["points"]
    if not (isinstance(pts, list) and all(isinstance(r, list) and len(r) == 4 for r in pts)):
        raise SourceError(f"{p}: points: give [[u, v, x, y], ...]")
    from twin.errors import ValidationError

    try:
        cal = Homography.from_points([r[:2] for r in pts], [r[2:] for r in pts], width=size_[0], height=size_[1],
                                     what="points")
    except ValidationError as exc:
        raise SourceError(f"{p}: {exc}") from None
    zones = []
    for k, z in enumerate(data.get("zones", [])):
        kind, image = z.get("kind"), z.get("image")
        if kind not in ZONE_KINDS:
            raise SourceError(f"{p}: zones[{k}].kind: one of {', '.join(sorted(ZONE_KINDS))}")
        if not (isinstance(image, list) and len(image) >= 3):
            raise SourceError(f"{p}: zones[{k}].image: give at least three [u, v] corners")
        ground = cal.to_ground(np.asarray(image, dtype=float))
        if np.isnan(ground).any():
            raise SourceError(f"{p}: zones[{k}].image: a corner lies above the horizon")
        zones.append(Zone(kind, Polygon(ground)))
    cam = Camera(cid, "private", 0.0, 0.0, 0.0, 360.0, 1e6, "", "", zones=tuple(zones))
    return cam, cal, _with_dwell(list(district.catalog), data.get("dwell_s", {}), p)


def _with_dwell(specs: list[ScenarioSpec], dwell: Any, p: Path) -> list[ScenarioSpec]:
    """The catalog with this camera's own dwell times (``[dwell_s] TR01 = 120``), checked."""
    if not isinstance(dwell, dict):
        raise SourceError(f"{p}: dwell_s: a table of scenario code = seconds")
    codes = {s.code for s in specs if s.camera is not None}
    for code, v in dwell.items():
        if code not in codes:
            raise SourceError(f"{p}: dwell_s.{code}: not a scenario with a camera rule")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise SourceError(f"{p}: dwell_s.{code}: seconds >= 0")
    return with_dwell(specs, dwell)


def alarm_report(alarm: Alarm, evidence: Evidence, *, to_lonlat: Any, calibration: Homography | None = None
                 ) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The report of a ``start`` alarm for the brain (``Brain.create_event``'s body: scenario,
    place, source ``camera``, ``external_id`` ``cityeye:<camera>:<scenario>:<n>``, description,
    evidence ids) and the evidence to store under those ids: the annotated JPEG, and a JSON
    document of the detection (camera, scenario, category, image region, ground region as
    GeoJSON, when the objects were first seen and when the alarm was raised, confidence,
    count, labels, the frame's time and the JPEG's id).

    Args:
        alarm: The alarm.
        evidence: Its annotated frame (:meth:`Pipeline.evidence`).
        to_lonlat: The district's ``projection.to_lonlat``.
        calibration: To write the ground region's image outline too (optional).
    """
    import json

    lon, lat = (float(v) for v in to_lonlat(alarm.x, alarm.y))
    xs, ys = alarm.ground.exterior.coords.xy if hasattr(alarm.ground, "exterior") else ([alarm.x], [alarm.y])
    glon, glat = to_lonlat(np.asarray(xs), np.asarray(ys))
    jpeg_id = f"sha256:{evidence.sha256}"
    doc: dict[str, Any] = {"camera": alarm.camera_id, "scenario": alarm.scenario, "category": alarm.category,
           "image_region": None if alarm.box is None else [round(v, 1) for v in alarm.box],
           "ground_region": {"type": "Polygon", "coordinates": [[[round(float(a), 7), round(float(b), 7)]
                                                                 for a, b in zip(glon, glat)]]},
           "started_at": alarm.started_at, "raised_at": alarm.at, "confidence": round(alarm.confidence, 4),
           "count": alarm.count, "labels": list(alarm.labels), "frame_time": evidence.frame_time, "jpeg": jpeg_id}
    if calibration is not None and hasattr(alarm.ground, "exterior"):
        outline = calibration.image_polygon(alarm.ground)
        doc["ground_region_in_image"] = None if outline is None else [
            [round(float(u), 1), round(float(v), 1)] for u, v in outline.exterior.coords]
    blob = json.dumps(doc, sort_keys=True).encode()
    doc_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    what = f"{alarm.count} x {'/'.join(alarm.labels)}" if alarm.count > 1 else "/".join(alarm.labels)
    body = {"scenario": alarm.scenario, "lon": round(lon, 7), "lat": round(lat, 7), "source": "camera",
            "external_id": f"cityeye:{alarm.key}",
            "description": (f"{alarm.camera_id} saw {what} for {alarm.at - alarm.started_at:.0f} s "
                            f"(confidence {alarm.confidence:.2f})"),
            "evidence": [jpeg_id, doc_id]}
    return body, [("image/jpeg", evidence.jpeg), ("application/json", blob)]


def post_alarm(brain: Any, alarm: Alarm, evidence: Evidence, *, to_lonlat: Any, actor: str | None = None,
               calibration: Homography | None = None) -> dict[str, Any]:
    """Report a ``start`` alarm to the brain and store its evidence under the event: what
    ``create_event`` answered. A second report of the same alarm (its ``external_id``) is the
    first event again."""
    body, blobs = alarm_report(alarm, evidence, to_lonlat=to_lonlat, calibration=calibration)
    out: dict[str, Any] = brain.create_event(body, actor=actor or f"camera:{alarm.camera_id}")
    if not out.get("duplicate_of_external_id"):
        eid = out["event"]["id"]
        for ctype, data in blobs:
            brain.put_evidence(eid, ctype, data)
    return out
