"""The cockpit: the web page at ``/`` (``viz/static``), the deck.gl bundle it draws with (from
pydeck's wheel, served here: no CDN), the district's base map as deck.gl JSON built by
:mod:`viz.layers`, and ``/api/v1/me`` (who a token is, so the page offers only what the role may
do)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

import viz
from api.deps import Reader, Who, load_district
from api.errors import ApiError

router = APIRouter(tags=["cockpit"])

STATIC = Path(viz.__file__).resolve().parent / "static"
#: Files the page may load: name → content type.
FILES = {"cockpit.js": "text/javascript; charset=utf-8", "cockpit.css": "text/css; charset=utf-8"}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The cockpit (sign in with a token; it holds no data itself)."""
    return HTMLResponse((STATIC / "cockpit.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-cache"})


@router.get("/static/deck.gl.js", include_in_schema=False)
async def deck_bundle() -> FileResponse:
    """deck.gl (the bundle pydeck's wheel ships; globals ``deck`` and ``createDeck``)."""
    from viz.deck import bundle_path

    return FileResponse(bundle_path(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    """The page's script and style."""
    if name not in FILES:
        raise ApiError(404, "name", f"no static file '{name}'")
    return FileResponse(STATIC / name, media_type=FILES[name], headers={"Cache-Control": "no-cache"})


@router.get("/api/v1/me", tags=["access"])
async def me(who: Who) -> dict[str, Any]:
    """Who this token is: role, the member a handler's token is bound to, its label."""
    return {"role": who.role, "member_id": who.member_id, "name": who.name}


@router.get("/api/v1/map/base", tags=["map"])
async def base_map(request: Request, who: Reader) -> Response:
    """The district as a base map, as deck.gl JSON (pydeck's): boundary, grids, areas, roads
    coloured by responsible squad, camera views; and the view of the whole district. Built
    once per server by :func:`viz.layers.base_layers`, sent gzipped to a client that takes it
    (xiaohe: 1 MB, 0.1 MB gzipped; ``synthetic-100x``: ~38 MB, ~7 MB)."""
    state = request.app.state
    cached = getattr(state, "base_map", None)
    if cached is None:
        district = await load_district(request)

        def build() -> tuple[bytes, bytes, str]:
            import gzip

            from viz.deck import district_deck, to_json
            from viz.layers import base_layers

            body = to_json(district_deck(district, base_layers(district))).encode()
            return body, gzip.compress(body, 5), '"' + hashlib.sha256(body).hexdigest()[:20] + '"'

        cached = state.base_map = await asyncio.to_thread(build)
    body, packed, etag = cached
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(body, media_type="application/json", headers=headers)


@router.get("/api/v1/catalog", tags=["map"])
async def catalog(request: Request, who: Reader) -> dict[str, Any]:
    """The district's scenarios as the cockpit shows them: names (English, Chinese), category,
    severity, handler chain and the respond / on-scene / reinforcement targets in seconds; and
    the colours the maps use for states and roles (:mod:`viz.layers`)."""
    from viz.layers import ROLE_COLOURS, STATE_COLOURS

    district = await load_district(request)
    return {"district": district.name, "title": district.title, "tz": str(district.roster.tz),
            "scenarios": {s.code: {"name_en": s.name_en, "name_zh": s.name_zh, "category": s.category,
                                   "severity": s.severity.value, "chain": [r.value for r in s.handler_chain],
                                   "respond_s": s.respond_s, "on_scene_s": s.on_scene_s, "reinforce_s": s.reinforce_s}
                          for s in district.catalog},
            "categories": {c.code: {"name_en": c.name_en, "name_zh": c.name_zh}
                           for c in district.catalog.categories.values()},
            "state_colours": STATE_COLOURS, "role_colours": ROLE_COLOURS}
