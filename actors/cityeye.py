"""City Eye in the live twin: camera actors run the detection pipeline on the cameras that have
video, and post what the catalog's camera rules raise through the same report path as every
other source.

A *cameras file* (TOML) names the district cameras that have a source and how they are
analysed::

    detector = "yolov4-tiny"   # or "street" (the synthetic-trained CenterNet); per camera too
    device = "cpu"             # "cuda": fp16, frames resized on the GPU
    onnx = false               # onnxruntime on the CPU instead of torch
    fps = 2.0                  # frames analysed per second and camera
    batch = 8                  # frames per detector call (across cameras)
    retry_s = 5.0              # first wait before a dead stream is reopened (doubles up to retry_max_s)
    retry_max_s = 60.0

    [ray]
    actors = 1                 # camera actors; the cameras are dealt among them by area
    num_cpus = 1.0             # what each asks of Ray: on a cluster they land where it is
    num_gpus = 0.0             # e.g. 0.25: four camera actors share a GPU

    [cameras.K0001]
    source = "rtsp://user:secret@10.1.2.3:554/stream1"   # a stream OpenCV's FFmpeg reads
    [cameras.K0002]
    source = "recordings/k0002.mp4"                       # a file, played in real time
    loop = true
    [cameras.K0003]
    source = "synthetic"       # rendered from the demand model (see below)
    detector = "street"

**Streams.** Each video source is read by a thread of its own (:class:`VideoStream`): frames
are decoded at the analysis rate, files are played at their own pace, and only the newest
frame waits for the detector (a slow detector drops frames and counts them; it never falls
behind). One loop per camera actor (:class:`CityEye`) gathers the waiting frames of all its
cameras, detects them in batches per detector, and runs each camera's
:class:`~detection.pipeline.Pipeline` (tracks → ground → :class:`twin.vision.RuleEngine`).
A ``start`` alarm is posted as a report with its evidence
(:func:`detection.pipeline.post_alarm`); its ``end`` is stored with the event as a JSON
record (when the objects were last seen). Posts that fail (the brain restarting) are kept and
retried; the brain turns a repeated report into the first event.

**A dead stream** — one that cannot be opened, stops delivering frames or ends — is marked
``offline`` with the reason and reopened after ``retry_s``, doubling to ``retry_max_s``;
nothing crashes. Once it has been down for the threshold of the catalog's sensor rule for
cameras (kind ``camera``, rule ``offline``; xiaohe: PU04, 300 s) it is reported as that
scenario's event, once per outage, at the camera.

**Synthetic cameras** (``source = "synthetic"``) show what the simulated district puts before
them: the demand model's incidents that such a camera covers (the synthetic feed's own draws:
same model, seed and rate) are staged in its view — a car in its no-parking zone, goods before
a shop, a crowd at a door, for the incident's duration — with traffic and people passing, and
rendered (:class:`detection.synthetic.SyntheticCamera`). The feed leaves those incidents to
the camera, so they reach the brain only if the pipeline sees them.
"""

from __future__ import annotations

import json
import math
import threading
import time
import tomllib
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actors.client import BrainClient
from twin.assets import Camera
from twin.catalog import ScenarioSpec, Source
from twin.district import District
from twin.errors import TwinError, ValidationError

#: Frame size of synthetic cameras (what the street detector was trained near).
SYNTHETIC_SIZE = (576, 384)
SYNTHETIC = "synthetic"


# --- configuration --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamSpec:
    """One camera's source."""

    camera_id: str
    source: str
    loop: bool = False
    detector: str = "yolov4-tiny"

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def shown(self) -> str:
        """The source with any password masked (for status and logs)."""
        from detection.pipeline import shown

        return shown(self.source)


@dataclass(frozen=True)
class EyeConfig:
    """A cameras file, checked (see the module docstring)."""

    streams: tuple[StreamSpec, ...]
    device: str = "cpu"
    onnx: bool = False
    fps: float = 2.0
    batch: int = 8
    retry_s: float = 5.0
    retry_max_s: float = 60.0
    actors: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    path: str = ""

    def camera_ids(self) -> list[str]:
        return [s.camera_id for s in self.streams]

    def synthetic_ids(self) -> frozenset[str]:
        return frozenset(s.camera_id for s in self.streams if s.synthetic)


_TOP = {"detector", "device", "onnx", "fps", "batch", "retry_s", "retry_max_s", "ray", "cameras"}
_RAY = {"actors", "num_cpus", "num_gpus"}
_CAMERA = {"source", "loop", "detector"}


def read_config(path: str | Path, district: District) -> EyeConfig:
    """Read and check a cameras file against ``district``.

    Raises:
        ValidationError: the file cannot be read or parsed (field ``file``), or a field is
            wrong (its dotted key); the error's source is the file.
    """
    from detection.weights import DETECTORS

    p = Path(path)
    where = str(p)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ValidationError("file", f"cannot be read: {exc.strerror or exc}", where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("file", f"is not valid TOML: {exc}", where) from None

    def bad(key: str, reason: str) -> ValidationError:
        return ValidationError(key, reason, where)

    def unknown(table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        extra = sorted(set(table) - allowed)
        if extra:
            raise bad(prefix + extra[0], f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def number(table: Mapping[str, Any], key: str, default: float, prefix: str = "", *, lo: float = 0.0,
               strict: bool = True) -> float:
        v = table.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
                v <= lo if strict else v < lo):
            raise bad(prefix + key, f"must be a number {'>' if strict else '>='} {lo:g}, got {v!r}")
        return float(v)

    def flag(table: Mapping[str, Any], key: str, default: bool, prefix: str = "") -> bool:
        v = table.get(key, default)
        if not isinstance(v, bool):
            raise bad(prefix + key, f"must be true or false, got {v!r}")
        return v

    def detector(table: Mapping[str, Any], default: str, prefix: str = "") -> str:
        v = table.get("detector", default)
        if v not in DETECTORS:
            raise bad(prefix + "detector", f"must be one of {', '.join(DETECTORS)}, got {v!r}")
        return str(v)

    unknown(data, _TOP, "")
    default_detector = detector(data, "yolov4-tiny")
    device = data.get("device", "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        raise bad("device", f"must be 'cpu', 'cuda' or 'cuda:<n>', got {device!r}")
    onnx = flag(data, "onnx", False)
    if onnx and device != "cpu":
        raise bad("onnx", "onnxruntime runs on the CPU here; set device = 'cpu' or onnx = false")
    fps = number(data, "fps", 2.0)
    batch = data.get("batch", 8)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise bad("batch", f"must be a whole number >= 1, got {batch!r}")
    retry_s = number(data, "retry_s", 5.0)
    retry_max_s = number(data, "retry_max_s", max(60.0, retry_s))
    if retry_max_s < retry_s:
        raise bad("retry_max_s", f"must be >= retry_s ({retry_s:g}), got {retry_max_s:g}")
    ray_t = data.get("ray", {})
    if not isinstance(ray_t, dict):
        raise bad("ray", "must be a table")
    unknown(ray_t, _RAY, "ray.")
    n_actors = ray_t.get("actors", 1)
    if isinstance(n_actors, bool) or not isinstance(n_actors, int) or n_actors < 1:
        raise bad("ray.actors", f"must be a whole number >= 1, got {n_actors!r}")
    num_cpus = number(ray_t, "num_cpus", 1.0, "ray.", strict=False)
    num_gpus = number(ray_t, "num_gpus", 1.0 if device != "cpu" else 0.0, "ray.", strict=False)
    if device != "cpu" and num_gpus <= 0:
        raise bad("ray.num_gpus", f"device '{device}' needs a GPU share > 0 for each camera actor")
    cams = data.get("cameras")
    if not isinstance(cams, dict) or not cams:
        raise bad("cameras", "give at least one [cameras.<camera id>] table with a source")
    known = {c.id for c in district.cameras}
    streams = []
    for cid, table in cams.items():
        prefix = f"cameras.{cid}."
        if cid not in known:
            raise bad(f"cameras.{cid}", f"no camera '{cid}' in district '{district.name}' "
                                        f"({len(known)} cameras, e.g. {min(known) if known else '-'})")
        if not isinstance(table, dict):
            raise bad(f"cameras.{cid}", "must be a table with a source")
        unknown(table, _CAMERA, prefix)
        src = table.get("source")
        if not isinstance(src, str) or not src.strip():
            raise bad(prefix + "source", "give a video file, a folder of images, a stream URL or 'synthetic'")
        if src != SYNTHETIC and "://" not in src:
            resolved = Path(src) if Path(src).is_absolute() else p.parent / src
            src = str(resolved)  # (a file that is not there yet is retried like a dead stream)
        streams.append(StreamSpec(cid, src, flag(table, "loop", False, prefix),
                                  detector(table, default_detector, prefix)))
    return EyeConfig(tuple(streams), device=device, onnx=onnx, fps=fps, batch=batch, retry_s=retry_s,
                     retry_max_s=retry_max_s, actors=n_actors, num_cpus=num_cpus, num_gpus=num_gpus, path=where)


def offline_rule(district: District) -> ScenarioSpec | None:
    """The catalog's scenario for a camera that is down (sensor kind ``camera``, rule
    ``offline``), if the catalog has one."""
    for spec in district.catalog:
        if spec.sensor is not None and spec.sensor.kind == "camera" and spec.sensor.rule == "offline":
            return spec
    return None


# --- streams -------------------------------------------------------------------------------------------
@dataclass
class StreamStatus:
    """What a camera's stream is doing (see :meth:`CityEye.status`)."""

    state: str = "connecting"  # connecting, online, offline, ended
    frames: int = 0
    dropped: int = 0
    last_frame_at: float | None = None
    down_since: float | None = None
    error: str = ""
    reconnects: int = 0
    outages: int = 0


class VideoStream:
    """A video file, folder of images or stream URL read in a thread of its own (see the module
    docstring). :meth:`take` hands over the newest frame, once.

    Args:
        spec: The camera's source.
        now: The twin's clock (frame times are twin times when read).
        fps: Analysis rate.
        retry_s: First wait before reopening; doubles up to ``retry_max_s``.
        timeout_s: How long opening or reading a stream URL may take before it counts as dead.
    """

    def __init__(self, spec: StreamSpec, now: Callable[[], float], *, fps: float, retry_s: float, retry_max_s: float,
                 timeout_s: float = 10.0) -> None:
        self.spec, self._now, self.fps = spec, now, fps
        self.retry_s, self.retry_max_s, self.timeout_s = retry_s, retry_max_s, timeout_s
        self.status = StreamStatus()
        self._lock = threading.Lock()
        self._latest: tuple[float, np.ndarray] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{spec.camera_id}", daemon=True)
        self._thread.start()

    def take(self, now: float) -> tuple[float, np.ndarray] | None:
        """The newest frame not yet taken, or ``None``."""
        with self._lock:
            out, self._latest = self._latest, None
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 2)

    def _down(self, reason: str) -> None:
        with self._lock:
            st = self.status
            if st.state != "offline":
                st.down_since = self._now()
                st.outages += 1
            st.state, st.error = "offline", reason

    def _run(self) -> None:
        from detection.pipeline import SourceError, frames_from

        wait = self.retry_s
        paced = "://" not in self.spec.source  # files and folders play at their own pace
        while not self._stop.is_set():
            got = False
            try:
                wall0 = time.monotonic()
                for t, frame in frames_from(self.spec.source, fps=self.fps, image_fps=self.fps,
                                            timeout_s=self.timeout_s):
                    if paced and self._stop.wait(max(0.0, wall0 + t - time.monotonic())):
                        return
                    if self._stop.is_set():
                        return
                    got = True
                    wait = self.retry_s
                    with self._lock:
                        st = self.status
                        if self._latest is not None:
                            st.dropped += 1
                        self._latest = (self._now(), frame)
                        st.frames += 1
                        st.last_frame_at = self._latest[0]
                        if st.state != "online":
                            st.state, st.error, st.down_since = "online", "", None
                if paced and self.spec.loop and got:
                    continue  # a file played in a loop: from the start again
                if paced and got:
                    with self._lock:
                        self.status.state, self.status.error = "ended", "the file ended"
                    return
                self._down("the stream stopped delivering frames" if got else "no frames")
            except SourceError as exc:
                self._down(str(exc))
            except Exception as exc:  # OpenCV/FFmpeg errors of every kind: the stream is down, not the actor
                self._down(f"{type(exc).__name__}: {exc}")
            if self._stop.wait(wait):
                return
            wait = min(self.retry_max_s, wait * 2)
            with self._lock:
                self.status.reconnects += 1


class SyntheticStream:
    """A synthetic camera (see the module docstring): the actors staged before it, rendered at
    most ``fps`` times a wall second (``wall_paced``: a live twin whose clock runs faster
    sees them further apart in twin time), else ``fps`` times a twin second (a twin stepped by
    hand); at most one frame per call of :meth:`take`."""

    def __init__(self, spec: StreamSpec, camera: Camera, *, fps: float, seed: int = 0,
                 size: tuple[int, int] = SYNTHETIC_SIZE, wall_paced: bool = True) -> None:
        from detection.synthetic import SyntheticCamera

        self.spec, self.camera, self.fps = spec, camera, fps
        self.view = SyntheticCamera(camera, width=size[0], height=size[1], seed=seed)
        self.status = StreamStatus(state="online")
        self.actors: list[Any] = []
        self.staged: list[tuple[str, float, float]] = []  # (scenario, start, end)
        self._rng = np.random.default_rng([seed, 7])
        self._passers_until: float | None = None
        self._next = -math.inf
        self._k = 0
        self.wall_paced = wall_paced

    def stage(self, spec: ScenarioSpec, near: tuple[float, float], start: float, end: float, seed: Sequence[int]
              ) -> bool:
        """Put ``spec``'s objects (its camera rule's) before the camera from ``start`` to ``end``;
        ``False`` when this camera cannot show them."""
        from detection.synthetic import drawable, spots, stage

        rule = spec.camera
        if rule is None:
            return False
        kind, where = drawable(rule.labels), spots(self.camera, rule.zone)
        if kind is None or where is None:
            return False
        self.actors += stage(self.camera, kind, max(1, rule.min_count), where, near, start, end,
                             np.random.default_rng(list(seed)))
        self.staged.append((spec.code, start, end))
        return True

    def take(self, now: float) -> tuple[float, np.ndarray] | None:
        from detection.synthetic import passers

        at = time.monotonic() if self.wall_paced else now
        if at < self._next - 1e-9:
            return None
        self._next = at + 1.0 / self.fps
        if self._passers_until is None or now >= self._passers_until - 60:
            start = now if self._passers_until is None else self._passers_until
            self._passers_until = start + 600.0
            self.actors += passers(self.camera, start, self._passers_until, self._rng)
        self.actors = [a for a in self.actors if a.end > now]
        frame = self.view.frame(self.actors, now, self._k)
        self._k += 1
        self.status.frames += 1
        self.status.last_frame_at = now
        return now, frame

    def stop(self) -> None:
        pass


# --- the camera actor ----------------------------------------------------------------------------------
@dataclass
class _Camera:
    spec: StreamSpec
    camera: Camera
    stream: Any
    pipe: Any = None
    alarms: int = 0
    events: list[str] = field(default_factory=list)
    offline_reported: float | None = None  # down_since of the outage reported


class CityEye:
    """The cameras of one camera actor (see the module docstring).

    Args:
        district: The district.
        config: The cameras file.
        client: The brain.
        now: The twin's clock.
        camera_ids: The cameras this actor serves (default: every camera of ``config``).
        feed: The synthetic feed's ``{"origin", "seed", "rate"}`` (its draws stage incidents
            before synthetic cameras), or ``None``.
        speed: The clock's speed-up (twin seconds per wall second).
        loop: Run the loop in a thread of its own (else call :meth:`step`).
    """

    def __init__(self, district: District, config: EyeConfig, client: BrainClient, now: Callable[[], float], *,
                 camera_ids: Iterable[str] | None = None, feed: Mapping[str, Any] | None = None,
                 speed: float = 1.0, loop: bool = True) -> None:
        self.district, self.config, self.client, self.now, self.speed = district, config, client, now, speed
        chosen = set(config.camera_ids() if camera_ids is None else camera_ids)
        self.offline_spec = offline_rule(district)
        self.cameras: dict[str, _Camera] = {}
        self._detectors: dict[str, Any] = {}
        self._outbox: list[tuple[str, Any]] = []  # posts that failed, retried
        self._event_of: dict[str, str] = {}  # alarm key → event id
        #: Frames analysed since start (all cameras).
        self.analysed = 0
        for spec in config.streams:
            if spec.camera_id not in chosen:
                continue
            cam = district.camera(spec.camera_id)
            stream: Any
            if spec.synthetic:
                stream = SyntheticStream(spec, cam, fps=config.fps, seed=zlib.crc32(cam.id.encode()), wall_paced=loop)
            else:
                stream = VideoStream(spec, now, fps=config.fps, retry_s=config.retry_s, retry_max_s=config.retry_max_s)
            self.cameras[spec.camera_id] = _Camera(spec, cam, stream)
            self._detector(spec.detector)  # loaded now: a missing model fails at start, not later
        self.stager = _Stager(district, {c: e.stream for c, e in self.cameras.items() if e.spec.synthetic}, feed) \
            if feed is not None and any(e.spec.synthetic for e in self.cameras.values()) else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if loop:
            self._thread = threading.Thread(target=self._loop, name="city-eye", daemon=True)
            self._thread.start()

    def _detector(self, name: str) -> Any:
        if name not in self._detectors:
            from detection.weights import load_detector

            self._detectors[name] = load_detector(name, device=self.config.device, onnx=self.config.onnx)
        return self._detectors[name]

    def _pipeline(self, entry: _Camera, frame: np.ndarray) -> Any:
        """The camera's pipeline, made at its first frame (the calibration at the frame's size)."""
        from detection.centernet import tracker as street_tracker
        from detection.pipeline import Pipeline
        from detection.track import ByteTracker

        h, w = frame.shape[:2]
        cal = self.district.calibration(entry.camera.id, width=w, height=h)
        tracker = street_tracker() if entry.spec.detector == "street" else ByteTracker()
        # Synthetic frames come 1/fps wall seconds apart: at a clock sped up that is more twin time
        # than the rules' default exit inertia, so it spans three frames at least.
        gap = self.speed / self.config.fps if entry.spec.synthetic else 1.0 / self.config.fps
        return Pipeline(entry.camera, cal, self._detector(entry.spec.detector), self.district.catalog,
                        batch=self.config.batch, tracker=tracker, grace_s=max(20.0, 3.0 * gap),
                        tz=self.district.roster.tz)

    # --- the loop --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.step(self.now())
            except Exception as exc:  # pragma: no cover - logged; the loop carries on
                print(f"city eye: {type(exc).__name__}: {exc}", flush=True)
                n = 0
            if not n:
                self._stop.wait(0.05)

    def step(self, now: float) -> int:
        """One round: stage due incidents, take the cameras' new frames, detect them in batches,
        run the pipelines, post alarms, report cameras down too long. Returns the frames done."""
        with self._lock:
            if self.stager is not None:
                self.stager.step(now)
            taken: dict[str, list[tuple[_Camera, float, np.ndarray]]] = {}
            for entry in self.cameras.values():
                got = entry.stream.take(now)
                if got is not None:
                    taken.setdefault(entry.spec.detector, []).append((entry, *got))
            n = 0
            for name, items in taken.items():
                det = self._detector(name)
                for k in range(0, len(items), self.config.batch):
                    chunk = items[k:k + self.config.batch]
                    found = det.detect([f for _, _, f in chunk])
                    for (entry, t, frame), d in zip(chunk, found):
                        if entry.pipe is None:
                            entry.pipe = self._pipeline(entry, frame)
                        res = entry.pipe.step(t, frame, d)
                        starts = [a for a in res.alarms if a.kind == "start"]
                        for alarm, ev in zip(starts, res.evidence):
                            entry.alarms += 1
                            self._outbox.append(("start", (entry, alarm, ev)))
                        for alarm in res.alarms:
                            if alarm.kind == "end":
                                self._outbox.append(("end", (entry, alarm)))
                        n += 1
            self._check_offline(now)
            self._flush()
            self.analysed += n
            return n

    def _check_offline(self, now: float) -> None:
        spec = self.offline_spec
        if spec is None or spec.sensor is None:
            return
        for entry in self.cameras.values():
            st = entry.stream.status
            if st.state != "offline" or st.down_since is None or entry.offline_reported == st.down_since:
                continue
            if now - st.down_since >= spec.sensor.threshold:
                entry.offline_reported = st.down_since
                self._outbox.append(("offline", (entry, st.down_since, st.error)))

    def _flush(self) -> None:
        """Post what is waiting, in order; what fails (the brain away) waits for the next round."""
        from actors.client import BrainUnavailable
        from detection.pipeline import post_alarm

        sync = self.client.sync
        keep: list[tuple[str, Any]] = []
        for kind, item in self._outbox:
            if keep:  # keep the order once something waits
                keep.append((kind, item))
                continue
            try:
                if kind == "start":
                    entry, alarm, ev = item
                    out = post_alarm(sync, alarm, ev, to_lonlat=self.district.projection.to_lonlat,
                                     calibration=entry.pipe.calibration)
                    eid = out["event"]["id"]
                    self._event_of[alarm.key] = eid
                    if eid not in entry.events:
                        entry.events.append(eid)
                elif kind == "end":
                    entry, alarm = item
                    eid = self._event_of.pop(alarm.key, None)
                    if eid is not None:
                        sync.put_evidence(eid, "application/json", json.dumps({
                            "camera": alarm.camera_id, "scenario": alarm.scenario, "alarm": alarm.key,
                            "started_at": alarm.started_at, "ended_at": alarm.ended_at, "seen_until": alarm.at,
                            "duration_s": round((alarm.ended_at or alarm.at) - alarm.started_at, 2)},
                            sort_keys=True).encode())
                else:
                    entry, down_since, error = item
                    self._report_offline(sync, entry, down_since, error)
            except BrainUnavailable:
                keep.append((kind, item))
            except TwinError as exc:  # refused (e.g. outside the district): said, not retried
                print(f"city eye: {kind} of {item[0].camera.id} refused: {exc}", flush=True)
        self._outbox = keep

    def _report_offline(self, sync: Any, entry: _Camera, down_since: float, error: str) -> None:
        spec = self.offline_spec
        assert spec is not None
        cam = entry.camera
        lon, lat = self.district.projection.to_lonlat(cam.x, cam.y)
        out = sync.create_event({
            "scenario": spec.code, "lon": round(float(lon), 7), "lat": round(float(lat), 7),
            "source": Source.SENSOR.value, "external_id": f"cityeye:{cam.id}:offline:{down_since:.0f}",
            "description": f"camera {cam.id} offline since {_hhmm(down_since, self.district)}: {error}"[:500]},
            actor=f"camera:{cam.id}")
        entry.events.append(out["event"]["id"])

    # --- views ----------------------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Each camera: source (password masked), state, frames analysed, frames dropped, last
        frame and outage times (twin POSIX seconds), the error, alarms raised and event ids."""
        rows = []
        for cid, e in sorted(self.cameras.items()):
            st = e.stream.status
            rows.append({"camera": cid, "source": e.spec.shown, "detector": e.spec.detector, "state": st.state,
                         "frames": st.frames, "dropped": st.dropped, "last_frame_at": st.last_frame_at,
                         "down_since": st.down_since, "error": st.error, "reconnects": st.reconnects,
                         "outages": st.outages, "alarms": e.alarms, "events": list(e.events[-20:]),
                         "staged": len(getattr(e.stream, "staged", ()))})
        return rows

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for e in self.cameras.values():
            e.stream.stop()


def _hhmm(t: float, district: District) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t, district.roster.tz).strftime("%H:%M:%S")


class _Stager:
    """The synthetic feed's draws, for the synthetic cameras of one camera actor: the incidents
    the feed leaves to a camera (:class:`actors.feed.FeedDraws`)
    are staged before it at their times."""

    def __init__(self, district: District, streams: Mapping[str, SyntheticStream], feed: Mapping[str, Any]) -> None:
        from actors.feed import FeedDraws

        self.district, self.streams = district, dict(streams)
        self.draws = FeedDraws(district, float(feed["origin"]), seed=int(feed.get("seed", 1)),
                               rate=float(feed.get("rate", 1.0)), cameras=frozenset(feed.get("cameras", streams)))
        self.started: float | None = None

    def step(self, now: float) -> None:
        if self.started is None:
            self.started = now
        for t, inc, k, camera_id in self.draws.due(now + 60.0):  # staged a little ahead: they start on time
            stream = self.streams.get(camera_id or "")
            if stream is None or t < self.started:
                continue
            spec = self.district.catalog[inc.scenario]
            stream.stage(spec, (inc.location.x, inc.location.y), t, t + inc.duration_s, (inc.id, k, 11))


# --- Ray ---------------------------------------------------------------------------------------------
class CityEyeActor:
    """A :class:`CityEye` in a Ray actor of its own (``city-eye-<k>``), asking Ray for the CPUs
    and GPU share of the cameras file: on a cluster it lands on a node that has them. It finds
    the brain actor by name and keeps the brain's clock."""

    def __init__(self, district: District | str, config: EyeConfig, camera_ids: Sequence[str],
                 feed: Mapping[str, Any] | None = None) -> None:
        from actors.host import _district_of, brain_and_clock, until_brain

        district = _district_of(district)
        client, clock = until_brain(brain_and_clock)  # (restarted with the brain, it may come first)
        self.eye = CityEye(district, config, client, clock.now, camera_ids=camera_ids, feed=feed, speed=clock.speed)

    def status(self) -> list[dict[str, Any]]:
        return self.eye.status()

    def ping(self) -> int:
        return 1


def camera_groups(district: District, config: EyeConfig) -> list[list[str]]:
    """The cameras of ``config`` dealt into ``config.actors`` groups by area (cameras of one
    area together; at most one group per camera)."""
    from actors.host import _entity_areas

    areas = _entity_areas("cameras", district)
    ids = sorted(config.camera_ids(), key=lambda c: (areas.get(c, ""), c))
    n = max(1, min(config.actors, len(ids)))
    per = math.ceil(len(ids) / n)
    return [ids[k:k + per] for k in range(0, len(ids), per)]


class Eyes:
    """The camera actors of a live twin: in Ray actors (:class:`CityEyeActor`, with the
    cameras file's resources) or one :class:`CityEye` in this process. ``scenario``: the
    district's scenario name or folder, from which each actor loads it (``None``: the
    district's name)."""

    def __init__(self, district: District, config: EyeConfig, *, client: BrainClient | None = None,
                 now: Callable[[], float] | None = None, speed: float = 1.0, feed: Mapping[str, Any] | None = None,
                 ray_actors: bool = False, scenario: str | None = None) -> None:
        self.config, self.ray_actors = config, ray_actors
        self.groups = camera_groups(district, config)
        if ray_actors:
            import ray

            have = ray.cluster_resources()  # type: ignore[no-untyped-call]
            for key, kind, asked in (("ray.num_gpus", "GPU", config.num_gpus), ("ray.num_cpus", "CPU", config.num_cpus)):
                if asked > float(have.get(kind, 0.0)):  # (else the actors would wait for them for ever)
                    raise ValidationError(key, f"asks {asked:g} {kind} per camera actor; the Ray cluster has "
                                               f"{float(have.get(kind, 0.0)):g}", config.path)
            actor = ray.remote(max_restarts=-1)(CityEyeActor)
            self.actors: list[Any] = [
                actor.options(name=f"city-eye-{k}", num_cpus=config.num_cpus, num_gpus=config.num_gpus)
                .remote(scenario or district.name, config, ids, feed) for k, ids in enumerate(self.groups)]
            self.local: CityEye | None = None
        else:
            if client is None or now is None:
                raise ValueError("in-process camera actors need the brain's client and clock")
            self.actors = []
            self.local = CityEye(district, config, client, now, feed=feed, speed=speed)

    def ready(self, timeout_s: float = 120.0) -> None:
        if self.ray_actors:
            import ray

            ray.get([a.ping.remote() for a in self.actors], timeout=timeout_s)

    async def status(self) -> list[dict[str, Any]]:
        """Every camera's stream (:meth:`CityEye.status`)."""
        if self.local is not None:
            return self.local.status()
        import asyncio

        parts = await asyncio.gather(*(a.status.remote() for a in self.actors))
        return sorted((r for p in parts for r in p), key=lambda r: r["camera"])

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()


def describe(config: EyeConfig) -> str:
    """One line for the server's start-up message."""
    from collections import Counter

    kinds = Counter("synthetic" if s.synthetic else "stream" if "://" in s.source else "file" for s in config.streams)
    return (f"{len(config.streams)} camera{'s' if len(config.streams) != 1 else ''} with video ("
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + f") at {config.fps:g} fps on "
            f"{config.device}{' (onnxruntime)' if config.onnx else ''}")


__all__ = ["CityEye", "CityEyeActor", "EyeConfig", "Eyes", "StreamSpec", "offline_rule", "read_config"]
