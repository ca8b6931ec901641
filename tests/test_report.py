"""The offline HTML simulation report (scenarios.report)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import scenarios
from scenarios.io import write_result
from scenarios.report import bar_chart, histogram, html_report
from scenarios.results import Estimate
from scenarios.simulate import HEADLINE, SimulationResult
from twin.district import District

CHROMIUM = Path("/usr/bin/chromium")


class _Page(HTMLParser):
    """Collects tags, attributes and visible text; fails on unbalanced svg elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.depth += tag == "svg"

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag == "svg"
        assert self.depth >= 0

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    assert p.depth == 0
    return p


@pytest.fixture(scope="module")
def result(tiny_folder: Path) -> SimulationResult:
    return scenarios.run(str(tiny_folder), days=2, seed=3, replications=2)


@pytest.fixture(scope="module")
def district(tiny_folder: Path) -> District:
    return scenarios.load(str(tiny_folder))


@pytest.fixture(scope="module")
def page(result: SimulationResult, district: District) -> str:
    return html_report(result, district=district)


def test_the_page_parses_and_shows_kpis_charts_and_a_map(page: str, result: SimulationResult,
                                                          district: District) -> None:
    p = parse(page)
    text = " ".join(p.text)
    for name in HEADLINE:
        assert name in text
    for role in result.kpis["utilisation"]:
        assert role in text
    for cat in result.kpis["by_category"]:
        assert district.catalog.categories[cat].name_en in text
    assert sum(tag == "svg" for tag, _ in p.tags) >= 6  # five charts and the map
    grids = [a for tag, a in p.tags if tag == "path" and a.get("class") == "grid"]
    assert sorted(str(a["data-grid"]) for a in grids) == sorted(g.id for g in district.regions.grids)
    assert any(tag == "circle" for tag, _ in p.tags)  # cameras
    assert "target 180 s" in text and "95% CI" in text
    assert f"seed {result.seed}" in text and "2 replications" in text
    assert not re.search(r"\bnan\b", text)


def test_the_page_is_offline(page: str) -> None:
    p = parse(page)
    for tag, attrs in p.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed")
        for key in ("src", "href", "xlink:href"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (tag, key, value)
    lower = page.lower()
    assert "<script src" not in lower and "@import" not in lower and "url(" not in lower
    assert "//cdn" not in lower and "@font-face" not in lower


def test_the_page_is_deterministic(page: str, result: SimulationResult, district: District) -> None:
    assert html_report(result, district=district) == page


def test_without_a_district_there_is_no_map(result: SimulationResult) -> None:
    p = parse(html_report(result))
    assert not any(a.get("class") == "grid" for _, a in p.tags)
    assert "OpenStreetMap" not in " ".join(p.text)


def test_missing_values_show_a_dash_and_text_is_escaped(result: SimulationResult) -> None:
    nan = Estimate(math.nan, math.nan, math.nan, 0)
    kpis = dict(result.kpis, on_scene_within_180s=nan, events=None, utilisation={},
                by_area={"A<1>": {"on_scene_within_180s": nan}})
    odd = dataclasses.replace(result, scenario="<b>x</b> & 'y'", kpis=kpis, runs=result.runs[:1])
    page = html_report(odd)
    p = parse(page)
    text = " ".join(p.text)
    assert "—" in text and not re.search(r"\bnan\b", text)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; &#x27;y&#x27;" in page
    assert "A&lt;1&gt;" in page and "<1>" not in page
    assert "1 replication " in text


def test_approximate_boundary_and_attribution(result: SimulationResult, district: District) -> None:
    osm = "Road data (c) OpenStreetMap contributors, ODbL 1.0"
    d = dataclasses.replace(district, notes={"boundary": {"approximation": True, "attribution": osm},
                                             "roads": {"attribution": osm}})
    text = " ".join(parse(html_report(result, district=d)).text)
    assert "Study boundary (APPROXIMATION)" in text
    assert text.count("© OpenStreetMap contributors") == 1


def test_charts_handle_empty_and_degenerate_data() -> None:
    for svg in (histogram("empty", [], x_label="s"), histogram("bad", [math.nan, 0.0, 0.0], x_label="s", target=180),
                bar_chart("none", [], [("a", [])], x_label="x", y_label="y"),
                bar_chart("bad", ["a", "b"], [("s", [None, Estimate(0.5, 0.2, 1.3, 2)])], x_label="x", y_label="%",
                          pct=True)):
        parse(svg)
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert not re.search(r"\bnan\b", svg), svg


def test_write_puts_events_kpis_and_the_report(result: SimulationResult, district: District,
                                               tmp_path: Path) -> None:
    paths = write_result(result, tmp_path / "out", district=district)
    with paths["events"].open(newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) - 1 == len(result.events) > 0
    kpis = json.loads(paths["kpis"].read_text())
    assert set(HEADLINE) <= set(kpis) and kpis["replications"] == 2
    assert paths["report"].read_text(encoding="utf-8") == html_report(result, district=district)


def test_chromium_renders_the_page(page: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed")
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    shot = tmp_path / "shot.png"
    try:
        subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                        "--window-size=1200,1600", report.as_uri()],
                       capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_interactive_map_of_a_simulation_comes_from_the_viz_layers(result: SimulationResult, district: District,
                                                                       tmp_path: Path) -> None:
    """`streetbrain simulate --out` writes map.html beside the report (viz.results): the grids'
    figures are the events rows' own, and the report links to it."""
    pytest.importorskip("pydeck")
    from viz.deck import to_html
    from viz.results import grid_figures, simulation_deck

    df = result.to_pandas()
    figures = grid_figures(df, replications=len(result.runs), warmup_days=result.warmup_days)
    assert sum(f["events"] for f in figures.values()) * len(result.runs) == pytest.approx(len(df))
    closed = df[df["outcome"] == "closed"]
    for grid, f in figures.items():
        mine = closed[closed["grid_id"] == grid]
        assert f.get("within_targets") == (pytest.approx(mine["within_targets"].mean()) if len(mine) else None)
    deck = simulation_deck(result, district)
    grids = next(layer for layer in deck.layers if layer.id == "grids-within_targets")
    assert {row["id"] for row in grids.data} == {g.id for g in district.regions.grids}
    assert "<script src=\"http" not in to_html(deck)
    linked = html_report(result, district=district, map_href="map.html")
    assert 'href="map.html"' in linked and 'href="map.html"' not in html_report(result, district=district)
