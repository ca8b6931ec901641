"""The dispatch API: FastAPI over the brain (in this process or in a Ray actor).

Native API under ``/api/v1`` (events and their actions, evidence, members, teams, roster,
positions, KPIs, tokens, camera ingest, a server-sent-event stream; one router per resource
in :mod:`api.routes`), Open311 GeoReport v2 under ``/open311/v2`` (:mod:`api.open311`),
``GET /health`` without a token, OpenAPI docs at ``/docs``.

Access: ``Authorization: Bearer <token>``; roles admin, dispatcher, handler (bound to one
member: acts only on their own assignments), ingest (cameras, sensors, citizen apps),
viewer (:mod:`api.access`). Every POST honours an ``Idempotency-Key`` header. Bad input is
a 4xx whose body names the field and the reason: ``{"error": {"field", "reason",
"message"}}`` (:mod:`api.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from actors.client import BrainClient
from actors.heap import Refreeze, freeze
from api import open311
from api.deps import install_state
from api.errors import install_handlers
from api.fast import FastReports, SizeLimit
from api.openapi import document_headers
from api.routes import ROUTERS

if TYPE_CHECKING:
    from actors.cameras import CameraShard
    from actors.host import AreaShards
    from twin.district import District

log = logging.getLogger("streetbrain.api")

#: FastAPI >= 0.16x opens OpenTelemetry spans for every request as soon as any library (Ray
#: does) installs a global provider: ~0.1 ms of CPU per request that nobody reads, and an
#: exporter may be configured from the environment. The twin exports nothing: off.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


def create_app(client: BrainClient, *, cameras: CameraShard | AreaShards | None = None,
               roads: AreaShards | None = None, title: str = "streetbrain", tick_s: float | None = 0.25,
               district: District | None = None, freeze_heap: bool = False, fast_reports: bool = True,
               scenario: str | None = None) -> FastAPI:
    """The API app over ``client``.

    Args:
        client: The brain (local or Ray).
        cameras: Frigate mapping for ``/api/v1/ingest/frigate``: a camera shard, or area
            shards holding cameras (none: that route answers 503).
        roads: Area shards holding road units for ``/api/v1/roads`` (default: one in this
            process, over ``client``).
        title: OpenAPI title.
        tick_s: Wall seconds between timer ticks (``None``: the host ticks instead).
        district: The district, for the Open311 service list (default: loaded by name).
        freeze_heap: Keep what exists at start-up out of full garbage collections, and
            freeze long-lived survivors every 30 s (:mod:`actors.heap`; a server process).
        fast_reports: Serve plain reports through :class:`~api.fast.FastReports` (off: every
            report goes through the FastAPI route; the answers are the same).
        scenario: The scenario ``district`` was loaded from (name or folder), for processes
            that load it themselves (the what-if worker); default: ``district`` is shipped.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.streams.start()
        tasks = [asyncio.create_task(_ticker(client, tick_s))] if tick_s else []
        if freeze_heap:
            freeze()  # the district, FastAPI and Ray are long-lived: keep them out of full GCs
            tasks.append(asyncio.create_task(_refreezer()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.streams.stop()
            if app.state.forks is not None:
                app.state.forks.close()
            if getattr(app.state, "staffing", None) is not None:
                app.state.staffing.close()

    app = FastAPI(title=title, version="1", lifespan=lifespan, **_NO_TELEMETRY, docs_url=None, redoc_url=None,
                  description="Live dispatch of the street brain: events, 1/3/5-minute timers, escalation, "
                              "a durable event log. Errors name the field and the reason.")
    offline_docs(app)
    install_state(app, client, district=district, scenario=scenario, cameras=cameras, roads=roads)
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(open311.router, prefix="/open311/v2", tags=["open311"])
    app.include_router(open311.discovery_router, prefix="/open311", tags=["open311"])
    if fast_reports:
        app.state.fast_reports = {"served": 0, "routed": 0}
        app.add_middleware(FastReports, principal_of=app.state.tokens.cached, submit=app.state.creates.submit,
                           counts=app.state.fast_reports)
    app.add_middleware(SizeLimit)  # (added last: outermost)
    document_headers(app)
    return app


def offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their scripts, styles and icon served
    from here (the files the ``fastapi-offline`` wheel ships), not from a CDN: a command centre's
    network has no internet, and FastAPI's own pages would be blank there. ReDoc's Google
    fonts are left out (the system's fonts serve), and its sidebar logo, which the script
    loads from Redocly's CDN, is our icon instead."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse, Response
    from fastapi.staticfiles import StaticFiles
    from fastapi_offline.core import _STATIC_PATH

    static = "/static-docs"
    redoc_js: list[bytes] = []

    @app.get(f"{static}/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        if not redoc_js:
            text = (_STATIC_PATH / "redoc.standalone.js").read_text(encoding="utf-8")
            redoc_js.append(text.replace("https://cdn.redoc.ly/redoc/logo-mini.svg", f"{static}/favicon.png").encode())
        return Response(redoc_js[0], media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.mount(static, StaticFiles(directory=str(_STATIC_PATH)), name="static-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=app.title + " - Swagger UI",
                                   oauth2_redirect_url=redirect, swagger_js_url=f"{static}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{static}/swagger-ui.css", swagger_favicon_url=f"{static}/favicon.png")

    @app.get(redirect, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=app.title + " - ReDoc",
                              redoc_js_url=f"{static}/redoc.standalone.js", redoc_favicon_url=f"{static}/favicon.png",
                              with_google_fonts=False)


async def _ticker(client: BrainClient, tick_s: float) -> None:
    """Fire the brain's due timers every ``tick_s`` wall seconds."""
    while True:
        try:
            await client.tick()
        except Exception as exc:
            log.warning("timer tick failed: %s", exc)
        await asyncio.sleep(tick_s or 0.25)


async def _refreezer() -> None:
    """Freeze long-lived survivors now and then (:class:`actors.heap.Refreeze`)."""
    refreeze = Refreeze()
    while True:
        await asyncio.sleep(1.0)
        refreeze()


__all__ = ["create_app"]
