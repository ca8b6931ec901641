"""Frigate over MQTT against a real broker (Debian's mosquitto, started here on 127.0.0.1 at a
free port, persistence on): messages become reports; a broker restart mid-stream and a twin
restart (``streetbrain serve`` stopped, messages published meanwhile, started again) lose
nothing and report nothing twice; refused messages are acknowledged, a brain that is away is
waited for; every listening socket stays on loopback."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("paho.mqtt.client")

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient

from actors.brain import Brain
from actors.cameras import CameraShard
from actors.client import BrainUnavailable, LocalClient
from actors.eventlog import open_log
from actors.live import Clock
from api.app import create_app
from api.mqtt import FrigateSubscriber, attach, mqtt_settings
from twin.district import District
from twin.errors import ValidationError

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
if MOSQUITTO is None:
    pytest.skip("mosquitto not installed (make mosquitto)", allow_module_level=True)

T0 = 1_772_416_800.0  # 2026-03-02 10:00 Asia/Shanghai


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Broker:
    """Mosquitto on 127.0.0.1 at a free port, persisting to a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        conf = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                f"persistence_location {folder}/", "autosave_interval 1", "max_queued_messages 0",
                f"log_dest file {folder}/mosquitto.log"]
        if os.geteuid() == 0:
            conf.append("user root")  # (else it drops to 'mosquitto', who cannot write the folder)
        (folder / "mosquitto.conf").write_text("\n".join(conf) + "\n", encoding="utf-8")
        self.start()

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_until(up, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # (saves its database on the way out)
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder)
    yield b
    b.stop()


class Publisher:
    """Frigate's side: publishes at QoS 1 and waits for the broker's acknowledgement."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"frigate-{time.monotonic_ns()}")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(self, message: dict[str, Any] | bytes, topic: str = "frigate/events") -> None:
        payload = message if isinstance(message, bytes) else json.dumps(message)
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def parked(n: int, *, camera: str | None = None, kind: str = "update") -> dict[str, Any]:
    """A Frigate 0.14 message of car ``n`` parked past the 300 s rule (one track per camera K0001...)."""
    after = {"id": f"{T0 + n:.6f}-car{n:04d}", "camera": camera or f"K{(n % 320) + 1:04d}", "label": "car",
             "sub_label": None, "score": 0.9, "top_score": 0.8, "false_positive": False, "start_time": T0,
             "end_time": None, "frame_time": T0 + 400, "current_zones": ["no_parking"],
             "entered_zones": ["no_parking"], "stationary": True, "active": False, "box": [1, 2, 3, 4]}
    return {"type": kind, "before": copy.deepcopy(after), "after": after}


def external_ids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["external_id"] for e in events if e.get("external_id"))


# --- in-process: messages -> reports ------------------------------------------------------------------
@pytest.fixture
def twin(xiaohe: District, tmp_path: Path) -> Iterator[Brain]:
    origin = datetime(2026, 3, 2, 10, 0, tzinfo=xiaohe.roster.tz).timestamp()
    brain = Brain(xiaohe, open_log(tmp_path / "events.db"), Clock(speed=1.0, origin=origin))
    yield brain
    brain.log.close()


def app_of(brain: Brain, xiaohe: District, broker: Broker, *, client_id: str = "streetbrain-test") -> Any:
    app = create_app(LocalClient(brain), cameras=CameraShard(xiaohe), district=xiaohe, tick_s=None)
    attach(app, mqtt_settings(broker.url, client_id=client_id, max_inflight=64))
    return app


def test_messages_become_reports_and_bad_ones_are_acknowledged(twin: Brain, xiaohe: District,
                                                                broker: Broker) -> None:
    app = app_of(twin, xiaohe, broker)
    with TestClient(app):
        sub: FrigateSubscriber = app.state.mqtt
        wait_until(lambda: sub.connected, 15, "the subscriber to connect")
        pub = Publisher(broker)
        for n in range(40):
            pub.publish(parked(n))
        pub.publish(parked(1))  # the same object again: the same event
        pub.publish(dict(parked(99), type="new", after={**parked(99)["after"], "frame_time": T0 + 5}))  # too soon
        pub.publish(b"{not json")
        pub.publish({"type": "update", "after": {"id": "x", "camera": "nowhere"}})
        pub.close()
        wait_until(lambda: sub.counts["acked"] == 44, 30, "every message acknowledged")
    assert external_ids(twin.list_events({"limit": 1000})) == sorted(f"frigate:{T0 + n:.6f}-car{n:04d}"
                                                                     for n in range(40))
    assert (sub.counts["reported"], sub.counts["not_reported"], sub.counts["refused"]) == (41, 1, 2)
    assert not sub.connected


def test_broker_restart_mid_stream_loses_nothing_and_reports_nothing_twice(twin: Brain, xiaohe: District,
                                                                           broker: Broker) -> None:
    app = app_of(twin, xiaohe, broker)
    with TestClient(app):
        sub: FrigateSubscriber = app.state.mqtt
        creates = app.state.creates
        send = creates.send

        async def slow(items: list[Any]) -> Any:  # a slow brain: the broker goes while messages are in hand
            await asyncio.sleep(0.05)
            return await send(items)
        creates.send = slow
        wait_until(lambda: sub.connected, 15, "the subscriber to connect")
        pub = Publisher(broker)
        for n in range(150):
            pub.publish(parked(n))
        pub.close()
        wait_until(lambda: sub.counts["reported"] >= 20, 30, "reports to start")
        broker.stop()  # mid-stream: reports made, others in hand unacknowledged, the rest queued
        assert len(external_ids(twin.list_events({"limit": 1000}))) < 150
        wait_until(lambda: not sub.connected, 10, "the subscriber to notice")
        broker.start()
        pub = Publisher(broker)
        for n in range(150, 200):
            pub.publish(parked(n))
        pub.close()
        wait_until(lambda: len(twin.list_events({"limit": 1000})) >= 200, 60, "all 200 reports")
        time.sleep(0.5)  # (anything more would show up now)
        assert sub.counts["connects"] >= 2 and sub.counts["disconnects"] >= 1
    ids = external_ids(twin.list_events({"limit": 1000}))
    assert ids == sorted(f"frigate:{T0 + n:.6f}-car{n:04d}" for n in range(200))  # each once


def test_a_message_waits_while_the_brain_is_away(twin: Brain, xiaohe: District, broker: Broker) -> None:
    app = app_of(twin, xiaohe, broker)
    with TestClient(app):
        sub: FrigateSubscriber = app.state.mqtt
        creates = app.state.creates
        send, failures = creates.send, [3]

        async def flaky(items: list[Any]) -> Any:
            if failures[0]:
                failures[0] -= 1
                raise BrainUnavailable("the brain is restarting")
            return await send(items)
        creates.send = flaky
        wait_until(lambda: sub.connected, 15, "the subscriber to connect")
        pub = Publisher(broker)
        pub.publish(parked(7))
        pub.close()
        wait_until(lambda: sub.counts["acked"] == 1, 30, "the message acknowledged")
    assert sub.counts["retried"] == 3 and sub.counts["reported"] == 1
    assert external_ids(twin.list_events({})) == [f"frigate:{T0 + 7:.6f}-car0007"]


# --- acknowledgement order, without a broker ------------------------------------------------------------
def test_acknowledgements_go_out_in_the_order_messages_came() -> None:
    acked: list[int] = []

    class Client:
        def ack(self, mid: int, qos: int) -> None:
            acked.append(mid)

    sub = FrigateSubscriber(mqtt_settings("mqtt://127.0.0.1:1"), lambda payload: asyncio.sleep(0, "reported"))
    sub._client = Client()
    sub._session = 1
    sub._order.extend([5, 6, 7])
    sub._acknowledge(1, 6, 1)
    assert acked == []  # 5 is still in hand
    sub._acknowledge(1, 5, 1)
    assert acked == [5, 6]
    sub._acknowledge(0, 7, 1)  # a connection that is gone: its messages come again
    assert acked == [5, 6]
    sub._acknowledge(1, 7, 1)
    assert acked == [5, 6, 7]


@pytest.mark.parametrize(("url", "field", "reason"), [
    ("http://x", "--mqtt", "must start with mqtt://"),
    ("mqtt://", "--mqtt", "names no host"),
    ("mqtt://h:99999", "--mqtt", "not a broker URL"),
    ("mqtt://h/frigate", "--mqtt", "takes no path"),
])
def test_bad_broker_urls_name_the_option(url: str, field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        mqtt_settings(url)
    assert err.value.field == field and reason in err.value.reason


def test_settings_read_user_and_password_and_hide_the_password() -> None:
    s = mqtt_settings("mqtts://frigate:s%40cret@broker.local")
    assert (s.host, s.port, s.tls, s.username, s.password) == ("broker.local", 8883, True, "frigate", "s@cret")
    assert "s@cret" not in s.url and "cret" not in repr(s.url)


# --- the whole twin: streetbrain serve ---------------------------------------------------------------------
def listening(pid: int) -> list[tuple[str, int]]:
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return [(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


class Serve:
    """``streetbrain serve --mqtt ...`` in a process group of its own (with ``ray``, the brain in a
    Ray actor; without, ``--no-ray``)."""

    def __init__(self, broker: Broker, db: Path, log: Path, *, ray: bool = False) -> None:
        self.port, self.token = free_port(), "test-admin-token-of-the-mqtt-test"
        env = {**os.environ, "STREETBRAIN_ADMIN_TOKEN": self.token, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        self.log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-c", "from streetbrain.cli import app; app()", "serve",
                                      *(() if ray else ("--no-ray",)), "--db", str(db),
                                      "--port", str(self.port), "--mqtt", broker.url, "--mqtt-client-id", "twin-a"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_until(self._up, 120, "streetbrain serve to answer")

    def _up(self) -> bool:
        assert self.proc.poll() is None, "streetbrain serve died"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def events(self) -> list[dict[str, Any]]:
        import httpx

        r = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/events", params={"limit": 1000},
                      headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["events"]  # type: ignore[no-any-return]

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop it: SIGINT (a clean stop) or SIGKILL of the whole group (a crash, Ray included)."""
        if sig == signal.SIGKILL:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.log.close()


@pytest.mark.parametrize("ray, sig", [(False, signal.SIGINT), (True, signal.SIGKILL)], ids=["in-process", "ray-killed"])
def test_twin_restart_loses_nothing_and_reports_nothing_twice(broker: Broker, tmp_path: Path, ray: bool,
                                                              sig: int) -> None:
    db, out = tmp_path / "events.db", tmp_path / "serve.log"
    first = Serve(broker, db, out, ray=ray)
    try:
        pub = Publisher(broker)
        for n in range(30):
            pub.publish(parked(n))
        wait_until(lambda: len(first.events()) >= 30, 60, "the first 30 reports")
        import httpx

        mqtt = httpx.get(f"http://127.0.0.1:{first.port}/health", timeout=10).json()["mqtt"]
        assert mqtt["connected"] and mqtt["topic"] == "frigate/events" and mqtt["counts"]["reported"] >= 30
        assert sum(mqtt["latency_ms"]["counts"]) >= 30 and 0 < mqtt["latency_ms"]["p50"] <= mqtt["latency_ms"]["p99"]
        sockets = listening(first.proc.pid) + listening(broker.proc.pid if broker.proc else 0)
        assert sockets and all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip, _ in sockets), sockets
        pub.publish(parked(3))  # a duplicate while it runs
    finally:
        first.stop(sig)
    for n in range(30, 60):  # published while the twin is down: the broker keeps them for its session
        pub.publish(parked(n))
    pub.publish(parked(31))  # and a duplicate of one of those
    pub.close()
    second = Serve(broker, db, out, ray=ray)
    try:
        wait_until(lambda: len(second.events()) >= 60, 60, "the 30 reports made while down")
        time.sleep(0.5)
        ids = external_ids(second.events())
    finally:
        second.stop()
    assert ids == sorted(f"frigate:{T0 + n:.6f}-car{n:04d}" for n in range(60)), out.read_text()
    assert "Frigate over MQTT: frigate/events on mqtt://127.0.0.1" in out.read_text()


def test_latency_quantiles_read_the_histogram() -> None:
    from api.mqtt import LATENCY_BOUNDS_MS, latency_quantile

    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    assert latency_quantile(counts, 0.99) is None
    k10 = next(k for k, b in enumerate(LATENCY_BOUNDS_MS) if b >= 10)  # the bucket holding 10 ms
    counts[k10] = 98
    counts[-1] = 2  # two slower than the last bound
    assert latency_quantile(counts, 0.5) == LATENCY_BOUNDS_MS[k10] and 10 <= LATENCY_BOUNDS_MS[k10] < 10 * 2 ** 0.25
    assert latency_quantile(counts, 0.99) == LATENCY_BOUNDS_MS[-1]
