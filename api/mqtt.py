"""Frigate over MQTT: ``streetbrain serve --mqtt mqtt://127.0.0.1:1883`` subscribes to Frigate's
``frigate/events`` topic and hands every message to the same ingest path as
``POST /api/v1/ingest/frigate`` (:func:`api.routes.ingest.ingest_frigate`). Frigate publishes
on MQTT only (no webhooks), so no bridge is needed.

Delivery, so that nothing is lost or reported twice:

* **A persistent session.** A fixed client id (``streetbrain`` by default), MQTT 5 with clean
  start off and a session expiry (a week by default), subscribed at QoS 1: while the twin is
  down the broker keeps what Frigate publishes for it, and hands it over when it comes back.
  (Frigate publishes at QoS 0 unless its ``mqtt: qos`` says 1, which it can from 0.16; a
  broker keeps QoS 0 messages for an absent subscriber only with Mosquitto's
  ``queue_qos0_messages true``.)
* **Acknowledged once durable.** A message is acknowledged (paho's ``manual_ack``) only when
  the brain has taken it: its report committed to the event log, or the mapping's answer that
  there is nothing to report. Acknowledgements go out in the order the messages came, as MQTT
  asks. A twin that stops or dies holding messages gets them again; the brain keeps one event
  per Frigate object (external id ``frigate:<id>``), so a message delivered twice is one event.
* **Back-pressure.** At most ``max_inflight`` messages are unacknowledged at once (MQTT 5's
  Receive Maximum, which the broker honours); concurrent messages reach the shards and the
  brain in batches (:class:`actors.client.Coalescer`).
* **Errors.** A message the mapping refuses (malformed, an unknown camera) is logged (the first
  of each field, then counted) and acknowledged: sent again it would be refused again. While
  the brain is unavailable a message is retried with back-off (0.5 s doubling to 30 s) and not
  acknowledged. After the broker goes away, paho reconnects with back-off (1 s doubling to 30 s).

Everything here runs in the API's process: paho's network thread receives, the API's event
loop does the work (:func:`attach` starts and stops the subscriber with the app).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import FastAPI

from actors.client import BrainUnavailable
from twin.errors import TwinError, ValidationError

log = logging.getLogger("streetbrain.mqtt")

#: Frigate's topic of tracked-object events (with its default ``topic_prefix`` ``frigate``).
DEFAULT_TOPIC = "frigate/events"
#: The twin's client id at the broker: fixed, so that its session outlives a restart.
DEFAULT_CLIENT_ID = "streetbrain"
#: How long the broker keeps the session (and its messages) while the twin is away.
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600
#: Messages unacknowledged at once at most (MQTT 5 Receive Maximum).
DEFAULT_MAX_INFLIGHT = 256
#: Back-off of retries while the brain is unavailable, and of reconnections to the broker.
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
#: Upper bounds (ms) of the handling-latency histogram's buckets, 2^(1/4) apart: 0.25 ms to 33 s
#: (the last bucket holds anything slower).
LATENCY_BOUNDS_MS = tuple(round(0.25 * 2 ** (k / 4), 3) for k in range(69))


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to subscribe.

    Attributes:
        host: The broker's host.
        port: Its port (1883; 8883 with TLS).
        tls: ``mqtts://``: TLS with the system's certificate authorities.
        username: User name, if the broker wants one.
        password: Password (from the URL; never printed).
        topic: The topic (``frigate/events``; another ``topic_prefix`` in Frigate changes it).
        client_id: The fixed client id of the persistent session.
        session_expiry_s: How long the broker keeps the session while the twin is away.
        max_inflight: Messages unacknowledged at once at most.
        keepalive_s: MQTT keep-alive.
    """

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = None
    topic: str = DEFAULT_TOPIC
    client_id: str = DEFAULT_CLIENT_ID
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    keepalive_s: int = 30

    @property
    def broker(self) -> str:
        """The broker's URL without user name or password."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The broker's URL without the password (for logs)."""
        return self.broker.replace("://", f"://{self.username}@", 1) if self.username else self.broker


def mqtt_settings(url: str, *, topic: str = DEFAULT_TOPIC, client_id: str = DEFAULT_CLIENT_ID,
                  session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
                  max_inflight: int = DEFAULT_MAX_INFLIGHT) -> MqttSettings:
    """Settings from ``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS).

    Raises:
        ValidationError: naming the option (``--mqtt``, ``--mqtt-topic``, ...) and the reason.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError("--mqtt", f"not a broker URL ({exc}); e.g. mqtt://127.0.0.1:1883") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValidationError("--mqtt", f"must start with mqtt:// or mqtts://, got {url.split('://')[0]!r}")
    if not parts.hostname:
        raise ValidationError("--mqtt", "names no host; e.g. mqtt://127.0.0.1:1883")
    if parts.path not in ("", "/") or parts.query:
        raise ValidationError("--mqtt", "takes no path or query; give the topic with --mqtt-topic")
    if not topic or any(c in topic for c in "+#") or len(topic.encode()) > 65535:
        raise ValidationError("--mqtt-topic", f"must be one topic name, without wildcards, got {topic!r}")
    if not client_id or len(client_id.encode()) > 65535:
        raise ValidationError("--mqtt-client-id", "must not be empty")
    if session_expiry_s < 0 or session_expiry_s > 0xFFFFFFFF:
        raise ValidationError("session_expiry_s", "must be 0 to 4294967295 seconds")
    if not 1 <= max_inflight <= 65535:
        raise ValidationError("max_inflight", "must be 1 to 65535")
    tls = parts.scheme == "mqtts"
    return MqttSettings(host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls,
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None, topic=topic,
                        client_id=client_id, session_expiry_s=session_expiry_s, max_inflight=max_inflight)


#: What a message's handler says: ``reported``, ``not_reported`` (nothing to report yet) or
#: ``refused`` (a bad message, never to be taken); it raises when the message is to be retried.
Handler = Callable[[bytes], Awaitable[str]]


class FrigateSubscriber:
    """The MQTT subscription: paho's network thread receives, ``handle`` runs on the event loop
    that called :meth:`start`, and each message is acknowledged once handled (see the module).

    Args:
        settings: The broker and the topic.
        handle: Takes a message's payload; returns its outcome, raises to have it retried.
    """

    def __init__(self, settings: MqttSettings, handle: Handler) -> None:
        self.settings, self.handle = settings, handle
        #: Messages received, by outcome; ``retried`` tries; ``connects`` and ``disconnects``.
        self.counts: dict[str, int] = collections.Counter()
        self.connected = False
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._session = 0  # one per connection: acknowledgements belong to theirs
        self._order: collections.deque[int] = collections.deque()  # unacknowledged QoS 1 ids, as they came
        self._finished: set[int] = set()
        self._slots = threading.BoundedSemaphore(settings.max_inflight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._refused_fields: set[str] = set()
        #: Messages by handling latency (arrival -> ready to acknowledge), per bucket of
        #: :data:`LATENCY_BOUNDS_MS`; cumulative, so a reader takes differences between two reads.
        self.latency_counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)

    def status(self) -> dict[str, Any]:
        """What ``GET /health`` shows: the broker and topic (no user or password), whether connected,
        the counts, and the handling latency (median and 99th percentile so far, and the
        histogram)."""
        s = self.settings  # (``/health`` needs no token: the broker without its user name)
        return {"broker": s.broker, "topic": s.topic, "client_id": s.client_id,
                "connected": self.connected, "counts": dict(self.counts),
                "latency_ms": {"p50": latency_quantile(self.latency_counts, 0.5),
                               "p99": latency_quantile(self.latency_counts, 0.99),
                               "le": list(LATENCY_BOUNDS_MS), "counts": list(self.latency_counts)}}

    # --- life -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect (in the background: an absent broker is retried with back-off) and subscribe."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        s = self.settings
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=MQTTProtocolVersion.MQTTv5,
                             manual_ack=True)
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set()
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.max_inflight
        client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props)
        client.loop_start()
        self._client = client
        log.info("mqtt: subscribing to %s on %s as %s", s.topic, s.url, s.client_id)

    async def stop(self, drain_s: float = 5.0) -> None:
        """Take no more messages, let those being handled finish (and be acknowledged) for up to
        ``drain_s`` seconds, and disconnect; the session stays at the broker, which keeps what
        comes meanwhile."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=drain_s)
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        self.connected = False

    # --- paho's thread --------------------------------------------------------------------------------
    def _on_connect(self, client: Any, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: %s refused the connection: %s", self.settings.url, reason)
            return
        with self._lock:  # a new connection: the old one's unacknowledged messages come again
            self._session += 1
            self._order.clear()
            self._finished.clear()
        self.connected = True
        self.counts["connects"] += 1
        client.subscribe(self.settings.topic, qos=1)
        log.info("mqtt: connected to %s (session %s)", self.settings.url,
                 "resumed" if flags.session_present else "new")

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected = False
        self.counts["disconnects"] += 1
        if not self._stopping:
            log.warning("mqtt: lost %s (%s); reconnecting", self.settings.url, reason)

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if self._stopping or self._loop is None:
            return  # not acknowledged: the broker hands it over again next time
        with self._lock:
            session = self._session
            if msg.qos > 0:
                self._order.append(msg.mid)
        while not self._slots.acquire(timeout=0.5):  # (QoS 0 has no Receive Maximum to hold it)
            if self._stopping:
                return
        asyncio.run_coroutine_threadsafe(self._process(session, msg.mid, msg.qos, msg.payload, time.monotonic()),
                                         self._loop)

    # --- the event loop ---------------------------------------------------------------------------------
    async def _process(self, session: int, mid: int, qos: int, payload: bytes, arrived: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            delay = RETRY_FIRST_S
            while True:
                try:
                    outcome = await self.handle(payload)
                    break
                except Exception as exc:  # the brain (or a shard) is unavailable: retry, unacknowledged
                    if self._stopping or session != self._session:
                        return  # the broker hands it over again
                    if not self.counts["retried"] % 100:
                        log.warning("mqtt: message not taken yet (%s: %s); retrying in %.1f s",
                                    type(exc).__name__, exc, delay)
                    self.counts["retried"] += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
            self.counts[outcome] += 1
            self.latency_counts[bisect.bisect_left(LATENCY_BOUNDS_MS, (time.monotonic() - arrived) * 1000)] += 1
            if qos > 0:
                self._acknowledge(session, mid, qos)
        finally:
            self._tasks.discard(task)
            self._slots.release()

    def _acknowledge(self, session: int, mid: int, qos: int) -> None:
        """Acknowledge ``mid`` and every message before it that is done too (in arrival order)."""
        ready = []
        with self._lock:
            if session != self._session:
                return  # that connection is gone; the broker hands the message over again
            self._finished.add(mid)
            while self._order and self._order[0] in self._finished:
                first = self._order.popleft()
                self._finished.discard(first)
                ready.append(first)
        client = self._client
        if client is not None:
            for m in ready:
                client.ack(m, qos)
                self.counts["acked"] += 1

    def refused(self, field: str, reason: str) -> str:
        """Log a refused message (the first of each field; the rest are counted)."""
        if field not in self._refused_fields:
            self._refused_fields.add(field)
            log.warning("mqtt: refused a message on %s: %s: %s (further refusals of %s are counted, not logged)",
                        self.settings.topic, field, reason, field)
        return "refused"


def latency_quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (ms) of a latency histogram over :data:`LATENCY_BOUNDS_MS`: the upper
    bound of the bucket it falls in (at most 19% above the true value); ``None`` if empty. In the
    overflow bucket it reads as the last bound (33 s: at least that)."""
    total = sum(counts)
    if total == 0:
        return None
    need, seen, at = q * total, 0, len(counts) - 1
    for k, n in enumerate(counts):
        seen += n
        if seen >= need and n:
            at = k
            break
    return LATENCY_BOUNDS_MS[min(at, len(LATENCY_BOUNDS_MS) - 1)]


def frigate_handler(app: FastAPI, subscriber: Callable[[], FrigateSubscriber]) -> Handler:
    """The handler of ``app``: a message's payload through :func:`api.routes.ingest.ingest_frigate`
    with the app's camera shards and report coalescer."""
    from api.routes.ingest import ingest_frigate

    async def handle(payload: bytes) -> str:
        try:
            message = json.loads(payload)
        except ValueError as exc:
            return subscriber().refused("payload", f"malformed JSON: {exc}")
        try:
            status, _ = await ingest_frigate(app.state.cameras, app.state.creates, message)
        except ValidationError as exc:
            return subscriber().refused(exc.field, exc.reason)
        except BrainUnavailable:
            raise
        except TwinError as exc:  # the brain refused the report: it would again
            return subscriber().refused("report", str(exc))
        return "reported" if status == 201 else "not_reported"
    return handle


def attach(app: FastAPI, settings: MqttSettings) -> FrigateSubscriber:
    """Subscribe ``app`` to Frigate's events while it runs (started and stopped with its
    lifespan); the subscriber is ``app.state.mqtt``."""
    sub = FrigateSubscriber(settings, frigate_handler(app, lambda: sub))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(the_app: Any) -> AsyncIterator[Any]:
        async with inner(the_app) as state:
            await sub.start()
            try:
                yield state
            finally:
                await sub.stop()

    app.router.lifespan_context = lifespan
    app.state.mqtt = sub
    return sub


__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_TOPIC", "LATENCY_BOUNDS_MS", "FrigateSubscriber", "MqttSettings", "attach",
           "frigate_handler", "latency_quantile", "mqtt_settings"]
