"""viz: layer builders are pure functions of the district and of results (checked on their data),
and a deck written with `viz.deck.to_html` draws in a real browser with no request anywhere."""

from __future__ import annotations

import http.server
import json
import re
import threading
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pydeck")

from twin.district import District
from viz.deck import district_deck, to_html, view_of
from viz.layers import (
    CATEGORICAL,
    STATE_COLOURS,
    base_layers,
    cameras_layer,
    events_hexagon_layer,
    events_layer,
    grids_layer,
    members_layer,
    ramp,
    roads_layer,
    trips_layer,
)


def test_roads_are_the_responsible_ones_coloured_by_their_squad(xiaohe: District) -> None:
    layer = roads_layer(xiaohe)
    assert len(layer.data) == len(xiaohe.responsible)
    by_squad: dict[str, set[tuple[int, ...]]] = {}
    for row in layer.data:
        by_squad.setdefault(row["squad"], set()).add(tuple(row["colour"]))
        assert len(row["path"]) >= 2 and all(120 < p[0] < 121 and 30 < p[1] < 31 for p in row["path"])
    assert all(len(c) == 1 for c in by_squad.values()) and len(by_squad) == len(xiaohe.squads)
    assert len({next(iter(c)) for c in by_squad.values()}) == len(by_squad)  # one colour per squad
    assert {tuple(c) for s in by_squad.values() for c in s} <= {tuple(c) for c in CATEGORICAL}


def test_a_value_per_grid_is_a_choropleth_and_missing_grids_are_grey(xiaohe: District) -> None:
    grids = [g.id for g in xiaohe.regions.grids]
    values = {grids[0]: 0.2, grids[1]: 0.9}
    layer = grids_layer(xiaohe, values, label="met")
    rows = {r["id"]: r for r in layer.data}
    assert rows[grids[0]]["met"] == 0.2 and rows[grids[1]]["met"] == 0.9 and rows[grids[2]]["met"] is None
    lo, hi, none = rows[grids[0]]["fill"], rows[grids[1]]["fill"], rows[grids[2]]["fill"]
    assert lo[0] > lo[1] and hi[1] > hi[0] and none == ramp(None, 0, 1)  # red for low, green for high, grey
    assert ramp(0.0, 0, 1, good_high=False)[1] > ramp(0.0, 0, 1, good_high=False)[0]  # (inverted: low is good)


def test_events_from_the_api_and_from_the_simulator_make_the_same_points() -> None:
    api = [{"id": "E1", "scenario": "TR01", "state": "escalated", "severity": "high",
            "location": {"type": "Point", "coordinates": [120.13, 30.31]}}]
    sim = [{"event_id": "E1", "scenario": "TR01", "state": "escalated", "severity": "high", "lon": 120.13, "lat": 30.31},
           {"event_id": "E2", "scenario": "TR01", "lon": "", "lat": None}]  # no place: left out
    a, s = events_layer(api).data, events_layer(sim).data
    assert a == s and a[0]["colour"] == STATE_COLOURS["escalated"] and a[0]["radius"] > 16
    assert len(events_hexagon_layer(sim).data) == 1


def test_cameras_members_and_trips(xiaohe: District) -> None:
    cams = cameras_layer(xiaohe, camera_ids=[xiaohe.cameras[0].id])
    assert len(cams.data) == 1 and len(cams.data[0]["polygon"]) > 3
    pos = [{"member_id": "GW1", "role": "grid_worker", "lon": 120.1, "lat": 30.3, "busy": True, "on_duty": True},
           {"member_id": "GW2", "role": "grid_worker", "lon": 120.1, "lat": 30.3, "busy": False, "on_duty": False}]
    assert [m["id"] for m in members_layer(pos).data] == ["GW1"]
    trips = trips_layer([{"id": "GW1", "path": [[120.1, 30.3], [120.11, 30.31]], "timestamps": [0, 60]}],
                        current_time=30)
    assert trips.data[0]["timestamps"] == [0, 60]


def test_the_view_frames_the_district(xiaohe: District) -> None:
    v = view_of(xiaohe)
    assert 120.1 < v.longitude < 120.16 and 30.28 < v.latitude < 30.34 and 12 < v.zoom < 16


def test_an_offline_page_draws_the_district_with_no_request_anywhere(xiaohe: District, tmp_path: Path) -> None:
    """`to_html` (pydeck's own offline page still links CDNs) in chromium: the page asks for
    nothing but itself, and the map's pixels are drawn."""
    chromium = Path("/usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    if not chromium.exists():
        pytest.skip("chromium not installed")
    page_html = to_html(district_deck(xiaohe, [*base_layers(xiaohe), events_layer([])]), title="xiaohe")
    assert not re.findall(r"<(?:script|link)[^>]+(?:src|href)=[\"']?https?://", page_html)
    (tmp_path / "map.html").write_text(page_html)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}/"
    urls: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(chromium), args=[
                "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = b.new_page(viewport={"width": 900, "height": 700})
            page.on("request", lambda r: urls.append(r.url))
            page.goto(base + "map.html")
            page.wait_for_function("window.deckReady")
            page.wait_for_timeout(2000)
            png = page.screenshot()
            b.close()
    finally:
        srv.shutdown()
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    ground = np.all(np.abs(img.astype(int) - [238, 243, 245]) < 6, axis=2).mean()
    assert ground > 0.2, ground  # the boundary's fill covers the view
    assert [u for u in urls if not u.startswith(base)] == [] and urls[0] == base + "map.html"


def test_layers_serialise_to_deck_json(xiaohe: District) -> None:
    spec: dict[str, Any] = json.loads(district_deck(xiaohe, base_layers(xiaohe)).to_json())
    assert [layer["id"] for layer in spec["layers"]] == ["boundary", "grids", "areas", "roads", "cameras"]
    assert spec["layers"][3]["@@type"] == "PathLayer" and spec["initialViewState"]["zoom"] > 10


def test_every_label_of_the_cockpit_exists_in_both_languages() -> None:
    """Each `data-i18n` key of the page, and each key one language has, is in the other too (a
    missing one would show its key instead of words)."""
    static = Path(__file__).resolve().parent.parent / "viz" / "static"
    js = (static / "cockpit.js").read_text(encoding="utf-8")
    table = js[js.index("const T = {"):js.index("const OPEN")]
    en = set(re.findall(r"(\w+):\s*\"", table[table.index("en: {"):table.index("zh: {")]))
    zh = set(re.findall(r"(\w+):\s*\"", table[table.index("zh: {"):]))
    assert en == zh, (sorted(en - zh), sorted(zh - en))
    used = set(re.findall(r'data-i18n="(\w+)"', (static / "cockpit.html").read_text(encoding="utf-8")))
    assert used <= en, sorted(used - en)
