"""``streetbrain serve``: the live twin and its API as one command.

Starts the brain (in a local Ray actor by default, restarted by Ray if its process dies;
``--no-ray`` keeps it in this process), camera shards, and the API under uvicorn. The admin
token comes from ``STREETBRAIN_ADMIN_TOKEN``; if unset one is generated and printed once
(only its hash is stored). Nothing secret is written to the logs.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn

from actors.client import BrainClient
from actors.host import AreaShards, BrainHost, HostClient, start_ray_brain
from api.app import create_app

if TYPE_CHECKING:
    from api.mqtt import MqttSettings


def build(scenario: str, db: str, *, speed: float = 1.0, feed: bool = False, feed_rate: float = 1.0,
          use_ray: bool = True, shards: int = 2,
          admin_token: str | None = None, origin: float | None = None, ray_address: str | None = None,
          num_cpus: int | None = None, cameras: str | None = None) -> tuple[Any, str, Any]:
    """The app, the admin token and the host (or Ray actor) behind it.

    With Ray, the brain is one actor and the cameras, road units and (with the feed) patrol
    teams are held by ``shards`` area-shard actors, each holding every entity of a group of
    areas; ``ray_address`` joins a running Ray cluster instead of starting one here. Without
    Ray, one shard runs in this process. ``cameras``: a cameras file (:mod:`actors.cityeye`):
    its cameras' video is analysed by camera actors (Ray actors with the file's resources, or
    one in this process).
    """
    token = admin_token or os.environ.get("STREETBRAIN_ADMIN_TOKEN") or ""
    generated = not token
    if generated:
        token = secrets.token_urlsafe(32)
    from scenarios.loader import load_cached

    district = load_cached(scenario)
    eye_config = None
    if cameras:
        from actors.cityeye import read_config

        eye_config = read_config(cameras, district)  # a bad file fails here, before anything starts
    synthetic = sorted(eye_config.synthetic_ids()) if eye_config is not None and feed else []
    kinds = ("cameras", "roads", "patrols") if feed else ("cameras", "roads")
    client: BrainClient
    host: Any
    if use_ray:  # everything loads in parallel; serve once all are ready
        client, host = start_ray_brain(scenario, db, speed=speed, feed=feed, feed_rate=feed_rate, origin=origin,
                                       wait=False, patrols=False, address=ray_address, num_cpus=num_cpus,
                                       synthetic_cameras=synthetic)
        # (the kinds that follow the brain's log find it by name; their first calls wait for it)
        area_shards = AreaShards(district, shards, kinds=kinds, ray_actors=True, scenario=scenario)
    else:  # the brain's host plays the handlers itself
        host = BrainHost(scenario, db, speed=speed, feed=feed, feed_rate=feed_rate, origin=origin, freeze_heap=True,
                         synthetic_cameras=synthetic)
        client = HostClient(host)
        area_shards = AreaShards(district, 1, kinds=("cameras", "roads"), client=client)
    client.sync.ensure_token(token, "admin", "STREETBRAIN_ADMIN_TOKEN" if not generated else "generated")
    area_shards.ready()
    eyes = None
    if eye_config is not None:
        from actors.cityeye import Eyes

        if use_ray:
            import ray

            info = ray.get(host.feed_info.remote()) if feed else None
            eyes = Eyes(district, eye_config, feed=info, ray_actors=True, scenario=scenario)
        else:
            eyes = Eyes(district, eye_config, client=client, now=host.clock.now, speed=speed, feed=host.feed_info())
        eyes.ready()
    app = create_app(client, cameras=area_shards, roads=area_shards, title=f"streetbrain: {district.name}",
                     tick_s=None, district=district, freeze_heap=True, scenario=scenario)
    app.state.shards = area_shards
    app.state.eyes = eyes
    return app, (token if generated else ""), host


def serve(scenario: str, *, host: str = "127.0.0.1", port: int = 8000, db: str = "streetbrain-events.db",
          speed: float = 1.0, feed: bool = False, feed_rate: float = 1.0, use_ray: bool = True,
          duration_s: float = 0.0, report_every_s: float = 0.0, origin: float | None = None,
          mqtt: MqttSettings | None = None, **options: Any) -> None:
    """Build and run until interrupted (or for ``duration_s`` wall seconds; 0: until interrupted),
    printing a KPI line every ``report_every_s`` seconds (0: never). ``mqtt``: subscribe to
    Frigate's events on that broker (:mod:`api.mqtt`). ``options``: :func:`build`'s
    ``shards``, ``ray_address``."""
    t0 = time.monotonic()
    app, generated_token, _host = build(scenario, db, speed=speed, feed=feed, feed_rate=feed_rate, use_ray=use_ray,
                                        origin=origin, **options)
    if mqtt is not None:
        from api.mqtt import attach

        attach(app, mqtt)
        print(f"  Frigate over MQTT: {mqtt.topic} on {mqtt.url} (QoS 1, session '{mqtt.client_id}')", flush=True)
    where = f"http://{host}:{port}"
    print(f"streetbrain: {scenario} live on {where}  (API {where}/api/v1, docs {where}/docs, "
          f"Open311 {where}/open311/v2, health {where}/health)", flush=True)
    print(f"  event log: {_safe(db)}; clock speed x{speed:g}; synthetic feed: {'on' if feed else 'off'}; "
          f"brain: {'Ray actor' if use_ray else 'in process'}; ready in {time.monotonic() - t0:.1f} s", flush=True)
    if app.state.eyes is not None:
        from actors.cityeye import describe

        eyes = app.state.eyes
        print(f"  City Eye: {describe(eyes.config)}; "
              + (f"{len(eyes.actors)} camera actor{'s' if len(eyes.actors) > 1 else ''} "
                 f"({eyes.config.num_cpus:g} CPU, {eyes.config.num_gpus:g} GPU each)" if eyes.ray_actors
                 else "in this process"), flush=True)
    if use_ray:
        sh = app.state.shards
        print(f"  actors: brain, {len(sh.shards)} area shard{'s' if len(sh.shards) > 1 else ''} holding "
              f"{', '.join(sh.kinds)} of " + " + ".join(str(len(g)) for g in sh.groups) + " areas", flush=True)
    if generated_token:
        print(f"  admin token (shown once; set STREETBRAIN_ADMIN_TOKEN to choose your own): {generated_token}",
              flush=True)
    # (open streams — a cockpit page, a Frigate bridge — would hold a graceful shutdown for ever)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    stop = threading.Event()

    def watch() -> None:
        started = time.monotonic()
        last = started
        while not stop.wait(0.5):
            now = time.monotonic()
            if report_every_s and now - last >= report_every_s:
                last = now
                try:
                    k = app.state.client.sync.kpis()
                    share = {n: ("-" if k[n] is None else f"{k[n]:.0%}")
                             for n in ("responded_within_60s", "on_scene_within_180s", "reinforced_within_300s")}
                    print(f"  [{k['now'][11:16]} twin time] {k['events']} events, {k['waiting']} waiting, "
                          f"{k['members_busy']}/{k['members_on_duty']} members busy; signed <=60 s "
                          f"{share['responded_within_60s']}, on scene <=180 s {share['on_scene_within_180s']}, "
                          f"reinforced <=300 s {share['reinforced_within_300s']}", flush=True)
                except Exception as exc:  # the report is a courtesy; the server goes on
                    print(f"  (no KPIs: {exc})", flush=True)
            if duration_s and now - started >= duration_s:
                server.should_exit = True
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.run()
    finally:
        stop.set()
        if app.state.eyes is not None:
            app.state.eyes.stop()
        if use_ray:
            import ray

            ray.shutdown()


def _safe(db: str) -> str:
    from actors.eventlog import _mask_password

    return _mask_password(db)
