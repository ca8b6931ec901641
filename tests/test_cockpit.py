"""The cockpit in a real browser (Debian's chromium driven by Playwright; no browser is ever
downloaded): a dispatcher's board and map over a running twin, a handler's phone view with a
photo, `/docs` and `/redoc` without the internet. Every request the pages make must stay on
127.0.0.1; screenshots go to out/test-artifacts/cockpit/."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.test_serve import BIN, TOKEN, H, Server
from twin.district import District

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "out" / "test-artifacts" / "cockpit"
ARGS = ["--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not CHROMIUM.exists() or not BIN.exists(), reason="needs chromium and the CLI")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("cockpit") / "events.db"
    # ten times real time: a missed 2-minute respond target escalates an event in seconds, yet a
    # page has seconds to act on it before its timers run out (on a slow machine too)
    s = Server(db, ray=False, extra=("--speed", "10", "--start", "09:00"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def token(url: str, role: str, member_id: str | None = None) -> str:
    body: dict[str, Any] = {"role": role, "name": f"test {role}"}
    if member_id:
        body["member_id"] = member_id
    r = httpx.post(url + "/api/v1/tokens", json=body, headers=H, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def report(url: str, lonlat: tuple[float, float], key: str, scenario: str = "TR01") -> dict[str, Any]:
    r = httpx.post(url + "/api/v1/events", json={"scenario": scenario, "lon": lonlat[0], "lat": lonlat[1],
                                                 "source": "citizen"},
                   headers={**H, "Idempotency-Key": key}, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json()["event"])


def spot(district: District, k: int) -> tuple[float, float]:
    cam = district.cameras[k]
    lon, lat = district.projection.to_lonlat(cam.x, cam.y)
    return float(lon), float(lat)


class Watch:
    """Every request a page makes; those not to the server are the test's failure."""

    def __init__(self, page: Any, base: str) -> None:
        self.urls: list[str] = []
        self.base = base
        page.on("request", lambda r: self.urls.append(r.url))

    def outside(self) -> list[str]:
        return [u for u in self.urls if not u.startswith((self.base, "data:", "blob:"))]


def pixels(png: bytes) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def shot(page: Any, name: str) -> bytes:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data: bytes = page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return data


def open_cockpit(browser: Any, server: Server, role: str, *, height: int = 800) -> tuple[Any, Watch]:
    """A desktop page signed in with a new token of ``role``, its map drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    watch = Watch(page, server.url)
    sign_in(page, server.url, token(server.url, role))
    page.wait_for_function("window.cockpit.drawn > 0", timeout=60_000)
    return page, watch


def sign_in(page: Any, url: str, tok: str) -> None:
    page.goto(url + "/")
    page.fill("#token", tok)
    page.click("#signin-form button[type=submit]")
    page.wait_for_function("window.cockpit.me !== null && window.cockpit.catalog !== null", timeout=30_000)


def test_the_dispatcher_sees_the_district_and_works_an_event_to_its_close(server: Server, browser: Any,
                                                                        xiaohe: District) -> None:
    """An event appears on the board and on the map, is signed, put on scene, resolved and
    closed from the page; another, left alone, escalates by itself and the board shows it."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    watch = Watch(page, server.url)
    t0 = time.monotonic()
    sign_in(page, server.url, token(server.url, "dispatcher"))
    page.wait_for_function("window.cockpit.drawn > 0", timeout=60_000)
    first_draw_s = time.monotonic() - t0
    time.sleep(1.0)
    before = pixels(page.locator("#map").screenshot())
    # the map drew the district: the ground, the roads in their squads' colours, the grid lines
    ground = np.all(np.abs(before.astype(int) - [238, 243, 245]) < 6, axis=2).mean()  # BGR of the boundary fill
    colours = len({tuple(int(v) // 16 for v in p) for p in before.reshape(-1, 3)[::7]})
    assert ground > 0.2 and colours >= 8, (ground, colours)

    a = report(server.url, spot(xiaohe, 5), "cockpit-a")
    page.wait_for_selector(f"#board tr[data-id='{a['id']}']", timeout=20_000)
    x, y = page.evaluate("([lon, lat]) => window.cockpit.deck.getViewports()[0].project([lon, lat])",
                         list(spot(xiaohe, 5)))
    after = pixels(page.locator("#map").screenshot())
    xi, yi = int(round(x)), int(round(y))
    assert 5 <= xi < after.shape[1] - 5 and 5 <= yi < after.shape[0] - 5, (x, y)
    patch = np.abs(after[yi - 3:yi + 4, xi - 3:xi + 4].astype(int) - before[yi - 3:yi + 4, xi - 3:xi + 4]).sum(axis=2)
    assert (patch > 60).mean() > 0.5, "the event's point was not drawn where it is"
    shot(page, "dispatcher-board")

    page.click(f"#board tr[data-id='{a['id']}']")
    page.wait_for_selector("#actions button[data-action='sign']")
    page.click("#actions button[data-action='sign']")
    page.wait_for_function(f"window.cockpit.events.get('{a['id']}').state === 'signed'", timeout=20_000)
    page.click("#actions button[data-action='arrive']")
    page.wait_for_function(f"window.cockpit.events.get('{a['id']}').state === 'on_scene'", timeout=20_000)
    page.click("#actions button[data-action='result']")
    page.fill("#result-form textarea", "driver moved the car")
    page.click("#result-form button[type=submit]")
    page.wait_for_function(f"window.cockpit.events.get('{a['id']}').state === 'resolved'", timeout=20_000)
    page.click("#actions button[data-action='verify']")
    page.wait_for_function(f"window.cockpit.events.get('{a['id']}').state === 'closed'", timeout=20_000)
    page.wait_for_selector(f"#board tr[data-id='{a['id']}']", state="detached", timeout=10_000)
    history = httpx.get(server.url + f"/api/v1/events/{a['id']}", headers=H, timeout=10).json()["history"]
    assert [h["action"] for h in history][-4:] == ["sign", "arrive", "resolve", "verify"]
    page.click("#detail-close")

    b = report(server.url, spot(xiaohe, 40), "cockpit-b")  # left alone: escalates by the scenario's targets
    page.wait_for_selector(f"#board tr[data-id='{b['id']}']", timeout=20_000)
    deadline = time.monotonic() + 90
    actions: list[str] = []
    while time.monotonic() < deadline and "escalate" not in actions:
        time.sleep(1)
        actions = [h["action"] for h in httpx.get(server.url + f"/api/v1/events/{b['id']}", headers=H,
                                                  timeout=10).json()["history"]]
    assert "escalate" in actions, actions
    # the board shows the new assignee: it is drawn on the page's next round (every 250 ms), and the
    # event may move on again meanwhile, so the cell is compared with the page's own current copy
    page.wait_for_function(
        f"""() => {{ const e = window.cockpit.events.get('{b['id']}');
                    const cell = document.querySelector("#board tr[data-id='{b['id']}'] td:nth-child(5)");
                    return e && cell && e.assignee !== '{b['assignee']}' && cell.textContent === e.assignee; }}""",
        timeout=20_000)
    page.click("#lang")
    assert page.locator("#tabs button[data-tab=board]").inner_text() == "调度台"
    page.click("#tabs button[data-tab=kpis]")
    page.wait_for_selector("#kpi table[data-group=shift] tbody tr")
    assert page.locator("#kpi table[data-group=area] tbody tr").count() >= 2  # a and b lie in two areas
    shot(page, "dispatcher-targets-zh")
    assert not watch.outside(), watch.outside()
    print(f"first map draw {first_draw_s:.1f} s after the page was opened")
    page.close()


def test_a_handler_works_their_assignment_on_a_phone_with_a_photo(browser: Any, xiaohe: District,
                                                                tmp_path: Path) -> None:
    """On a twin in real time (its own): the handler has the minutes a person has before an
    unsigned assignment moves on."""
    server = Server(tmp_path / "phone.db", ray=False, extra=("--start", "09:00"))
    try:
        _handler_flow(server, browser, xiaohe)
    finally:
        server.stop()


def _handler_flow(server: Server, browser: Any, xiaohe: District) -> None:
    ev = report(server.url, spot(xiaohe, 80), "cockpit-phone")
    assert ev["assignee"], ev
    # the admin mints the handler's phone token from the event's page
    desk = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(desk, server.url, TOKEN)
    desk.wait_for_selector(f"#board tr[data-id='{ev['id']}']", timeout=20_000)
    desk.click(f"#board tr[data-id='{ev['id']}']")
    desk.click("#actions button[data-action='handler-token']")
    phone_token = desk.locator("#handler-token code").inner_text(timeout=10_000)
    assert httpx.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {phone_token}"},
                     timeout=10).json() == {"role": "handler", "member_id": ev["assignee"], "name": ev["assignee"]}
    desk.close()
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    page = ctx.new_page()
    watch = Watch(page, server.url)
    sign_in(page, server.url, phone_token)
    card = page.locator(f"#mine li[data-id='{ev['id']}']")
    card.wait_for(timeout=20_000)
    assert page.locator("#desk").is_hidden()  # a handler is offered their work only
    card.locator("button[data-action='sign']").click()
    page.wait_for_function(f"window.cockpit.events.get('{ev['id']}').state === 'signed'", timeout=20_000)
    card = page.locator(f"#mine li[data-id='{ev['id']}']")
    card.locator("button[data-action='arrive']").click()
    page.wait_for_function(f"window.cockpit.events.get('{ev['id']}').state === 'on_scene'", timeout=20_000)
    card = page.locator(f"#mine li[data-id='{ev['id']}']")
    card.locator("button[data-action='result']").click()
    card.locator("textarea").fill("车已挪走 moved on")
    import cv2

    ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), (40, 120, 200), np.uint8))
    assert ok
    card.locator("input[type=file]").set_input_files({"name": "scene.jpg", "mimeType": "image/jpeg",
                                                     "buffer": io.BytesIO(jpeg.tobytes()).getvalue()})
    shot(page, "handler-phone")
    card.locator("button[type=submit]").click()
    page.wait_for_function(f"window.cockpit.events.get('{ev['id']}').state === 'resolved'", timeout=20_000)
    done = httpx.get(server.url + f"/api/v1/events/{ev['id']}", headers=H, timeout=10).json()
    assert done["state"] == "resolved" and done["result"] == "车已挪走 moved on"
    assert done["evidence"] and any(e["content_type"] == "image/jpeg" for e in done["stored_evidence"])
    assert not watch.outside(), watch.outside()
    ctx.close()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_documentation_renders_without_the_internet(server: Server, browser: Any, path: str) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    watch = Watch(page, server.url)
    page.goto(server.url + path)
    if path == "/docs":
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert page.locator(".opblock").count() > 20
    else:
        page.wait_for_selector("redoc [role=menuitem], .menu-content", timeout=30_000)
        assert "streetbrain" in page.content()
    shot(page, path.strip("/"))
    assert not watch.outside(), watch.outside()
    page.close()


def test_a_what_if_from_the_page_compares_with_as_is_in_a_table_a_chart_and_the_map(server: Server, browser: Any,
                                                                                  xiaohe: District) -> None:
    report(server.url, spot(xiaohe, 120), "cockpit-whatif")
    page, watch = open_cockpit(browser, server, "dispatcher", height=900)
    page.click("#tabs button[data-tab=whatif]")
    page.fill("#whatif-form input[name=hours]", "1")
    page.fill("#whatif-form input[name=replications]", "2")
    page.fill("#whatif-form input[name='staff.co_governance.count']", "30")
    page.check("#whatif-form input[name=wartime]")
    page.click("#whatif-form button[type=submit]")
    page.wait_for_selector("#whatif-result table tbody tr", timeout=180_000)
    out = page.evaluate("window.cockpit.whatif")
    assert out["change"] == {"staff.co_governance.count": 30, "mode": "wartime"} and out["replications"] == 2
    assert page.locator("#whatif-result tbody tr").count() == 8 and page.locator("#whatif-result svg rect").count() >= 3
    areas = page.evaluate("window.cockpit.whatifAreas")
    assert {a["id"] for a in areas} == {a.id for a in xiaohe.regions.areas}
    assert all(len(a["fill"]) == 4 for a in areas)
    shot(page, "whatif")
    assert not watch.outside(), watch.outside()
    page.close()


def test_a_replay_of_the_last_hours_draws_the_events_as_they_happened(server: Server, browser: Any,
                                                                     xiaohe: District) -> None:
    for k in (150, 200):
        report(server.url, spot(xiaohe, k), f"cockpit-replay-{k}")
    page, watch = open_cockpit(browser, server, "viewer")
    page.click("#tabs button[data-tab=replay]")
    page.select_option("#replay-form select[name=hours]", "3")
    page.select_option("#replay-form select[name=speed]", "3600")
    page.click("#replay-form button[type=submit]")
    page.wait_for_function("window.cockpit.replay && window.cockpit.replay.done", timeout=60_000)
    now = httpx.get(server.url + "/health", timeout=10).json()
    from datetime import datetime, timedelta

    until = datetime.fromisoformat(now["now"]).timestamp()
    window = httpx.get(server.url + "/api/v1/replay", params={"since": until - 3 * 3600, "until": until}, headers=H,
                       timeout=10).json()
    replay = page.evaluate("({n: window.cockpit.replay.records.length, shown: window.cockpit.replay.maxShown})")
    assert window["events"] >= 2 and replay["shown"] >= window["events"] - 1 and replay["n"] >= len(window["records"]) - 5
    assert page.locator("#actions button").count() == 0  # a viewer is offered no actions
    shot(page, "replay")
    page.click("#replay-stop")
    assert page.evaluate("window.cockpit.replay") is None
    # a window of one's own, on the district's clock (Asia/Shanghai), whatever the browser's zone
    start = datetime.fromisoformat(now["now"]) - timedelta(hours=2)
    page.select_option("#replay-form select[name=hours]", "custom")
    page.fill("#replay-form input[name=from]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#replay-form input[name=to]", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#replay-form button[type=submit]")
    page.wait_for_function("window.cockpit.replay && window.cockpit.replay.done", timeout=60_000)
    asked = [u for u in watch.urls if "/api/v1/replay?" in u][-1]
    since = float(asked.split("since=")[1].split("&")[0])
    assert abs(since - start.replace(second=0, microsecond=0).timestamp()) < 1, (asked, start)
    assert not watch.outside(), watch.outside()
    page.close()


def test_a_staffing_plan_from_the_page_shows_its_table_and_curve(browser: Any, tiny_folder: Path,
                                                                 tmp_path: Path) -> None:
    """On a small district (the optimiser takes seconds there, minutes on xiaohe)."""
    tiny = Server(tmp_path / "tiny.db", ray=False, extra=("--scenario", str(tiny_folder), "--speed", "60"))
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch = Watch(page, tiny.url)
        sign_in(page, tiny.url, token(tiny.url, "dispatcher"))
        page.click("#tabs button[data-tab=whatif]")
        page.fill("#staffing-form input[name=days]", "2")
        page.fill("#staffing-form input[name=replications]", "2")
        page.fill("#staffing-form input[name=target]", "0.8")
        page.click("#staffing-form button[type=submit]")
        page.wait_for_selector("#staffing-result table[data-staffing] tbody tr", timeout=240_000)
        plan = page.evaluate("window.cockpit.staffing.result")
        assert page.locator("#staffing-result table[data-staffing] tbody tr").count() == len(plan["per_area"])
        assert page.locator("#staffing-result svg circle").count() == len([p for p in plan["curve"] if p["kpi"] is not None])
        shot(page, "staffing")
        assert not watch.outside(), watch.outside()
        page.close()
    finally:
        tiny.stop()
