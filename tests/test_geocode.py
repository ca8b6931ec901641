"""Addresses placed on streets (:mod:`twin.geocode`): a hand-made street plan where every answer
is known, then the real streets of Xiaohe in Chinese and in English/pinyin."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from twin.district import District
from twin.errors import ValidationError
from twin.geo import LocalProjection, RoadNetwork, road_network_from_features
from twin.geocode import (
    Gazetteer,
    clean,
    gazetteer_from_district,
    gazetteer_from_roads,
    latin_keys,
    pinyin_keys,
    romanise,
    zh_key,
)

PROJ = LocalProjection(120.13, 30.31)
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "geo" / "xiaohe_reference_points_wgs84.geojson"

# --- a hand-made plan (metres) ------------------------------------------------------------------------------
#
#            小河路  (0,100) ───────────────────────────── (400,100)
#                                         │ 长乐路 ends 5 m short of 小河路 (no shared node)
#                                         │ (200,60)-(200,95)
#   幸福路  (0,0) ─ a ─ (100,0) ─ b ─ (200,0) ─ c ─ (300,0) ─ d ─ (400,0)
#                                         │ 文教街 (200,-200)-(200,0)
#   环城路: (0,0) → (0,-300) → (400,-300) → (400,0): meets 幸福路 at both ends
#   香积寺路 and 香积寺路（在建）: one street; 永庆路 and 永庆弄: "永庆" fits both


def _feature(fid: str, name: str, a: tuple[float, float], b: tuple[float, float], na: str, nb: str) -> dict[str, Any]:
    coords = [[float(v) for v in PROJ.to_lonlat(*a)], [float(v) for v in PROJ.to_lonlat(*b)]]
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {"id": fid, "name": name, "from": na, "to": nb, "length_m": math.dist(a, b),
                           "speed_kmh": 30.0, "oneway": False}}


def _plan() -> RoadNetwork:
    f = [_feature(f"x{i}", "幸福路", (100 * i, 0), (100 * (i + 1), 0), f"n{i}", f"n{i + 1}") for i in range(4)]
    f += [_feature("h0", "文教街", (200, -200), (200, 0), "h", "n2"),
          _feature("s0", "小河路", (0, 100), (200, 100), "s0", "s1"),
          _feature("s1", "小河路", (200, 100), (400, 100), "s1", "s2"),
          _feature("c0", "长乐路", (200, 60), (200, 95), "c0", "c1"),
          _feature("r0", "环城路", (0, 0), (0, -300), "n0", "r1"),
          _feature("r1", "环城路", (0, -300), (400, -300), "r1", "r2"),
          _feature("r2", "环城路", (400, -300), (400, 0), "r2", "n4"),
          _feature("q0", "香积寺路", (600, 0), (700, 0), "q0", "q1"),
          _feature("q1", "香积寺路（在建）", (700, 0), (800, 0), "q1", "q2"),
          _feature("y0", "永庆路", (600, 100), (700, 100), "y0", "y1"),
          _feature("y1", "永庆弄", (600, 200), (700, 200), "y2", "y3"),
          _feature("o0", "远见街", (2000, 0), (2100, 0), "o0", "o1"),
          _feature("u0", "", (0, 50), (50, 50), "u0", "u1")]
    return road_network_from_features(f, projection=PROJ)


@pytest.fixture(scope="module")
def plan() -> Gazetteer:
    roads = _plan()
    inside = [i for i, s in enumerate(roads.segments) if s.id != "o0"]  # 远见街 lies outside
    return gazetteer_from_roads(roads, inside=inside, aliases={"幸福路": ["Happiness Road"]},
                                contains=lambda x, y: x < 1000, title="the plan")


def at(plan: Gazetteer, address: str) -> tuple[float, float, tuple[str, ...]]:
    p = plan.place(address)
    return round(p.x, 1), round(p.y, 1), p.streets


def refused(plan: Gazetteer, address: str, *fragments: str) -> str:
    with pytest.raises(ValidationError) as caught:
        plan.place(address)
    assert caught.value.field == "address_string"
    for fragment in fragments:
        assert fragment in caught.value.reason, caught.value.reason
    return caught.value.reason


# --- normalising -------------------------------------------------------------------------------------------------
def test_names_are_compared_after_normalising() -> None:
    assert clean("  ＸＩＡＯＨＥ　Ｒｏａｄ ") == "xiaohe road"
    assert zh_key("香积寺路（在建）") == zh_key(" 香积寺路 ") == "香积寺路"
    assert pinyin_keys("小河路") == {"xiaohelu"}
    assert pinyin_keys("贾家弄") == {"jiajialong", "jiajianong"}
    assert pinyin_keys("幸福路") == frozenset()  # 幸, 福 are not in the table: Chinese only
    assert "xiaohelu" in latin_keys("Xiaohe Road") and "xiaohelu" in latin_keys("xiao he lu")
    assert "hushubeilu" in latin_keys("North Hushu Rd.") and "hushubeilu" in latin_keys("Hushu North Road")
    assert "tangheerlong" in latin_keys("Tanghe 2nd Lane")
    assert romanise("小河路") == "Xiaohe Lu" and romanise("上塘高架路") == "Shangtang Gaojialu"


# --- streets, house numbers, junctions -------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["幸福路", " 幸 福 路 ", "幸福", "幸福路100号", "幸福路 12-3 号 2幢",
                                     "杭州市拱墅区幸福路", "Happiness Road", "88 Happiness Road",
                                     "Happiness Road, Hangzhou"])
def test_a_street_is_placed_at_its_middle(plan: Gazetteer, address: str) -> None:
    assert at(plan, address) == (150.0, 0.0, ("幸福路",))  # the segment midpoint nearest the centre


def test_a_house_number_is_kept(plan: Gazetteer) -> None:
    assert plan.place("幸福路100号").house_number == "100"
    assert plan.place("No. 7, Happiness Road").house_number == "7"
    assert plan.place("幸福路").house_number is None
    assert "house number 100 not mapped" in plan.place("幸福路100号").describe()


@pytest.mark.parametrize("address", ["幸福路与文教街交叉口", "文教街和幸福路路口", "幸福路文教街口", "幸福路/文教街",
                                     "Happiness Road & Wenjiao Street", "corner of Wenjiao St and Happiness Road",
                                     "wenjiao jie x happiness road"])
def test_a_junction_is_where_the_streets_share_a_node(plan: Gazetteer, address: str) -> None:
    x, y, streets = at(plan, address)
    assert (x, y) == (200.0, 0.0) and set(streets) == {"幸福路", "文教街"}
    assert plan.place(address).is_junction


def test_streets_passing_close_without_a_shared_node_meet_between(plan: Gazetteer) -> None:
    assert at(plan, "长乐路与小河路交叉口") == (200.0, 97.5, ("长乐路", "小河路"))
    refused(plan, "长乐路与幸福路交叉口", "do not meet")  # 60 m apart


def test_bracketed_notes_are_not_part_of_the_name(plan: Gazetteer) -> None:
    assert "香积寺路" in plan and "香积寺路（在建）" not in plan
    assert plan.place("香积寺路（在建）").streets == ("香积寺路",)
    assert len(plan.streets["香积寺路"].segments) == 2


@pytest.mark.parametrize(("address", "fragments"), [
    ("", ("must name a street",)),
    ("   ", ("must name a street",)),
    ("x" * 301, ("at most 300",)),
    ("光明路", ("'光明路'", "no street of the plan")),
    ("Guangming Road", ("no street",)),
    ("幸福街", ("did you mean 幸福路",)),  # the right name with the wrong street word
    ("永庆", ("fits several streets", "永庆弄 (Yongqing Long)", "永庆路 (Yongqing Lu)")),
    ("Yongqing", ("'Yongqing' fits several streets",)),
    ("幸福路与环城路交叉口", ("meet in 2 places",)),
    ("幸福路与幸福路交叉口", ("twice",)),
    ("远见街", ("远见街 (Yuanjian Jie) lies outside the plan",)),
    ("幸福路与光明路交叉口", ("no street",)),
])
def test_what_cannot_be_placed_is_refused_naming_address_string(plan: Gazetteer, address: str,
                                                                 fragments: tuple[str, ...]) -> None:
    refused(plan, address, *fragments)


def test_unnamed_roads_are_not_streets(plan: Gazetteer) -> None:
    assert "" not in plan and len(plan) == 9


# --- Xiaohe's streets ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xiaohe_streets(xiaohe: District) -> Gazetteer:
    return gazetteer_from_district(xiaohe)


def test_every_street_of_xiaohe_has_a_pinyin_spelling(xiaohe_streets: Gazetteer) -> None:
    assert len(xiaohe_streets) > 100
    missing = [n for n in xiaohe_streets.streets if not pinyin_keys(zh_key(n))]
    assert missing == [], f"add their characters to twin.geocode.PINYIN: {missing}"


def test_every_street_inside_xiaohe_is_found_in_chinese_and_pinyin(xiaohe: District,
                                                                   xiaohe_streets: Gazetteer) -> None:
    placed = 0
    for name, street in xiaohe_streets.streets.items():
        if not street.inside:
            continue
        try:
            p = xiaohe_streets.place(name)
        except ValidationError as exc:  # only a street whose inside part is all at the boundary's edge
            assert "lies outside" in exc.reason, exc.reason
            continue
        assert xiaohe.contains(p.x, p.y)
        assert xiaohe_streets.place(street.romanised).streets == (name,), street.romanised
        assert xiaohe_streets.place(street.romanised.upper().replace(" ", "")).streets == (name,)
        placed += 1
    assert placed > 50


@pytest.mark.parametrize(("address", "street"), [
    ("小河路", "小河路"), ("Xiaohe Road", "小河路"), ("xiaohe rd", "小河路"), ("ＸＩＡＯＨＥＬＵ", "小河路"),
    ("小河路88号", "小河路"), ("88 Xiaohe Road", "小河路"), ("Moganshan Road", "莫干山路"),
    ("Hushu North Road", "湖墅北路"), ("Hushu Beilu", "湖墅北路"), ("Jiajia Lane", "贾家弄"),
    ("Lane 605, Shangtang Road", "上塘路605弄"), ("上塘路605弄3号", "上塘路605弄"), ("上塘路605号", "上塘路"),
    ("Xiaohe Branch Road", "小河支路"), ("Dengyun", "登云路"),
])
def test_xiaohe_streets_by_name(xiaohe: District, xiaohe_streets: Gazetteer, address: str, street: str) -> None:
    p = xiaohe_streets.place(address)
    assert p.streets == (street,)
    loc = xiaohe.locate_xy(p.x, p.y)
    assert xiaohe.roads.segment(loc.road_id).name == street


def _reference_junctions() -> list[tuple[str, str, float, float, float]]:
    if not REFERENCE.is_file():
        return []
    out = []
    for f in json.loads(REFERENCE.read_text())["features"]:
        props = f["properties"]
        if props.get("kind") == "junction":
            a, b = props["name"].split(" (")[0].split(" × ")
            out.append((a, b, *f["geometry"]["coordinates"], float(props.get("gap_m") or 0)))
    return out


@pytest.mark.parametrize("junction", _reference_junctions() or [pytest.param(None, marks=pytest.mark.skip(
    reason=f"no reference points at {REFERENCE}"))])
def test_xiaohe_junctions_match_the_reference_points(xiaohe: District, xiaohe_streets: Gazetteer,
                                                     junction: tuple[str, str, float, float, float]) -> None:
    a, b, lon, lat, gap_m = junction
    if gap_m > 30:  # the two streets do not meet in the road data
        refused(xiaohe_streets, f"{a}与{b}交叉口", "do not meet")
        return
    for address in (f"{a}与{b}交叉口", f"{xiaohe_streets.streets[a].romanised} & "
                                       f"{xiaohe_streets.streets[b].romanised}"):
        p = xiaohe_streets.place(address)
        x, y = xiaohe.projection.to_xy(lon, lat)
        assert math.hypot(p.x - float(x), p.y - float(y)) < 30, address


def test_geocode_is_pure() -> None:
    code = ("import sys, twin.geocode; bad = [m for m in ('ray', 'simpy', 'mesa', 'fastapi', 'starlette', 'torch', "
            "'pydeck', 'uvicorn') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
